"""The enrichment engine: the one object the language server and the CLI enrich through.

``EnrichmentEngine.enrich(spans)`` turns spans into validated enrichments: it reads each
span's text, skips hashes already enriched, routes each span to a starting tier, batches small
related spans, runs the cascade and writes a result only while some span still has the hash it
was made for. Model and backend problems never raise: they come back as a
:class:`SpanOutcome` per span; a failed store write raises
:class:`~spanlens_lsp.store.enrichments.StoreWriteFailed` and stops every later call. Spans in
flight are claimed in the store (a lease, renewed while held), so two processes on one
workspace never call a model for the same span. The engine reads through one store connection
on the event loop and writes (enrichments, attempts, failures, claims) only through a store
writer thread (:class:`~spanlens_lsp.store.worker.StoreWorker`), so the loop never waits on
SQLite's write lock; per endpoint it holds one long-lived HTTP client, breaker and
concurrency limit. Use it from one event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spanlens_lsp.enrichment.backends.base import FailureKind
from spanlens_lsp.enrichment.call.cascade import Cascade, PlanResult
from spanlens_lsp.enrichment.call.endpoints import (
    Endpoint,
    GpuProbe,
    all_misconfigured,
    close_endpoints,
    health_of,
    stall_of,
)
from spanlens_lsp.enrichment.call.path import CallPath
from spanlens_lsp.enrichment.call.preflight import preflight
from spanlens_lsp.enrichment.claims import Claims, new_owner, settled_elsewhere
from spanlens_lsp.enrichment.outcomes import (
    DEFERRED,
    DISCARDED,
    ENRICHED,
    FAILED,
    CallTotals,
    HashOutcome,
    SpanOutcome,
    deferral_for,
    deferred_outcome,
    gather_outcomes,
)
from spanlens_lsp.enrichment.planning.calls import CallPlan, plan_calls
from spanlens_lsp.enrichment.planning.privacy import remote_allowed
from spanlens_lsp.enrichment.planning.router import choose_route, no_route_reason
from spanlens_lsp.enrichment.planning.sources import SourceReader, load_sources
from spanlens_lsp.enrichment.prompt.build import single_prompt_tokens
from spanlens_lsp.enrichment.prompt.names import WorkspaceNames
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.enrichment.reply.validate import to_span_lines
from spanlens_lsp.enrichment.writes import GuardedWrites
from spanlens_lsp.indexing.source import read_source_text
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION, Deferral, DeferralKind
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.enrichments import CLAIMED_ELSEWHERE, StoreWriteFailed
from spanlens_lsp.store.errors import StoreError
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.worker import StoreWrites

log = logging.getLogger(__name__)

__all__ = ["EnrichmentEngine"]


class EnrichmentEngine:
    """Enrich spans through the configured backends; see the module docstring."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        store: Store,
        endpoints: dict[str, list[Endpoint]],
        writer: StoreWrites,
        gpu: GpuProbe | None,
        source_text: SourceReader | None = None,
        owns_writer: bool = False,
    ) -> None:
        """Enrich through ``endpoints`` (by tier), reading ``store`` on the event loop and
        writing through ``writer``; the engine closes the store and the endpoints, and the
        writer only when ``owns_writer``. The composition root (:mod:`spanlens_lsp.app`) builds
        them all.

        ``gpu`` is the GPU sampler the caller built (and closes), or None for no GPU
        telemetry or limits; ``source_text`` reads a file's current text (default: the disk)
        so that an editor can hand in unsaved buffers.
        """
        self.root = root
        self.settings = settings
        self.version = ENRICHMENT_VERSION
        self.store = store
        self._read = source_text or self._read_disk
        #: Span names of the workspace, for grounding replies (one query per refresh).
        self.workspace_names = WorkspaceNames()
        self._endpoints = endpoints
        #: Whether any endpoint is remote: only then is the privacy rule worth checking.
        self._has_remote = any(backend.is_remote for backend in settings.backends)
        self.gpu = gpu
        #: Every write goes through this thread; the engine closes it only if it owns it.
        self._owns_writer = owns_writer
        self.writer: StoreWrites = writer
        #: The one path every model call of this engine takes (spans, batches, overviews).
        self.calls = CallPath(
            self._endpoints,
            settings.enrichment,
            self._record_attempt,
            gpu=self.gpu,
            gpu_settings=settings.gpu,
            cost=_cost_function(),
        )
        self.cascade = Cascade(self.calls)
        self._in_flight: dict[str, asyncio.Future[HashOutcome]] = {}
        #: This engine's own calls, for a run's summary.
        self.totals = CallTotals()
        #: Hashes whose enrichment this engine's calls stored (not another process's).
        self.landed_hashes: set[str] = set()
        #: Who holds a claim in the ``claims`` table: host, pid and a random part.
        self.owner = new_owner()
        self._claims = Claims(self.writer, self.owner)
        self._writes = GuardedWrites(self.writer, self.store.path, self.calls.halt)

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
        for span, source, problem in load_sources(
            self.store, self._read, unique, self.workspace_names
        ):
            if problem is not None or source is None:
                outcomes[span.id] = SpanOutcome(span.id, span.content_hash, DISCARDED, problem)
            elif queries.enrichment_for(self.store, span.content_hash, self.version) is not None:
                outcomes[span.id] = SpanOutcome(span.id, span.content_hash, ENRICHED)
            else:
                sources.setdefault(span.content_hash, source)
        self._writes.check()
        waiting = {h: self._in_flight[h] for h in sources if h in self._in_flight}
        mine = {h: s for h, s in sources.items() if h not in waiting}
        loop = asyncio.get_running_loop()
        futures = {h: loop.create_future() for h in mine}
        self._in_flight.update(futures)
        results: dict[str, HashOutcome] = {}
        claimed: set[str] = set()
        try:
            if mine:
                claimed = await self._claim(list(mine))
            for h in mine:
                if h not in claimed:
                    results[h] = deferred_outcome(DeferralKind.CLAIMED, CLAIMED_ELSEWHERE)
                elif queries.enrichment_for(self.store, h, self.version) is not None:
                    # Landed by the process whose claim ended just before ours began.
                    results[h] = HashOutcome(ENRICHED)
            work = [source for h, source in mine.items() if h in claimed and h not in results]
            results.update(await self._enrich_hashes(work, tier))
        finally:
            for h, future in futures.items():
                self._in_flight.pop(h, None)
                if not future.done():
                    future.set_result(
                        results.get(h, deferred_outcome(DeferralKind.CANCELLED, "cancelled"))
                    )
            if claimed:
                await self._release(claimed)
        for h, future in waiting.items():
            results[h] = await asyncio.shield(future)
        for span in unique:
            if span.id in outcomes:
                continue
            outcome = results.get(
                span.content_hash, HashOutcome(DEFERRED, "not tried", transient=True)
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
        return stall_of(self._all_endpoints(), self.calls.clock())

    def settled_elsewhere(self, spans: list[SpanRow]) -> tuple[list[int], list[int]]:
        """Of spans another process claimed: (ids now enriched, failed for good or gone;
        ids nobody holds any more, free to take)."""
        max_failures = self.settings.enrichment.max_failures
        return settled_elsewhere(self.store, spans, self.version, max_failures, self.owner)

    def all_misconfigured(self) -> bool:
        """Whether every endpoint is known to be misconfigured (waiting cannot help)."""
        return all_misconfigured(self._all_endpoints())

    def health(self) -> dict[str, Any]:
        """Per endpoint: tier, url (without credentials), model, breaker state, last error and
        ``misconfigured`` (what to fix, or None); and ``unreachable`` (see
        :func:`~spanlens_lsp.enrichment.call.endpoints.health_of`)."""
        return health_of(self._all_endpoints())

    async def probe(self, timeout: float = 2.0) -> dict[str, Any]:
        """Is each endpoint reachable, and does it serve its model (Ollama ``/api/tags``,
        OpenAI ``/v1/models``)? Probed through the engine's own endpoints (see
        :func:`~spanlens_lsp.enrichment.call.preflight.preflight`).

        Returns ``{"reachable": bool (any backend), "backends": [...]}``.
        """
        backends = await preflight(self.calls, timeout)
        return {"reachable": any(b["reachable"] for b in backends), "backends": backends}

    def pending(self, limit: int | None = None, paths: list[str] | None = None) -> list[SpanRow]:
        """Spans to enrich now (see :func:`spanlens_lsp.store.enrichments.pending_spans`)."""
        return queries.pending_spans(
            self.store,
            self.version,
            self.settings.enrichment.max_failures,
            time.time(),
            limit=limit,
            paths=paths,
        )

    async def aclose(self) -> None:
        """Close every HTTP client, the writer it made, and the store (its claims are given
        up, so another process can take those spans at once). The GPU sampler is the
        caller's to close."""
        await close_endpoints(self._all_endpoints())
        await self._claims.close(release=self.write_failure is None)
        if self._owns_writer:
            await self.writer.aclose()
        self.store.close()

    @property
    def write_failure(self) -> StoreWriteFailed | None:
        """The store write that failed: every later call stops before reaching a model."""
        return self._writes.failure

    # ------------------------------------------------------------------ internals

    def _all_endpoints(self) -> list[Endpoint]:
        return [ep for tier in self._endpoints.values() for ep in tier]

    async def _claim(self, hashes: list[str]) -> set[str]:
        if self.write_failure is not None:
            raise self.write_failure
        try:
            return await self._claims.take(hashes)
        except (sqlite3.Error, StoreError) as exc:
            raise self._writes.failed(exc) from exc

    async def _release(self, hashes: set[str]) -> None:
        if self.write_failure is not None:
            self._claims.forget(hashes)  # the store takes no writes; the lease runs out
            return
        await self._claims.release(hashes)

    async def _enrich_hashes(
        self, sources: list[SpanSource], tier: str | None
    ) -> dict[str, HashOutcome]:
        results: dict[str, HashOutcome] = {}
        routed: list[tuple[SpanSource, CallPlan]] = []
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
                reason = no_route_reason(tier, local_only)
                results[source.span.content_hash] = HashOutcome(
                    DEFERRED, reason, deferral=Deferral(DeferralKind.NO_ROUTE, reason, True)
                )
                continue
            routed.append((source, CallPlan([source], route, local_only)))
        batches, singles = plan_calls(
            routed,
            self.settings.enrichment,
            {tier: [ep.settings.model for ep in eps] for tier, eps in self._endpoints.items()},
            lambda: queries.batching_off(self.store),
            self.cascade.tier_contexts,
        )
        work = [([j.sources[0] for j in batch], self._run_batch(batch)) for batch in batches]
        work += [(plan.sources, self._run_single(plan)) for plan in singles]
        results.update(await gather_outcomes(work))
        return results

    async def _run_batch(self, plans: list[CallPlan]) -> dict[str, HashOutcome]:
        """One call for the batch; spans whose entry did not validate go single."""
        batch = CallPlan(
            [plan.sources[0] for plan in plans],
            plans[0].tiers[:1],
            any(plan.local_only for plan in plans),
        )
        result = await self.cascade.run(batch)
        outcomes = await self._store_landed(result, batch)
        rest = [plan for plan in plans if plan.sources[0].span.id not in result.landed]
        outcomes.update(await gather_outcomes([(j.sources, self._run_single(j)) for j in rest]))
        return outcomes

    async def _run_single(self, plan: CallPlan) -> dict[str, HashOutcome]:
        result = await self.cascade.run(plan)
        outcomes = await self._store_landed(result, plan)
        source = plan.sources[0]
        content = source.span.content_hash
        if content in outcomes:
            return outcomes
        if result.deferred_reason is not None or not result.attempted:
            reason = result.deferred_reason or "not tried"
            return {
                content: HashOutcome(
                    DEFERRED,
                    reason,
                    transient=result.transient,
                    deferral=Deferral(result.deferred_kind, reason),
                )
            }
        error = (result.failure or FailureKind.INVALID_OUTPUT).value
        if not self.store.hash_in_use(content):
            return {content: HashOutcome(DISCARDED, "code changed while enriching")}
        enrichment = self.settings.enrichment
        now = time.time()
        count: int = await self._writes.write(
            lambda store: queries.record_failure(
                store,
                content,
                error,
                now,
                enrichment.failure_retry_base,
                enrichment.failure_retry_max,
            )
        )
        return {content: HashOutcome(FAILED, error, failures=count)}

    async def _store_landed(self, result: PlanResult, plan: CallPlan) -> dict[str, HashOutcome]:
        outcomes: dict[str, HashOutcome] = {}
        for source in plan.sources:
            landing = result.landed.get(source.span.id)
            if landing is None:
                continue
            put = functools.partial(
                queries.put_enrichment,
                content_hash=source.span.content_hash,
                version=self.version,
                data=to_span_lines(landing.data, source.first_line),
                model=landing.model,
                tier=landing.tier,
                backend=landing.backend,
                host=landing.host,
                tokens_in=landing.tokens_in,
                tokens_out=landing.tokens_out,
                duration_ms=landing.duration_ms,
            )
            written: bool = await self._writes.write(put)
            if written:
                self.landed_hashes.add(source.span.content_hash)
                tiers = self.totals.by_tier
                tiers[landing.tier] = tiers.get(landing.tier, 0) + 1
            outcomes[source.span.content_hash] = (
                HashOutcome(ENRICHED)
                if written
                else HashOutcome(DISCARDED, "code changed while enriching")
            )
        return outcomes

    def _span_outcome(self, span: SpanRow, outcome: HashOutcome) -> SpanOutcome:
        status, error = outcome.status, outcome.error
        if status == ENRICHED and self.store.current_hash(span.id) != span.content_hash:
            status, error = DISCARDED, "code changed while enriching"
        deferral = None
        if status == DEFERRED:
            deferral = outcome.deferral or deferral_for(error, outcome.transient)
        return SpanOutcome(
            span.id, span.content_hash, status, error, outcome.failures, outcome.transient, deferral
        )

    async def _record_attempt(self, attempt: queries.Attempt) -> None:
        if self.write_failure is not None:
            raise self.write_failure
        totals = self.totals
        totals.calls += 1
        totals.tokens_in += attempt.tokens_in
        totals.tokens_out += attempt.tokens_out
        totals.spans_enriched += attempt.enriched
        await self._writes.write(lambda store: queries.record_attempt(store, attempt))

    def _read_disk(self, path: str) -> str | None:
        return read_source_text(self.root / path)  # as the indexer read it


def _cost_function() -> Callable[[int, int, float, float], float] | None:
    """The price of a call (tokens in and out, seconds), when litellm's price table is here."""
    try:
        from spanlens_lsp.telemetry.cost import call_cost
    except ImportError:
        return None
    return call_cost  # type: ignore[no-any-return]
