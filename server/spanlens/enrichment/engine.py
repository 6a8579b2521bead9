"""The enrichment engine: the one object the language server and the CLI enrich through.

``EnrichmentEngine.enrich(spans)`` turns spans into validated enrichments: it reads each
span's text, skips hashes already enriched, routes each span to a starting tier, batches small
related spans, runs the cascade and writes a result only while some span still has the hash it
was made for. Model and backend problems never raise: they come back as a
:class:`SpanOutcome` per span; a failed store write raises
:class:`~spanlens.store.enrichments.StoreWriteFailed` and stops every later call. Spans in
flight are claimed in the store (a lease, renewed while held), so two processes on one
workspace never call a model for the same span. The engine owns one store connection (and
one more, used off the event loop, for claims), and per endpoint one long-lived HTTP client,
breaker and concurrency limit; use it from one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanlens.config import Settings
from spanlens.enrichment.backends import FailureKind, create_backend, probe_backends
from spanlens.enrichment.batching import BatchCandidate, plan_batches
from spanlens.enrichment.cascade import Breaker, Cascade, Endpoint, GpuProbe, Job, JobResult
from spanlens.enrichment.grounding import NO_NAMES, Names, WorkspaceNames
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
from spanlens.states import Deferral, DeferralKind, Status, failed_for_good
from spanlens.store import enrichments as queries
from spanlens.store.db import SpanRow, Store, StoreError, StoreLocked, open_store
from spanlens.store.enrichments import CLAIMED_ELSEWHERE, StoreWriteFailed

log = logging.getLogger(__name__)

__all__ = [
    "CLAIMED_ELSEWHERE",
    "DEFERRED",
    "DISCARDED",
    "ENRICHED",
    "FAILED",
    "EnrichmentEngine",
    "SpanOutcome",
]

ENRICHED = Status.ENRICHED
FAILED = Status.FAILED
DISCARDED = Status.DISCARDED
DEFERRED = Status.DEFERRED

#: Reads a workspace-relative file's current text (an open editor buffer, or the disk).
SourceReader = Callable[[str], "str | None"]

#: How long a claim holds without renewal: a process killed with -9 frees its spans after
#: this (at once on the same machine, where a dead owner is recognised by its pid).
CLAIM_LEASE_SECONDS = 60.0
#: How often a live engine renews the claims it holds.
CLAIM_RENEW_SECONDS = 20.0


@dataclass
class SpanOutcome:
    """What ``enrich`` did for one span.

    ``status`` is one of:

    - ``enriched``: a validated enrichment for the span's hash is stored;
    - ``failed``: attempts were recorded and the hash's failure count went up;
    - ``discarded``: the span's hash changed while it was in flight (or its text no longer
      matches the index), so the result was dropped;
    - ``deferred``: no span failure was recorded. ``transient`` says whether waiting may
      help: a rate limit's cool-down, an open breaker, GPU limits, a misconfigured endpoint,
      or another process's claim on the span (:data:`CLAIMED_ELSEWHERE`) held it back; it
      is False when no configured backend may take the span at all.
    """

    span_id: int
    content_hash: str
    status: Status
    #: Short failure type for the user ("model timeout", "connection refused", ...).
    error: str | None = None
    #: For ``failed``: the hash's failure count now (failed for good at ``max_failures``).
    failures: int = 0
    #: For ``deferred``: a transient state (rate limit, open breaker, GPU limits, another
    #: process's claim) held it back, so trying again later may land it.
    transient: bool = False
    #: For ``deferred``: why, typed (the scheduler acts on its kind and ``lasting``).
    deferral: Deferral | None = None


@dataclass(slots=True)
class _HashOutcome:
    status: Status
    error: str | None = None
    failures: int = 0
    transient: bool = False
    #: Set where the deferral's kind is known better than from ``transient``.
    deferral: Deferral | None = None


@dataclass(slots=True)
class CallTotals:
    """What this engine's own model calls cost (another process's calls are not counted)."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    spans_enriched: int = 0
    by_tier: dict[str, int] = field(default_factory=dict)


class EnrichmentEngine:
    """Enrich spans through the configured backends; see the module docstring."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        gpu: GpuProbe | None = None,
        source_text: SourceReader | None = None,
        store: Store | None = None,
        endpoints: dict[str, list[Endpoint]] | None = None,
    ) -> None:
        """Enrich through ``endpoints`` (by tier) into ``store``; the engine closes both.

        Without them it opens the workspace store and builds one endpoint per configured
        backend (:func:`build_endpoints`). ``gpu`` defaults to a
        :class:`spanlens.telemetry.gpu.GpuSampler` when ``settings.gpu.enabled``;
        ``source_text`` reads a file's current text (default: the disk) so that an editor can
        hand in unsaved buffers.
        """
        self.root = root
        self.settings = settings
        self.version = ENRICHMENT_VERSION
        self.store = store if store is not None else open_store(root)
        self._read = source_text or self._read_disk
        #: Span names of the workspace, for grounding replies (one query per refresh).
        self.workspace_names = WorkspaceNames()
        self._endpoints = endpoints if endpoints is not None else build_endpoints(settings)
        #: Whether any endpoint is remote: only then is the privacy rule worth checking.
        self._has_remote = any(backend.is_remote for backend in settings.backends)
        #: The engine closes the GPU sampler only if it made it.
        self._owns_gpu = gpu is None
        self.gpu = gpu if gpu is not None else _default_gpu(settings)
        self.cascade = Cascade(
            self._endpoints,
            settings.enrichment,
            self._record_attempt,
            gpu=self.gpu,
            gpu_settings=settings.gpu,
            cost=_cost_function(),
        )
        self._in_flight: dict[str, asyncio.Future[_HashOutcome]] = {}
        #: This engine's own calls, for a run's summary.
        self.totals = CallTotals()
        #: Hashes whose enrichment this engine's calls stored (not another process's).
        self.landed_hashes: set[str] = set()
        #: Who holds a claim in the ``claims`` table: host, pid and a random part.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        #: Claims go through their own connection in a worker thread, so waiting on the
        #: database's write lock never blocks the event loop.
        self._claims_store: Store | None = None
        self._claims_lock = threading.Lock()
        self._claimed: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None
        #: The store write that failed: every later call stops before reaching a model.
        self.write_failure: StoreWriteFailed | None = None
        #: The failure was a lock held too long elsewhere: the next ``enrich`` tries again.
        self._write_failure_passes = False

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
        if self.write_failure is not None:
            if not self._write_failure_passes:
                raise self.write_failure
            self.write_failure = None
            self.cascade.halt(None)
        waiting = {h: self._in_flight[h] for h in sources if h in self._in_flight}
        mine = {h: s for h, s in sources.items() if h not in waiting}
        loop = asyncio.get_running_loop()
        futures = {h: loop.create_future() for h in mine}
        self._in_flight.update(futures)
        results: dict[str, _HashOutcome] = {}
        claimed: set[str] = set()
        try:
            if mine:
                claimed = await self._claim(list(mine))
            for h in mine:
                if h not in claimed:
                    results[h] = _HashOutcome(DEFERRED, CLAIMED_ELSEWHERE, transient=True)
                elif self.store.enrichment_for(h, self.version) is not None:
                    # Landed by the process whose claim ended just before ours began.
                    results[h] = _HashOutcome(ENRICHED)
            work = [source for h, source in mine.items() if h in claimed and h not in results]
            results.update(await self._enrich_hashes(work, tier))
        finally:
            for h, future in futures.items():
                self._in_flight.pop(h, None)
                if not future.done():
                    future.set_result(
                        results.get(h, _HashOutcome(DEFERRED, "cancelled", transient=True))
                    )
            if claimed:
                await self._release(claimed)
        for h, future in waiting.items():
            results[h] = await asyncio.shield(future)
        for span in unique:
            if span.id in outcomes:
                continue
            outcome = results.get(
                span.content_hash, _HashOutcome(DEFERRED, "not tried", transient=True)
            )
            outcomes[span.id] = self._span_outcome(span, outcome)
        return [outcomes[span.id] for span in unique]

    def capacity(self) -> int:
        """Useful number of concurrent ``enrich`` calls: the starting tier's parallelism (>= 1)."""
        for tier in self.settings.enrichment.tiers:
            endpoints = self._endpoints.get(tier)
            if endpoints:
                return max(1, sum(ep.parallel for ep in endpoints))
        return 1

    def stall(self) -> tuple[float, str]:
        """Why work waits now and for how long: (seconds until some endpoint takes calls
        again, "<backend> <reason>"). (0, "") when an endpoint takes calls now."""
        now = self.cascade._clock()
        endpoints = self._all_endpoints()
        if not endpoints or any(ep.usable(now) for ep in endpoints):
            return 0.0, ""
        soonest = min(endpoints, key=lambda ep: ep.blocked_for(now))
        reason = f"{soonest.settings.name} {soonest.blocked_reason(now)}"
        if soonest.misconfigured:
            reason = soonest.misconfigured
        return soonest.blocked_for(now), reason

    def settled_elsewhere(self, spans: list[SpanRow]) -> tuple[list[int], list[int]]:
        """Of spans another process claimed: (ids now enriched, failed for good or gone;
        ids nobody holds any more, free to take)."""
        max_failures = self.settings.enrichment.max_failures
        finished: list[int] = []
        open_spans: list[SpanRow] = []
        for span in spans:
            failure = self.store.failure_for(span.content_hash)
            if (
                self.store.enrichment_for(span.content_hash, self.version) is not None
                or (failure is not None and failed_for_good(failure["count"], max_failures))
                or queries.current_hash(self.store, span.id) != span.content_hash
            ):
                finished.append(span.id)
            else:
                open_spans.append(span)
        held = queries.claimed_elsewhere(
            self.store, [s.content_hash for s in open_spans], self.owner, time.time()
        )
        if held:
            owners = queries.claim_owners(self.store, list(held))
            held = {h for h, owner in owners.items() if not _owner_is_dead(owner)}
        free = [s.id for s in open_spans if s.content_hash not in held]
        return finished, free

    def all_misconfigured(self) -> bool:
        """Whether every endpoint is known to be misconfigured (waiting cannot help)."""
        endpoints = self._all_endpoints()
        return bool(endpoints) and all(ep.misconfigured for ep in endpoints)

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
        """Close every HTTP client, the GPU sampler it made, and the store (its claims are
        given up, so another process can take those spans at once)."""
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        await asyncio.gather(
            *(ep.backend.aclose() for ep in self._all_endpoints()), return_exceptions=True
        )
        close_gpu = getattr(self.gpu, "close", None)
        if self._owns_gpu and close_gpu is not None:
            await asyncio.to_thread(close_gpu)
        if self._claims_store is not None:
            claims = self._claims_store
            self._claims_store = None
            await asyncio.to_thread(self._close_claims, claims)
        self.store.close()

    # ------------------------------------------------------------------ internals

    def _all_endpoints(self) -> list[Endpoint]:
        return [ep for tier in self._endpoints.values() for ep in tier]

    # Claims: a span in flight is claimed in the store, so that two processes on one
    # workspace (two CLI runs, a CLI run beside an editor) never call a model for it twice.
    # Pending work stays derived: a claimed span is still pending, only not available.

    async def _claim(self, hashes: list[str]) -> set[str]:
        got = await asyncio.to_thread(self._claim_sync, hashes)
        self._claimed |= got
        if got and (self._renewer is None or self._renewer.done()):
            self._renewer = asyncio.get_running_loop().create_task(self._renew_claims())
        return got

    async def _release(self, hashes: set[str]) -> None:
        self._claimed -= hashes
        if self.write_failure is not None:
            return  # the store takes no writes; the lease runs out by itself
        try:
            await asyncio.to_thread(self._release_sync, hashes)
        except (sqlite3.Error, StoreError) as exc:
            # The lease runs out by itself; nothing is lost.
            log.debug("releasing %d claims failed: %s", len(hashes), exc)

    def _claims_connection(self) -> Store:
        if self._claims_store is None:
            self._claims_store = open_store(self.root)
        return self._claims_store

    def _claim_sync(self, hashes: list[str]) -> set[str]:
        with self._claims_lock:
            if self.write_failure is not None:
                raise self.write_failure
            store = self._claims_connection()
            try:
                got = queries.claim_hashes(
                    store, hashes, self.owner, time.time(), CLAIM_LEASE_SECONDS
                )
                missing = [h for h in hashes if h not in got]
                if missing:
                    dead = [
                        owner
                        for owner in set(queries.claim_owners(store, missing).values())
                        if _owner_is_dead(owner)
                    ]
                    if dead:
                        queries.drop_claims_of(store, dead)
                        got |= queries.claim_hashes(
                            store, missing, self.owner, time.time(), CLAIM_LEASE_SECONDS
                        )
            except (sqlite3.Error, StoreError) as exc:
                raise self._write_failed(exc) from exc
            return got

    def _release_sync(self, hashes: set[str]) -> None:
        with self._claims_lock:
            if self._claims_store is not None:
                queries.release_claims(self._claims_store, hashes, self.owner)

    def _close_claims(self, store: Store) -> None:
        with self._claims_lock:
            if self.write_failure is None:
                try:
                    queries.release_claims(store, None, self.owner)
                except (sqlite3.Error, StoreError):
                    pass  # the lease runs out by itself
            store.close()

    async def _renew_claims(self) -> None:
        while self._claimed:
            await asyncio.sleep(CLAIM_RENEW_SECONDS)
            held = set(self._claimed)
            try:
                await asyncio.to_thread(self._renew_sync, held)
            except (sqlite3.Error, StoreError) as exc:
                log.warning("renewing claims failed: %s", exc)

    def _renew_sync(self, hashes: set[str]) -> None:
        with self._claims_lock:
            if self._claims_store is not None:
                queries.claim_hashes(
                    self._claims_store, list(hashes), self.owner, time.time(), CLAIM_LEASE_SECONDS
                )

    def _write_failed(self, exc: BaseException) -> StoreWriteFailed:
        """Remember the first failed store write and stop every later model call. A lasting
        failure (read-only, disk full, I/O) holds for the engine's life; a lock another
        process held too long holds only until the next :meth:`enrich` (a CLI run stops on
        it; the server tries again later)."""
        if self.write_failure is None:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.write_failure = StoreWriteFailed(
                f"cannot write the index {self.store.path}: {detail}; "
                "stopped before calling the model again (nothing already stored is lost)"
            )
            self._write_failure_passes = _is_lock_timeout(exc)
            self.cascade.halt(self.write_failure)
        return self.write_failure

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
                reason = _no_route_reason(tier, local_only)
                results[source.span.content_hash] = _HashOutcome(
                    DEFERRED, reason, deferral=Deferral(DeferralKind.NO_ROUTE, reason, True)
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
        # A tier whose model keeps failing batches enriches one span a call (stats says so).
        off = set(queries.batching_off(self.store))
        single_tiers = {
            tier
            for tier, endpoints in self._endpoints.items()
            if any((tier, ep.settings.model) in off for ep in endpoints)
        }
        candidates = [
            BatchCandidate(source, job.tiers[0])
            for source, job in routed
            if job.tiers[0] not in single_tiers
            and self.cascade.tier_contexts(job.local_only)[job.tiers[0]]
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
        if result.deferred_reason is not None or not result.attempted:
            return {
                content: _HashOutcome(
                    DEFERRED, result.deferred_reason or "not tried", transient=result.transient
                )
            }
        error = (result.failure or FailureKind.INVALID_OUTPUT).value
        if not queries.hash_in_use(self.store, content):
            return {content: _HashOutcome(DISCARDED, "code changed while enriching")}
        enrichment = self.settings.enrichment
        try:
            count = queries.record_failure(
                self.store,
                content,
                error,
                time.time(),
                enrichment.failure_retry_base,
                enrichment.failure_retry_max,
            )
        except (sqlite3.Error, StoreError) as exc:
            raise self._write_failed(exc) from exc
        return {content: _HashOutcome(FAILED, error, failures=count)}

    def _store_landed(self, result: JobResult, job: Job) -> dict[str, _HashOutcome]:
        outcomes: dict[str, _HashOutcome] = {}
        for source in job.sources:
            landing = result.landed.get(source.span.id)
            if landing is None:
                continue
            try:
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
            except (sqlite3.Error, StoreError) as exc:
                raise self._write_failed(exc) from exc
            if written:
                self.landed_hashes.add(source.span.content_hash)
                tiers = self.totals.by_tier
                tiers[landing.tier] = tiers.get(landing.tier, 0) + 1
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
        deferral = None
        if status == DEFERRED:
            deferral = outcome.deferral or _deferral(error, outcome.transient)
        return SpanOutcome(
            span.id, span.content_hash, status, error, outcome.failures, outcome.transient, deferral
        )

    def _record_attempt(self, attempt: queries.Attempt) -> None:
        if self.write_failure is not None:
            raise self.write_failure
        totals = self.totals
        totals.calls += 1
        totals.tokens_in += attempt.tokens_in
        totals.tokens_out += attempt.tokens_out
        totals.spans_enriched += attempt.enriched
        try:
            queries.record_attempt(self.store, attempt)
        except (sqlite3.Error, StoreError) as exc:
            raise self._write_failed(exc) from exc

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
            names = self.workspace_names.for_file(self.store, text, file_spans)
            # A container's hash covers only its skeleton, so its text can change under the
            # same hash: only a file identical to the indexed one vouches for it.
            indexed = queries.indexed_file_sha256(self.store, path)
            file_current = indexed == file_sha256(text.encode("utf-8"))
            for span in group:
                if span.kind in CONTAINER_KINDS and not file_current:
                    loaded.append((span, None, "file changed since it was indexed"))
                else:
                    loaded.append(_source_for(span, lines, file_spans, names))
        return loaded

    def _read_disk(self, path: str) -> str | None:
        return read_source_text(self.root / path)  # as the indexer read it


def _source_for(
    span: SpanRow, lines: list[str], file_spans: list[SpanRow], names: Names = NO_NAMES
) -> tuple[SpanRow, SpanSource | None, str | None]:
    if span.end_line >= len(lines):
        return span, None, "source changed since indexing"
    if (
        span.kind not in CONTAINER_KINDS
        and content_hash(span_text(span, lines)) != span.content_hash
    ):
        return span, None, "source changed since indexing"
    shown = [line.rstrip("\r") for line in lines[span.start_line : span.end_line + 1]]
    context = enclosing_context(span, file_spans, lines)
    return span, SpanSource(span, shown, context, names), None


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
    for outcome in done:
        if isinstance(outcome, StoreWriteFailed):
            raise outcome  # the whole run stops: nothing more can be recorded
    for (sources, _), outcome in zip(work, done, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, asyncio.CancelledError):
                log.error(
                    "enrichment job failed unexpectedly",
                    exc_info=(type(outcome), outcome, outcome.__traceback__),
                )
            cancelled = isinstance(outcome, asyncio.CancelledError)
            reason = "cancelled" if cancelled else "internal error"
            for source in sources:
                outcomes.setdefault(
                    source.span.content_hash, _HashOutcome(DEFERRED, reason, transient=cancelled)
                )
        else:
            outcomes.update(outcome)
    return outcomes


def _is_lock_timeout(exc: BaseException) -> bool:
    """Whether a store error only says another process held the write lock too long."""
    if isinstance(exc, StoreLocked):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _owner_is_dead(owner: str) -> bool:
    """Whether a claim's owner is a process of this machine that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def build_endpoints(settings: Settings) -> dict[str, list[Endpoint]]:
    """One endpoint (backend client, breaker, concurrency limit) per configured backend."""
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
    return endpoints


def _deferral(error: str | None, transient: bool) -> Deferral:
    """The typed deferral of an outcome whose kind was not set where it was made."""
    detail = error or "not tried"
    if error == CLAIMED_ELSEWHERE:
        return Deferral(DeferralKind.CLAIMED, detail)
    if error == "cancelled":
        return Deferral(DeferralKind.CANCELLED, detail)
    if error == "internal error":
        return Deferral(DeferralKind.INTERNAL, detail)
    return Deferral(DeferralKind.UNAVAILABLE, detail)


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
