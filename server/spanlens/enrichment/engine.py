"""The enrichment engine: the one object the language server and the CLI enrich through.

``EnrichmentEngine.enrich(spans)`` turns spans into validated enrichments: it reads each
span's text, skips hashes already enriched, routes each span to a starting tier, batches small
related spans, runs the cascade and writes a result only while some span still has the hash it
was made for. Model and backend problems never raise: they come back as a
:class:`SpanOutcome` per span. The engine owns one store connection, and per endpoint one
long-lived HTTP client, breaker and concurrency limit; use it from one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanlens.config import Settings
from spanlens.enrichment.backends import FailureKind, create_backend, probe_backends
from spanlens.enrichment.batching import BatchCandidate, plan_batches
from spanlens.enrichment.cascade import Breaker, Cascade, Endpoint, GpuProbe, Job, JobResult
from spanlens.enrichment.privacy import remote_allowed
from spanlens.enrichment.prompts import (
    SpanSource,
    enclosing_context,
    single_prompt_tokens,
)
from spanlens.enrichment.router import choose_route
from spanlens.enrichment.validation import to_span_lines
from spanlens.enrichment.version import ENRICHMENT_VERSION
from spanlens.indexing.hashing import content_hash, file_sha256
from spanlens.indexing.source import read_source_text
from spanlens.indexing.spans import CONTAINER_KINDS
from spanlens.store import enrichments as queries
from spanlens.store.db import SpanRow, open_store

log = logging.getLogger(__name__)

ENRICHED = "enriched"
FAILED = "failed"
DISCARDED = "discarded"
DEFERRED = "deferred"

#: Reads a workspace-relative file's current text (an open editor buffer, or the disk).
SourceReader = Callable[[str], "str | None"]


@dataclass
class SpanOutcome:
    """What ``enrich`` did for one span.

    ``status`` is one of:

    - ``enriched``: a validated enrichment for the span's hash is stored;
    - ``failed``: attempts were recorded and the hash's failure count went up;
    - ``discarded``: the span's hash changed while it was in flight (or its text no longer
      matches the index), so the result was dropped;
    - ``deferred``: nothing was tried (GPU limits, every breaker open, no usable backend), or
      only endpoints that are misconfigured or cooling down after a rate limit answered;
      no span failure was recorded.
    """

    span_id: int
    content_hash: str
    status: str
    #: Short failure type for the user ("model timeout", "connection refused", ...).
    error: str | None = None


@dataclass(slots=True)
class _HashOutcome:
    status: str
    error: str | None = None


class EnrichmentEngine:
    """Enrich spans through the configured backends; see the module docstring."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        gpu: GpuProbe | None = None,
        source_text: SourceReader | None = None,
    ) -> None:
        """Open the workspace store and build one endpoint per configured backend.

        ``gpu`` defaults to a :class:`spanlens.telemetry.gpu.GpuSampler` when
        ``settings.gpu.enabled``; ``source_text`` reads a file's current text (default: the
        disk) so that an editor can hand in unsaved buffers.
        """
        self.root = root
        self.settings = settings
        self.version = ENRICHMENT_VERSION
        self.store = open_store(root)
        self._read = source_text or self._read_disk
        enrichment = settings.enrichment
        endpoints: dict[str, list[Endpoint]] = {}
        for backend in settings.backends:
            endpoints.setdefault(backend.tier, []).append(
                Endpoint(
                    create_backend(backend),
                    Breaker(enrichment.breaker_threshold, enrichment.breaker_reset),
                    asyncio.Semaphore(max(1, backend.max_parallel)),
                )
            )
        self._endpoints = endpoints
        #: Whether any endpoint is remote: only then is the privacy rule worth checking.
        self._has_remote = any(backend.is_remote for backend in settings.backends)
        #: The engine closes the GPU sampler only if it made it.
        self._owns_gpu = gpu is None
        self.gpu = gpu if gpu is not None else _default_gpu(settings)
        self.cascade = Cascade(
            endpoints,
            enrichment,
            self._record_attempt,
            gpu=self.gpu,
            gpu_settings=settings.gpu,
            cost=_cost_function(),
        )
        self._in_flight: dict[str, asyncio.Future[_HashOutcome]] = {}

    # ------------------------------------------------------------------ public API

    async def enrich(self, spans: list[SpanRow], *, tier: str | None = None) -> list[SpanOutcome]:
        """Enrich ``spans``; one outcome per distinct span, in input order.

        Spans sharing a hash are enriched once; hashes already enriched at this version
        come back ``enriched`` without a call; a hash another ``enrich`` call is working on is
        awaited, not repeated. ``tier`` forces the starting tier (escalation above it stays
        possible). Never raises for model or backend failures.
        """
        unique = list({span.id: span for span in spans}.values())
        outcomes: dict[int, SpanOutcome] = {}
        sources: dict[str, SpanSource] = {}
        for span, source, problem in self._load_sources(unique):
            if problem is not None or source is None:
                outcomes[span.id] = SpanOutcome(span.id, span.content_hash, DISCARDED, problem)
            elif self.store.enrichment_for(span.content_hash, self.version) is not None:
                outcomes[span.id] = SpanOutcome(span.id, span.content_hash, ENRICHED)
            else:
                sources.setdefault(span.content_hash, source)
        waiting = {h: self._in_flight[h] for h in sources if h in self._in_flight}
        mine = {h: s for h, s in sources.items() if h not in waiting}
        loop = asyncio.get_running_loop()
        futures = {h: loop.create_future() for h in mine}
        self._in_flight.update(futures)
        results: dict[str, _HashOutcome] = {}
        try:
            results = await self._enrich_hashes(list(mine.values()), tier)
        finally:
            for h, future in futures.items():
                self._in_flight.pop(h, None)
                if not future.done():
                    future.set_result(results.get(h, _HashOutcome(DEFERRED, "cancelled")))
        for h, future in waiting.items():
            results[h] = await asyncio.shield(future)
        for span in unique:
            if span.id in outcomes:
                continue
            outcome = results.get(span.content_hash, _HashOutcome(DEFERRED, "not tried"))
            outcomes[span.id] = self._span_outcome(span, outcome)
        return [outcomes[span.id] for span in unique]

    def capacity(self) -> int:
        """Useful number of concurrent ``enrich`` calls: the starting tier's parallelism (>= 1)."""
        for tier in self.settings.enrichment.tiers:
            endpoints = self._endpoints.get(tier)
            if endpoints:
                return max(1, sum(ep.settings.max_parallel for ep in endpoints))
        return 1

    def health(self) -> dict[str, Any]:
        """Per endpoint: tier, url (without credentials), model, breaker state, last error and
        ``misconfigured`` (what to fix, or None); and ``unreachable``.

        ``unreachable`` is True when every endpoint's last call was refused a connection;
        ``misconfigured`` lists one message per misconfigured endpoint, for one editor notice.
        """
        now = time.monotonic()
        entries = []
        for endpoint in self._all_endpoints():
            s = endpoint.settings
            entries.append(
                {
                    "name": s.name,
                    "tier": s.tier,
                    "provider": s.provider,
                    "url": endpoint.display_url,
                    "model": s.model,
                    "remote": s.is_remote,
                    "breaker": endpoint.breaker.state(now),
                    "in_flight": endpoint.in_flight,
                    "calls": endpoint.calls,
                    "last_error": endpoint.last_error,
                    "misconfigured": endpoint.misconfigured,
                    "cooldown_s": round(max(0.0, endpoint.cooldown_until - now), 3),
                }
            )
        endpoints = self._all_endpoints()
        unreachable = bool(endpoints) and all(
            ep.last_failure is FailureKind.CONNECTION_REFUSED for ep in endpoints
        )
        misconfigured = [ep.misconfigured for ep in endpoints if ep.misconfigured]
        return {"endpoints": entries, "unreachable": unreachable, "misconfigured": misconfigured}

    async def probe(self, timeout: float = 2.0) -> dict[str, Any]:
        """For `spanlens doctor` and the enrich pre-flight: is each backend reachable, and
        does it serve its model (Ollama ``/api/tags``, OpenAI ``/v1/models``)?

        Returns ``{"reachable": bool (any backend), "backends": [...]}``.
        """
        backends = await probe_backends([ep.backend for ep in self._all_endpoints()], timeout)
        return {"reachable": any(b["reachable"] for b in backends), "backends": backends}

    def pending(self, limit: int | None = None, paths: list[str] | None = None) -> list[SpanRow]:
        """Spans to enrich now (see :func:`spanlens.store.enrichments.pending_spans`)."""
        return queries.pending_spans(
            self.store,
            self.version,
            self.settings.enrichment.max_failures,
            time.time(),
            limit=limit,
            paths=paths,
        )

    async def aclose(self) -> None:
        """Close every HTTP client, the GPU sampler it made, and the store."""
        await asyncio.gather(
            *(ep.backend.aclose() for ep in self._all_endpoints()), return_exceptions=True
        )
        close_gpu = getattr(self.gpu, "close", None)
        if self._owns_gpu and close_gpu is not None:
            await asyncio.to_thread(close_gpu)
        self.store.close()

    # ------------------------------------------------------------------ internals

    def _all_endpoints(self) -> list[Endpoint]:
        return [ep for tier in self._endpoints.values() for ep in tier]

    async def _enrich_hashes(
        self, sources: list[SpanSource], tier: str | None
    ) -> dict[str, _HashOutcome]:
        results: dict[str, _HashOutcome] = {}
        routed: list[tuple[SpanSource, Job]] = []
        for source in sources:
            # Scan exactly what the prompt would carry: the span's lines and its context.
            local_only = self._has_remote and not remote_allowed(
                self.root,
                source.span.path,
                self.settings.index.exclude,
                "\n".join(source.lines) + "\n" + source.context,
            )
            contexts = self.cascade.tier_contexts(local_only)
            route = choose_route(
                source.span.facts,
                single_prompt_tokens(source),
                contexts,
                self.settings.enrichment.router,
                forced=tier,
            )
            if not route:
                results[source.span.content_hash] = _HashOutcome(
                    DEFERRED, _no_route_reason(tier, local_only)
                )
                continue
            routed.append((source, Job([source], route, local_only)))
        batches, singles = self._plan(routed)
        work = [([j.sources[0] for j in batch], self._run_batch(batch)) for batch in batches]
        work += [(job.sources, self._run_single(job)) for job in singles]
        results.update(await _gather_outcomes(work))
        return results

    def _plan(self, routed: list[tuple[SpanSource, Job]]) -> tuple[list[list[Job]], list[Job]]:
        """Split routed jobs into batches (lists of single jobs) and single jobs."""
        enrichment = self.settings.enrichment
        if not enrichment.batch or len(routed) < 2:
            return [], [job for _, job in routed]
        by_id = {source.span.id: job for source, job in routed}
        candidates = [
            BatchCandidate(source, job.tiers[0])
            for source, job in routed
            if self.cascade.tier_contexts(job.local_only)[job.tiers[0]]
            >= single_prompt_tokens(source)
        ]
        batchable = {c.source.span.id for c in candidates}
        planned, leftover = plan_batches(candidates, enrichment)
        batches = [[by_id[c.source.span.id] for c in batch] for batch in planned]
        singles = [by_id[c.source.span.id] for c in leftover]
        singles += [job for source, job in routed if source.span.id not in batchable]
        return batches, singles

    async def _run_batch(self, jobs: list[Job]) -> dict[str, _HashOutcome]:
        """One call for the batch; spans whose entry did not validate go single."""
        batch = Job(
            [job.sources[0] for job in jobs],
            jobs[0].tiers[:1],
            any(job.local_only for job in jobs),
        )
        result = await self.cascade.run(batch)
        outcomes = self._store_landed(result, batch)
        rest = [job for job in jobs if job.sources[0].span.id not in result.landed]
        outcomes.update(await _gather_outcomes([(j.sources, self._run_single(j)) for j in rest]))
        return outcomes

    async def _run_single(self, job: Job) -> dict[str, _HashOutcome]:
        result = await self.cascade.run(job)
        outcomes = self._store_landed(result, job)
        source = job.sources[0]
        content = source.span.content_hash
        if content in outcomes:
            return outcomes
        if not result.attempted:
            return {content: _HashOutcome(DEFERRED, result.deferred_reason or "not tried")}
        error = (result.failure or FailureKind.INVALID_OUTPUT).value
        if not queries.hash_in_use(self.store, content):
            return {content: _HashOutcome(DISCARDED, "code changed while enriching")}
        enrichment = self.settings.enrichment
        queries.record_failure(
            self.store,
            content,
            error,
            time.time(),
            enrichment.failure_retry_base,
            enrichment.failure_retry_max,
        )
        return {content: _HashOutcome(FAILED, error)}

    def _store_landed(self, result: JobResult, job: Job) -> dict[str, _HashOutcome]:
        outcomes: dict[str, _HashOutcome] = {}
        for source in job.sources:
            landing = result.landed.get(source.span.id)
            if landing is None:
                continue
            written = queries.put_enrichment(
                self.store,
                source.span.content_hash,
                self.version,
                to_span_lines(landing.data, source.first_line),
                model=landing.model,
                tier=landing.tier,
                backend=landing.backend,
                host=landing.host,
                tokens_in=landing.tokens_in,
                tokens_out=landing.tokens_out,
                duration_ms=landing.duration_ms,
            )
            outcomes[source.span.content_hash] = (
                _HashOutcome(ENRICHED)
                if written
                else _HashOutcome(DISCARDED, "code changed while enriching")
            )
        return outcomes

    def _span_outcome(self, span: SpanRow, outcome: _HashOutcome) -> SpanOutcome:
        status, error = outcome.status, outcome.error
        if status == ENRICHED and queries.current_hash(self.store, span.id) != span.content_hash:
            status, error = DISCARDED, "code changed while enriching"
        return SpanOutcome(span.id, span.content_hash, status, error)

    def _record_attempt(self, attempt: queries.Attempt) -> None:
        queries.record_attempt(self.store, attempt)

    def _load_sources(
        self, spans: list[SpanRow]
    ) -> list[tuple[SpanRow, SpanSource | None, str | None]]:
        """Each span's text and context; a problem instead when its text moved on."""
        by_path: dict[str, list[SpanRow]] = {}
        for span in spans:
            by_path.setdefault(span.path, []).append(span)
        loaded: list[tuple[SpanRow, SpanSource | None, str | None]] = []
        for path, group in by_path.items():
            text = self._read(path)
            if text is None:
                loaded += [(span, None, "file is gone") for span in group]
                continue
            lines = text.split("\n")
            file_spans = self.store.spans_in_file(path)
            # A container's hash covers only its skeleton, so its text can change under the
            # same hash: only a file identical to the indexed one vouches for it.
            indexed = queries.indexed_file_sha256(self.store, path)
            file_current = indexed == file_sha256(text.encode("utf-8"))
            for span in group:
                if span.kind in CONTAINER_KINDS and not file_current:
                    loaded.append((span, None, "file changed since it was indexed"))
                else:
                    loaded.append(_source_for(span, lines, file_spans))
        return loaded

    def _read_disk(self, path: str) -> str | None:
        return read_source_text(self.root / path)  # as the indexer read it


def _source_for(
    span: SpanRow, lines: list[str], file_spans: list[SpanRow]
) -> tuple[SpanRow, SpanSource | None, str | None]:
    if span.end_line >= len(lines):
        return span, None, "source changed since indexing"
    if (
        span.kind not in CONTAINER_KINDS
        and content_hash(span_text(span, lines)) != span.content_hash
    ):
        return span, None, "source changed since indexing"
    shown = [line.rstrip("\r") for line in lines[span.start_line : span.end_line + 1]]
    return span, SpanSource(span, shown, enclosing_context(span, file_spans, lines)), None


def span_text(span: SpanRow, lines: list[str]) -> str:
    """The exact text of ``span`` (its columns are UTF-16 offsets, as in LSP)."""
    first = lines[span.start_line]
    last = lines[span.end_line]
    start = _utf16_to_index(first, span.start_col)
    end = _utf16_to_index(last, span.end_col)
    if span.start_line == span.end_line:
        return first[start:end]
    middle = lines[span.start_line + 1 : span.end_line]
    return "\n".join([first[start:], *middle, last[:end]])


def _utf16_to_index(line: str, column: int) -> int:
    if line.isascii():
        return column
    units = 0
    for index, char in enumerate(line):
        if units >= column:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line)


async def _gather_outcomes(
    work: list[tuple[list[SpanSource], Coroutine[Any, Any, dict[str, _HashOutcome]]]],
) -> dict[str, _HashOutcome]:
    """Run jobs side by side; one that raises is logged and its spans deferred, while its
    siblings run to the end (none is left orphaned)."""
    done = await asyncio.gather(*(coro for _, coro in work), return_exceptions=True)
    outcomes: dict[str, _HashOutcome] = {}
    for (sources, _), outcome in zip(work, done, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, asyncio.CancelledError):
                log.error(
                    "enrichment job failed unexpectedly",
                    exc_info=(type(outcome), outcome, outcome.__traceback__),
                )
            reason = (
                "cancelled" if isinstance(outcome, asyncio.CancelledError) else "internal error"
            )
            for source in sources:
                outcomes.setdefault(source.span.content_hash, _HashOutcome(DEFERRED, reason))
        else:
            outcomes.update(outcome)
    return outcomes


def _no_route_reason(tier: str | None, local_only: bool) -> str:
    if tier is not None:
        return f"no usable backend in tier {tier}"
    if local_only:
        return "file must not leave this machine and no local backend is configured"
    return "no backend configured"


def _default_gpu(settings: Settings) -> GpuProbe | None:
    if not settings.gpu.enabled:
        return None
    try:
        from spanlens.telemetry.gpu import GpuSampler
    except ImportError:
        return None
    return GpuSampler()  # type: ignore[no-any-return]


def _cost_function() -> Callable[[int, int, float, float], float] | None:
    try:
        from spanlens.telemetry.cost import call_cost
    except ImportError:
        return None
    return call_cost  # type: ignore[no-any-return]
