"""`spanlens enrich`: enrich the pending spans with a bounded worker pool.

The command's pre-flight (:mod:`spanlens_lsp.enrichment.call.preflight`) has already probed the
endpoints the engine calls. The loop feeds the engine one file's pending spans at a time (so related
spans can share batched calls), as many files at once as the starting tier can serve. It
waits out transient endpoint states instead of draining the queue as deferred, retries a
failed span until it is failed for good, leaves spans another process claimed to it, and
gives up only after ``enrichment.give_up_after`` seconds without progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spanlens_lsp.enrichment.engine import EnrichmentEngine
from spanlens_lsp.enrichment.outcomes import DEFERRED, DISCARDED, ENRICHED, FAILED, SpanOutcome
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import Deferral, DeferralKind
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.enrichments import CLAIMED_ELSEWHERE
from spanlens_lsp.store.rows import SpanRow

__all__ = ["EnrichRun", "run_enrich", "summary_lines"]

#: Spans handed to one ``enrich`` call: one file's pending spans, at most this many.
CHUNK_SPANS = 48

ProgressFn = Callable[[int, int, str], None]


@dataclass(slots=True)
class EnrichRun:
    """The summary of one `spanlens enrich` run."""

    succeeded: int = 0
    failed: int = 0
    discarded: int = 0
    deferred: int = 0
    #: Spans still without a fresh enrichment after the run (failed ones not counted).
    pending: int = 0
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    by_tier: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    #: Spans another spanlens process enriched (or failed) while this run waited for them.
    elsewhere: int = 0
    #: Why the run stopped before every span was enriched or failed: nothing could make
    #: progress for ``give_up_after`` seconds (which endpoint, and why), or every backend
    #: is misconfigured.
    stopped: str | None = None

    def add(self, outcomes: list[SpanOutcome]) -> None:
        """Count one ``enrich`` call's outcomes."""
        for outcome in outcomes:
            if outcome.status == ENRICHED:
                self.succeeded += 1
            elif outcome.status == FAILED:
                self.failed += 1
            elif outcome.status == DISCARDED:
                self.discarded += 1
            elif outcome.status == DEFERRED:
                self.deferred += 1
            if outcome.error and outcome.status in (FAILED, DEFERRED):
                self.errors[outcome.error] = self.errors.get(outcome.error, 0) + 1

    def as_json(self) -> dict[str, Any]:
        """One flat object: the documented keys first, then ``tier_<name>`` counts."""
        flat: dict[str, Any] = {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pending": self.pending,
            "calls": self.calls,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "seconds": round(self.seconds, 3),
            "discarded": self.discarded,
            "deferred": self.deferred,
            "elsewhere": self.elsewhere,
            "stopped": self.stopped,
        }
        flat.update({f"tier_{tier}": count for tier, count in self.by_tier.items()})
        return flat


async def run_enrich(
    engine: EnrichmentEngine,
    *,
    limit: int | None = None,
    tier: str | None = None,
    paths: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> EnrichRun:
    """Enrich the pending spans of ``engine``'s workspace (at most ``limit``, of ``paths``
    when given) and summarise the run.

    The run waits out transient endpoint states (a rate limit's cool-down, an open breaker,
    GPU limits) and retries a failed span until it is failed for good (``max_failures``); it
    ends when every span is enriched or failed, or when nothing could make progress for
    ``enrichment.give_up_after`` seconds (``stopped`` then says which endpoint and why).
    Spans another process has claimed are left to it and waited for. The engine (built by
    the composition root, :func:`spanlens_lsp.app.command_engine`) stays open: its owner closes
    it. Raises :class:`~spanlens_lsp.store.enrichments.StoreWriteFailed` when the index cannot
    be written.
    """
    started = time.perf_counter()
    settings = engine.settings
    pending = engine.pending(limit=limit, paths=paths)
    run = await _Run(engine, settings, pending, tier, progress, started).execute()
    totals = engine.totals
    run.calls = totals.calls
    run.tokens_in = totals.tokens_in
    run.tokens_out = totals.tokens_out
    run.by_tier = dict(sorted(totals.by_tier.items()))
    run.pending = queries.unfinished_count(
        engine.store, engine.version, settings.enrichment.max_failures, paths
    )
    run.seconds = time.perf_counter() - started
    return run


#: Seconds between two looks at spans another process is enriching.
ELSEWHERE_POLL_SECONDS = 0.5
#: Shortest wait after a transient deferral (so that a deferral with nothing to wait out,
#: such as GPU limits, is not retried in a busy loop).
MIN_WAIT_SECONDS = 0.05
GPU_WAIT_SECONDS = 2.0


class _Run:
    """One run's queue, workers and waiting; see :func:`run_enrich`."""

    def __init__(
        self,
        engine: EnrichmentEngine,
        settings: Settings,
        pending: list[SpanRow],
        tier: str | None,
        progress: ProgressFn | None,
        started: float,
    ) -> None:
        self.engine = engine
        self.tier = tier
        self.progress = progress
        self.started = started
        self.max_failures = settings.enrichment.max_failures
        self.give_up_after = settings.enrichment.give_up_after
        self.run = EnrichRun()
        self.queue = deque(file_chunks(pending))
        self.total = len(pending)
        self.done = 0
        self.busy = 0
        #: Spans another process claimed: waited for, taken over if its claim runs out.
        self.elsewhere: dict[int, SpanRow] = {}
        self.last_progress = time.monotonic()
        self.changed = asyncio.Event()
        self.waiting_text = ""

    async def execute(self) -> EnrichRun:
        workers = max(1, min(self.engine.capacity(), len(self.queue)))
        tasks = [asyncio.ensure_future(self._worker()) for _ in range(workers)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.run

    async def _worker(self) -> None:
        while self.run.stopped is None:
            if not self.queue:
                if self.busy == 0 and not self.elsewhere:
                    self.changed.set()
                    return
                if self.busy == 0:
                    await self._look_elsewhere()
                else:
                    self.changed.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), ELSEWHERE_POLL_SECONDS)
                continue
            chunk = self.queue.popleft()
            self.busy += 1
            try:
                outcomes = await self.engine.enrich(chunk, tier=self.tier)
            finally:
                self.busy -= 1
                self.changed.set()
            wait_reason = self._settle(chunk, outcomes)
            self._report()
            if wait_reason is not None:
                await self._wait_out(wait_reason)

    def _settle(self, chunk: list[SpanRow], outcomes: list[SpanOutcome]) -> Deferral | None:
        """Count final outcomes, queue what is to be tried again; the deferral to wait out,
        if any."""
        by_id = {span.id: span for span in chunk}
        final: list[SpanOutcome] = []
        again: list[SpanRow] = []
        retry: list[SpanRow] = []
        wait_reason: Deferral | None = None
        for outcome in outcomes:
            span = by_id[outcome.span_id]
            deferral = outcome.deferral if outcome.status == DEFERRED else None
            if deferral is not None and deferral.kind is DeferralKind.CLAIMED:
                self.elsewhere[span.id] = span
            elif outcome.status == DEFERRED and outcome.transient:
                again.append(span)
                wait_reason = deferral or Deferral(
                    DeferralKind.UNAVAILABLE, outcome.error or "backends paused"
                )
            elif outcome.status == FAILED and outcome.failures < self.max_failures:
                retry.append(span)  # not failed for good yet: this run tries it again
            elif outcome.status == ENRICHED and span.content_hash not in self.engine.landed_hashes:
                self.run.elsewhere += 1  # another process landed it first
                self.done += 1
                self.last_progress = time.monotonic()
            else:
                final.append(outcome)
        self.run.add(final)
        self.done += len(final)
        if final or retry:
            self.last_progress = time.monotonic()
        if again:
            self.queue.appendleft(again)
        if retry:
            self.queue.append(retry)
        return wait_reason

    async def _wait_out(self, deferral: Deferral) -> None:
        """Wait until an endpoint takes calls again (by the endpoints' own clocks, not the
        call retry policy's delays: see :mod:`spanlens_lsp.enrichment.call.retry`), showing why;
        give up after ``give_up_after`` seconds without progress."""
        first = True
        while self.run.stopped is None:
            seconds, reason = self.engine.stall()
            if not reason:
                if not first:
                    break
                # Nothing to wait out by the endpoints' clocks (GPU limits, a trial that
                # just ended): a short pause, longer for the GPU.
                reason = deferral.detail
                gpu = deferral.kind is DeferralKind.GPU
                seconds = GPU_WAIT_SECONDS if gpu else MIN_WAIT_SECONDS
            if self.engine.all_misconfigured():
                self.run.stopped = reason
                break
            idle = time.monotonic() - self.last_progress
            # Not while another worker's call runs: it may still land.
            if idle >= self.give_up_after and self.busy == 0:
                self.run.stopped = f"no progress for {self.give_up_after:g} s: {reason}"
                break
            self.waiting_text = f"waiting {math.ceil(seconds)} s: {reason}"
            self._report()
            await asyncio.sleep(min(max(seconds, MIN_WAIT_SECONDS), 1.0))
            first = False
        self.waiting_text = ""

    async def _look_elsewhere(self) -> None:
        """Spans another process claimed: finished ones are done, free ones come back."""
        before = len(self.elsewhere)
        finished, free = self.engine.settled_elsewhere(list(self.elsewhere.values()))
        for span_id in finished:
            self.elsewhere.pop(span_id, None)
        self.run.elsewhere += len(finished)
        self.done += len(finished)
        back = [self.elsewhere.pop(span_id) for span_id in free if span_id in self.elsewhere]
        if back:
            self.queue.extend(file_chunks(back))
        if len(self.elsewhere) < before:
            self.last_progress = time.monotonic()
        if not self.elsewhere:
            return
        idle = time.monotonic() - self.last_progress
        if idle >= self.give_up_after:
            self.run.stopped = (
                f"no progress for {self.give_up_after:g} s: {len(self.elsewhere)} spans "
                f"{CLAIMED_ELSEWHERE}"
            )
            return
        if not back:
            self.waiting_text = f"waiting: {len(self.elsewhere)} spans {CLAIMED_ELSEWHERE}"
            self._report()
            await asyncio.sleep(ELSEWHERE_POLL_SECONDS)
            self.waiting_text = ""

    def _report(self) -> None:
        if self.progress is None:
            return
        if self.waiting_text:
            text = self.waiting_text
        else:
            totals = self.engine.totals
            rate = totals.spans_enriched / max(1e-6, time.perf_counter() - self.started)
            tokens = totals.tokens_in + totals.tokens_out
            text = f"calls {totals.calls} · tokens {tokens} · {rate:.1f} spans/s"
        self.progress(self.done, self.total, text)


def file_chunks(spans: list[SpanRow], size: int = CHUNK_SPANS) -> list[list[SpanRow]]:
    """Spans cut into chunks of one file each (ordered by path then line), at most ``size``."""
    chunks: list[list[SpanRow]] = []
    for span in spans:
        if chunks and chunks[-1][0].path == span.path and len(chunks[-1]) < size:
            chunks[-1].append(span)
        else:
            chunks.append([span])
    return chunks


def summary_lines(run: EnrichRun) -> list[str]:
    """The human summary `spanlens enrich` prints."""
    lines = [
        f"enriched {run.succeeded}, failed {run.failed}, deferred {run.deferred}, "
        f"discarded {run.discarded}; {run.pending} still pending",
        f"calls {run.calls}, tokens {run.tokens_in} in / {run.tokens_out} out, {run.seconds:.1f}s",
    ]
    if run.by_tier:
        lines.append("by tier: " + ", ".join(f"{t} {n}" for t, n in run.by_tier.items()))
    if run.elsewhere:
        lines.append(f"{run.elsewhere} spans were enriched by another spanlens process")
    if run.errors:
        lines.append("problems: " + ", ".join(f"{e} ({n})" for e, n in run.errors.items()))
    if run.stopped:
        lines.append(f"stopped early: {run.stopped}; the rest stays pending")
    return lines
