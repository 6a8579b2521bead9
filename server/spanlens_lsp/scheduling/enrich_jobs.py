"""The enrichment lanes as jobs: spans changed by the last save, spans hovered or requested,
spans of open documents, and the idle backlog.

:class:`SpanWork` is what the four lanes share: the span queue, the engine, the spans in
flight and what must not be sent again; :class:`SpanLane` is one lane's :class:`Job` over it.
The backlog lane is derived from the store page by page (pending work is never stored, so a
restart resumes exactly where it stopped). Spans asked for by a command are urgent: they run
even while the lane is paused or backing off. Which lane may run when (pause, idle, back-off,
capacity) is the runner's business, not this module's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from spanlens_lsp.scheduling.backlog import backlog_page
from spanlens_lsp.scheduling.enricher import Enricher, ResultFn
from spanlens_lsp.scheduling.jobs import Backoff, track
from spanlens_lsp.scheduling.queue import Priority, WorkQueue
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION, DeferralKind, Status
from spanlens_lsp.store.enrichments import pending_spans, span_to_enrich
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.worker import StoreWorker

log = logging.getLogger(__name__)

#: How long an empty backlog is trusted before the store is asked again (failed spans become
#: due again as their retry times pass).
BACKLOG_RECHECK_SECONDS = 30.0
#: How long a span another spanlens process is enriching is left to it before it is
#: offered again (its enrichment has usually landed by then).
ELSEWHERE_SECONDS = 30.0


class SpanLane:
    """One enrichment lane as a job; its units are calls (a list of spans each)."""

    def __init__(self, work: SpanWork, priority: Priority) -> None:
        self.work = work
        self.priority = priority
        self.lane = int(priority)

    async def next_units(self) -> list[list[SpanRow]]:
        spans = self.work.take(self.priority, urgent_only=False)
        if spans is None and self.priority == Priority.BACKLOG:
            self.work.maybe_fetch_backlog()
        return [spans] if spans else []

    def urgent_units(self) -> list[list[SpanRow]]:
        spans = self.work.take(self.priority, urgent_only=True)
        return [spans] if spans else []

    async def run(self, unit: list[SpanRow]) -> None:
        await self.work.call(self.priority, unit)

    def pending(self) -> bool:
        return self.work.pending(self.priority)

    def wake_in(self) -> float | None:
        return self.work.backlog_wake_in() if self.priority == Priority.BACKLOG else None


class SpanWork:
    """The span queue and engine the enrichment lanes share."""

    def __init__(
        self,
        store: Store,
        queries: StoreWorker,
        engine: Enricher | None,
        settings: Settings,
        backoff: Backoff,
        wake: Callable[[], None],
    ) -> None:
        #: The event loop's own read connection (span rows, enrichment and failure lookups).
        self.store = store
        #: A worker thread for queries too slow for the loop (backlog pages).
        self.queries = queries
        self.engine = engine
        self.settings = settings
        self.backoff = backoff
        self.wake = wake
        self.queue = WorkQueue()
        self.on_result: ResultFn | None = None
        #: Told the results of the saved lane, after ``on_result`` (a saved file's embeddings).
        self.on_saved: ResultFn | None = None
        self.last_error: str | None = None
        self.explicit: set[int] = set()
        #: (span id, hash) the engine discarded since the index last changed.
        self._discarded: set[tuple[int, str]] = set()
        #: (span id, hash) no configured backend may receive (e.g. a local-only file with only
        #: remote backends): not dispatched again until the hash or the settings change.
        self._undeliverable: set[tuple[int, str]] = set()
        #: (span id, hash) another process claimed -> when to offer it again (monotonic).
        self._elsewhere: dict[tuple[int, str], float] = {}
        #: The last file path a backlog page covered: the next page starts after it, so spans
        #: that cannot be sent never hide the files behind them.
        self._backlog_cursor = ""
        self.in_flight: dict[int, SpanRow] = {}
        self._fetching = False
        self.backlog_empty_until = 0.0
        #: Calls running per engine, and engines replaced by a settings change that close
        #: once their last call has finished.
        self._calls: dict[Enricher, int] = {}
        self._retiring: set[Enricher] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def lanes(self) -> list[SpanLane]:
        """The four enrichment lanes, most urgent first."""
        return [SpanLane(self, p) for p in Priority]

    # ------------------------------------------------------------------ control

    def capacity(self) -> int:
        """How many calls may run at once (0 without an engine or a backend)."""
        if self.engine is None or not self.settings.backends:
            return 0
        return max(1, self.engine.capacity())

    def push(
        self, span_ids: Iterable[int], priority: Priority, *, front: bool, explicit: bool
    ) -> int:
        if self.engine is None:
            return 0
        ids = list(span_ids)
        if explicit:
            self.explicit.update(ids)
        return self.queue.push(ids, priority, front=front)

    def invalidate(self) -> None:
        """The store changed: ask it for backlog work again; discarded spans may go again."""
        self.backlog_empty_until = 0.0
        self._discarded.clear()

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings
        self._undeliverable.clear()

    def replace_engine(self, engine: Enricher | None) -> None:
        """Use ``engine`` for new calls; the old one closes once its calls have finished."""
        old, self.engine = self.engine, engine
        if old is not None and old is not engine:
            self._retiring.add(old)
            if not self._calls.get(old):
                self._track(self._retire(old))
        if engine is None:  # facts only: nothing will ever drain the queue
            self.queue.discard([i for p in Priority for i in self.queue.lane(p)])
            self.explicit.clear()
        self._undeliverable.clear()

    async def queue_pending_of(self, paths: list[str], priority: Priority) -> int:
        """Queue the pending spans of ``paths`` (open documents) in ``priority``."""
        if self.engine is None:
            return 0
        max_failures = self.settings.enrichment.max_failures
        spans = await self.queries.run(
            lambda st: pending_spans(st, ENRICHMENT_VERSION, max_failures, time.time(), paths=paths)
        )
        ids = (s.id for s in spans if s.id not in self.in_flight)
        return self.push(ids, priority, front=False, explicit=False)

    def pending(self, priority: Priority) -> bool:
        if self.queue.lane(priority):
            return True
        if priority != Priority.BACKLOG:
            return False
        return self._fetching or self.backlog_empty_until <= time.monotonic()

    def backlog_wake_in(self) -> float | None:
        left = self.backlog_empty_until - time.monotonic()
        return left if left > 0 else None

    async def aclose(self) -> None:
        """Cancel the backlog fetch; close replaced engines."""
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # A retire task cancelled above left its engine open.
        retiring, self._retiring = list(self._retiring), set()
        for engine in retiring:
            try:
                await engine.aclose()
            except Exception:
                log.exception("closing a replaced engine failed")

    # ------------------------------------------------------------------ units

    def take(self, priority: Priority, *, urgent_only: bool) -> list[SpanRow] | None:
        """The next call of ``priority`` (marked in flight), or None when the lane has none.

        A background call is no bigger than one model request: otherwise the engine holds the
        rest of it waiting on its endpoints, where an edit cannot stop it and a save's spans
        queue behind it.
        """
        if self.capacity() == 0:
            return None

        def allowed(span_id: int) -> bool:
            return not urgent_only or span_id in self.explicit

        while True:
            ids = self.queue.take_from(
                priority, allowed, self._unit_limit(priority), self.in_flight, self._joins
            )
            if not ids:
                return None
            spans = [s for s in (self._resolve(i) for i in ids) if s is not None]
            self.explicit.difference_update(ids)
            if spans:
                for span in spans:
                    self.in_flight[span.id] = span
                return spans

    def _unit_limit(self, priority: Priority) -> int:
        enrichment = self.settings.enrichment
        if priority >= Priority.OPEN and not enrichment.batch:
            return 1
        return max(1, enrichment.batch_max_spans)

    def _joins(self, priority: Priority, first_id: int, span_id: int) -> bool:
        """Whether ``span_id`` can share one model request with ``first_id`` (background
        lanes: the engine batches spans of one file and kind within a window of lines)."""
        if priority < Priority.OPEN:
            return True
        first = self.store.span_by_id(first_id)
        span = self.store.span_by_id(span_id)
        if first is None or span is None:
            return span is None  # a vanished span costs nothing: let it ride along
        return (
            span.path == first.path
            and span.kind == first.kind
            and abs(span.start_line - first.start_line)
            <= self.settings.enrichment.batch_window_lines
        )

    def _resolve(self, span_id: int) -> SpanRow | None:
        """The span as it is now, if it still needs a model; None to drop it. Whether it does
        is the store's pending rule (:func:`~spanlens_lsp.store.enrichments.span_to_enrich`)."""
        asked = span_id in self.explicit
        span = span_to_enrich(
            self.store,
            span_id,
            ENRICHMENT_VERSION,
            self.settings.enrichment.max_failures,
            time.time(),
            asked=asked,
        )
        if span is None or asked:
            return span
        if (span.id, span.content_hash) in self._undeliverable:
            return None
        if self._elsewhere.get((span.id, span.content_hash), 0.0) > time.monotonic():
            return None
        return span

    async def call(self, priority: Priority, spans: list[SpanRow]) -> None:
        """Send ``spans`` to the engine and settle what it says about each."""
        engine = self.engine
        if engine is None:  # replaced by facts only since the spans were taken
            for span in spans:
                self.in_flight.pop(span.id, None)
            return
        self._calls[engine] = self._calls.get(engine, 0) + 1
        try:
            try:
                outcomes = await engine.enrich(spans)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an engine bug: keep the queue alive, back off
                log.exception("enrichment engine failed on %d spans", len(spans))
                self.last_error = f"engine error: {type(exc).__name__}"
                self.backoff.defer()
                self.queue.push((s.id for s in spans), priority, front=True)
                return
            self._settle(priority, outcomes)
        finally:
            for span in spans:
                self.in_flight.pop(span.id, None)
            self._calls[engine] -= 1
            if not self._calls[engine]:
                del self._calls[engine]
                if engine in self._retiring:
                    self._track(self._retire(engine))
            self.wake()
        listeners = [self.on_result, self.on_saved if priority == Priority.SAVED else None]
        for listener in listeners:
            if listener is None:
                continue
            try:
                listener(spans, outcomes)
            except Exception:
                log.exception("scheduler: result callback failed")

    def _settle(self, priority: Priority, outcomes: list[Any]) -> None:
        """What each typed outcome means for scheduling (never the wording of its error)."""
        retry: list[int] = []
        enriched = False
        for outcome in outcomes:
            deferral = outcome.deferral if outcome.status == Status.DEFERRED else None
            if outcome.status == Status.ENRICHED:
                enriched = True
            elif outcome.status == Status.FAILED:
                self.last_error = outcome.error or "enrichment failed"
            elif deferral is not None and deferral.kind == DeferralKind.CLAIMED:
                # Another process is on it: leave it alone for a while, hold nothing back.
                key = (outcome.span_id, outcome.content_hash)
                self._elsewhere[key] = time.monotonic() + ELSEWHERE_SECONDS
            elif outcome.status == Status.DEFERRED and not (deferral and deferral.lasting):
                retry.append(outcome.span_id)
            elif outcome.status == Status.DEFERRED:
                # No backend may ever take it as configured: waiting would only block others.
                self._undeliverable.add((outcome.span_id, outcome.content_hash))
                self.last_error = outcome.error
            else:
                # Discarded: the span changed while in flight (the re-index that saw it queued
                # the new version), or the index is behind the file. Not again from the
                # backlog until the index changes.
                self._discarded.add((outcome.span_id, outcome.content_hash))
        if enriched:
            self.backoff.reset()
        if retry:
            self.backoff.defer()
            self.queue.push(retry, priority, front=True)

    # ------------------------------------------------------------------ backlog

    def maybe_fetch_backlog(self) -> None:
        """Fill the backlog lane from the store in the background, unless it is known empty."""
        if (
            self._fetching
            or time.monotonic() < self.backlog_empty_until
            or self.queue.lane(Priority.BACKLOG)
        ):
            return
        self._fetching = True
        self._track(self._fetch_backlog())

    async def _fetch_backlog(self) -> None:
        max_failures = self.settings.enrichment.max_failures
        cursor = self._backlog_cursor
        now = time.monotonic()
        self._elsewhere = {k: t for k, t in self._elsewhere.items() if t > now}
        skip = frozenset(self._discarded | self._undeliverable | set(self._elsewhere))
        busy = frozenset(self.in_flight) | frozenset(
            i for p in Priority for i in self.queue.lane(p)
        )

        def wanted(span: SpanRow) -> bool:
            return span.id not in busy and (span.id, span.content_hash) not in skip

        try:
            spans, self._backlog_cursor = await self.queries.run(
                lambda st: backlog_page(st, cursor, wanted, max_failures, time.time())
            )
        finally:
            self._fetching = False
        if not spans:
            self.backlog_empty_until = time.monotonic() + BACKLOG_RECHECK_SECONDS
        else:
            self.queue.push((s.id for s in spans), Priority.BACKLOG)
        self.wake()

    async def _retire(self, engine: Enricher) -> None:
        self._retiring.discard(engine)
        await engine.aclose()

    def _track(self, coro: Any) -> asyncio.Task[Any]:
        return track(self._tasks, coro)
