"""The scheduler: which pending spans go to the engine next, how many at once, and when.

Lanes (see :class:`Priority`): spans changed by the last save, spans hovered or requested,
spans of open documents, and the idle backlog, which is derived from the store page by page
(pending work is never stored, so a restart resumes exactly where it stopped). Open-document
and backlog spans wait for the editor to be idle; an edit pauses them without touching the
call in flight. Spans asked for by a command run even while everything else is paused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from spanlens.config import Settings
from spanlens.enrichment.version import ENRICHMENT_VERSION
from spanlens.scheduling.idle import IdleClock
from spanlens.scheduling.jobs import FIRST_JOB_LANE, JOB_RECHECK_SECONDS, Job
from spanlens.scheduling.queue import Priority, WorkQueue
from spanlens.scheduling.store_worker import StoreWorker
from spanlens.states import Deferral, DeferralKind, Status, failed_for_good
from spanlens.store.db import SpanRow, Store
from spanlens.store.enrichments import pending_spans

log = logging.getLogger(__name__)

#: Spans fetched from the store per backlog page.
BACKLOG_PAGE = 64
#: Files asked about per store query while a backlog page is filled.
BACKLOG_FILES_PER_QUERY = 32
#: How long an empty backlog is trusted before the store is asked again (failed spans become
#: due again as their retry times pass).
BACKLOG_RECHECK_SECONDS = 30.0
#: Back-off after the engine defers work (GPU limits, open breakers): first and longest wait.
DEFER_FIRST_SECONDS = 1.0
DEFER_MAX_SECONDS = 30.0
#: How long shutdown lets calls in flight finish before cancelling them.
DRAIN_SECONDS = 5.0
#: How long a span another spanlens process is enriching is left to it before it is
#: offered again (its enrichment has usually landed by then).
ELSEWHERE_SECONDS = 30.0


class Outcome(Protocol):
    """What the engine reports per span (``spanlens.enrichment.engine.SpanOutcome``)."""

    span_id: int
    content_hash: str
    status: Status
    error: str | None
    #: Set for ``deferred`` outcomes.
    deferral: Deferral | None


class Enricher(Protocol):
    """The part of ``EnrichmentEngine`` the scheduler uses."""

    async def enrich(self, spans: list[SpanRow], *, tier: str | None = None) -> list[Any]:
        """Enrich ``spans``; never raises for model failures."""
        ...

    def capacity(self) -> int:
        """Useful number of concurrent :meth:`enrich` calls."""
        ...

    def health(self) -> dict[str, Any]:
        """Per-endpoint state."""
        ...

    async def aclose(self) -> None:
        """Close clients."""
        ...


ResultFn = Callable[[list[SpanRow], list[Any]], None]


class Scheduler:
    """Feeds pending spans to the engine by priority, within its capacity."""

    def __init__(
        self,
        store: Store,
        queries: StoreWorker,
        engine: Enricher | None,
        settings: Settings,
        *,
        on_result: ResultFn | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        #: The event loop's own read connection (span rows, enrichment and failure lookups).
        self.store = store
        #: A worker thread for queries too slow for the loop (backlog pages).
        self.queries = queries
        self.engine = engine
        self.settings = settings
        self.queue = WorkQueue()
        self.idle = IdleClock(settings.lsp.idle_seconds)
        self.on_result = on_result
        self.on_change = on_change
        self.paused: str | None = None  # None | "all" | "backlog"
        self.last_error: str | None = None
        self._explicit: set[int] = set()
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
        self._in_flight: dict[int, SpanRow] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._fetching = False
        self._backlog_empty_until = 0.0
        self._deferred_until = 0.0
        self._defer_seconds = DEFER_FIRST_SECONDS
        self._closing = False
        #: Engines replaced by a settings change whose close has not finished yet.
        self._retiring: set[Enricher] = set()
        #: Background jobs below the enrichment lanes (docgen), by lane.
        self._jobs: list[Job] = []
        self._job_task: asyncio.Task[None] | None = None
        #: No job unit before this (monotonic): one unit per idle period, rechecks.
        self._job_not_before = 0.0
        #: The job currently running a unit (for status).
        self.job_running: Job | None = None

    # ------------------------------------------------------------------ control

    def add_job(self, job: Job) -> None:
        """Run ``job`` on its lane when every enrichment lane is empty (see scheduling.jobs)."""
        if job.lane < FIRST_JOB_LANE:
            raise ValueError(f"job lane {job.lane} would run before enrichment lanes")
        self._jobs.append(job)
        self._jobs.sort(key=lambda j: j.lane)
        self._changed()

    def replace_job(self, old: Job, new: Job) -> None:
        """Use ``new`` instead of ``old``; the old one's unit in flight finishes."""
        self._jobs = sorted([j for j in self._jobs if j is not old] + [new], key=lambda j: j.lane)
        self._job_not_before = 0.0
        closer = getattr(old, "aclose", None)
        if closer is not None:
            self._track(self._close_job(old, closer))
        self._changed()

    async def _close_job(self, old: Job, closer: Any) -> None:
        while self.job_running is old and self._job_task is not None:
            await asyncio.wait({self._job_task})
        await closer()

    def start(self) -> None:
        """Start the dispatch loop (on the running event loop)."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    def push(
        self,
        span_ids: Iterable[int],
        priority: Priority,
        *,
        front: bool = False,
        explicit: bool = False,
    ) -> int:
        """Queue spans; ``explicit`` ones (asked for by a command) skip pause and back-off.

        Without an engine (no backend configured: facts only) nothing is queued.
        """
        if self.engine is None:
            return 0
        ids = list(span_ids)
        if explicit:
            self._explicit.update(ids)
        added = self.queue.push(ids, priority, front=front)
        if added or explicit:
            self._changed()
        return added

    def discard(self, span_ids: Iterable[int]) -> None:
        """Forget queued spans (deleted with their file)."""
        self.queue.discard(span_ids)
        self._changed()

    def note_edit(self) -> None:
        """An edit happened: open-document and backlog work waits for the next quiet period."""
        self.idle.touch()
        self._changed()

    def pause(self, scope: str = "all") -> None:
        """Pause everything (``all``) or only the idle backlog (``backlog``)."""
        if self.paused != "all":
            self.paused = scope
        self._changed()

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        self.paused = None
        self.invalidate_backlog()

    def invalidate_backlog(self) -> None:
        """The store changed (indexing, retries): ask it for backlog work again."""
        self._backlog_empty_until = 0.0
        self._discarded.clear()
        self._job_not_before = min(self._job_not_before, time.monotonic() + self.idle.quiet_seconds)
        self._changed()

    def update_settings(self, settings: Settings) -> None:
        """Apply new settings (idle period, batch size, failure limits)."""
        self.settings = settings
        self.idle.quiet_seconds = settings.lsp.idle_seconds
        self._undeliverable.clear()
        self.invalidate_backlog()

    def replace_engine(self, engine: Enricher | None) -> None:
        """Use ``engine`` for new calls; the old one closes once its calls have finished."""
        old, self.engine = self.engine, engine
        self._deferred_until = 0.0
        self._defer_seconds = DEFER_FIRST_SECONDS
        if old is not None and old is not engine:
            self._retiring.add(old)
            self._track(self._retire(old, set(self._calls)))
        if engine is None:  # facts only: nothing will ever drain the queue
            self.queue.discard([i for p in Priority for i in self.queue.lane(p)])
            self._explicit.clear()
        self._undeliverable.clear()
        self.invalidate_backlog()

    async def queue_pending_of(self, paths: list[str], priority: Priority) -> int:
        """Queue the pending spans of ``paths`` (open documents) in ``priority``."""
        if self.engine is None:
            return 0
        max_failures = self.settings.enrichment.max_failures
        spans = await self.queries.run(
            lambda st: pending_spans(st, ENRICHMENT_VERSION, max_failures, time.time(), paths=paths)
        )
        return self.push((s.id for s in spans if s.id not in self._in_flight), priority)

    def snapshot(self) -> dict[str, Any]:
        """Queue state for the ``spanlens/status`` notification."""
        deferred = max(0.0, self._deferred_until - time.monotonic())
        return {
            "queue": self.queue.depth(),
            "inFlight": len(self._in_flight),
            "calls": len(self._calls),
            "paused": self.paused,
            "idle": self.idle.is_idle(),
            "deferredSeconds": round(deferred, 1),
            "backlogEmpty": self._backlog_empty_until > time.monotonic(),
            "lastError": self.last_error,
        }

    def busy(self) -> bool:
        """True while spans are queued or in flight."""
        return bool(self._in_flight) or len(self.queue) > 0

    async def aclose(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Stop dispatching; let calls in flight finish (or cancel them after ``drain_seconds``).

        The engine writes a result in one transaction, and only for a span that still has the
        hash it was asked about, so a cancelled call leaves no half-written rows.
        """
        self._closing = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._calls:
            _, running = await asyncio.wait(set(self._calls), timeout=drain_seconds)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
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

    # ------------------------------------------------------------------ dispatch

    def _changed(self) -> None:
        self._wake.set()
        if self.on_change is not None:
            self.on_change()

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                self._dispatch()
            except Exception:  # one bad span must not stop the queue
                log.exception("scheduler: dispatch failed")
            delay = self._next_deadline()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    def _allowed(self, priority: Priority, span_id: int) -> bool:
        if span_id in self._explicit:
            return True
        if self.paused == "all" or time.monotonic() < self._deferred_until:
            return False
        if priority >= Priority.OPEN and not self.idle.is_idle():
            return False
        return not (priority == Priority.BACKLOG and self.paused == "backlog")

    def _dispatch(self) -> None:
        engine = self.engine
        if engine is None or self._closing or not self.settings.backends:
            return
        # One call per free slot, and a background call no bigger than one model request:
        # otherwise the engine holds the rest of it waiting on its endpoints, where an edit
        # cannot stop it and a save's spans queue behind it.
        while len(self._calls) < max(1, engine.capacity()):
            picked = self.queue.take(
                self._allowed, self._unit_limit, skip=self._in_flight, joins=self._joins
            )
            if picked is None:
                self._maybe_fetch_backlog()
                self._maybe_run_job()
                return
            priority, ids = picked
            spans = [s for s in (self._resolve(i) for i in ids) if s is not None]
            self._explicit.difference_update(ids)
            if spans:
                self._start_call(engine, priority, spans)

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
        """The span as it is now, if it still needs a model; None to drop it."""
        span = self.store.span_by_id(span_id)
        if span is None:
            return None
        if self.store.enrichment_for(span.content_hash, ENRICHMENT_VERSION) is not None:
            return None
        if span_id in self._explicit:
            return span
        if (span.id, span.content_hash) in self._undeliverable:
            return None
        if self._elsewhere.get((span.id, span.content_hash), 0.0) > time.monotonic():
            return None
        failure = self.store.failure_for(span.content_hash)
        if failure and (
            failed_for_good(failure["count"], self.settings.enrichment.max_failures)
            or failure["next_retry_at"] > time.time()
        ):
            return None
        return span

    def _start_call(self, engine: Enricher, priority: Priority, spans: list[SpanRow]) -> None:
        for span in spans:
            self._in_flight[span.id] = span
        task = asyncio.get_running_loop().create_task(self._call(engine, priority, spans))
        self._calls.add(task)
        task.add_done_callback(self._call_done)
        self._changed()

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self._wake.set()  # a slot is free

    async def _call(self, engine: Enricher, priority: Priority, spans: list[SpanRow]) -> None:
        try:
            try:
                outcomes = await engine.enrich(spans)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an engine bug: keep the queue alive, back off
                log.exception("enrichment engine failed on %d spans", len(spans))
                self.last_error = f"engine error: {type(exc).__name__}"
                self._defer()
                self.queue.push((s.id for s in spans), priority, front=True)
                return
            self._settle(priority, spans, outcomes)
        finally:
            for span in spans:
                self._in_flight.pop(span.id, None)
            self._changed()
        if self.on_result is not None:
            try:
                self.on_result(spans, outcomes)
            except Exception:
                log.exception("scheduler: result callback failed")

    def _settle(self, priority: Priority, spans: list[SpanRow], outcomes: list[Any]) -> None:
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
            self._defer_seconds = DEFER_FIRST_SECONDS
            self._deferred_until = 0.0
        if retry:
            self._defer()
            self.queue.push(retry, priority, front=True)

    def _defer(self) -> None:
        self._deferred_until = time.monotonic() + self._defer_seconds
        self._defer_seconds = min(DEFER_MAX_SECONDS, self._defer_seconds * 2)

    def _maybe_fetch_backlog(self) -> None:
        if (
            self._fetching
            or self.paused is not None
            or not self.idle.is_idle()
            or time.monotonic() < max(self._backlog_empty_until, self._deferred_until)
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
        busy = frozenset(self._in_flight) | frozenset(
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
            self._backlog_empty_until = time.monotonic() + BACKLOG_RECHECK_SECONDS
        else:
            self.queue.push((s.id for s in spans), Priority.BACKLOG)
        self._changed()

    def _next_deadline(self) -> float | None:
        now = time.monotonic()
        deadlines = []
        if self._deferred_until > now:
            deadlines.append(self._deferred_until - now)
        if not self.idle.is_idle():
            deadlines.append(self.idle.seconds_until_idle())
        if self._backlog_empty_until > now:
            deadlines.append(self._backlog_empty_until - now)
        if self._jobs and self._job_not_before > now:
            deadlines.append(self._job_not_before - now)
        return max(0.01, min(deadlines)) if deadlines else None

    # ------------------------------------------------------------------ jobs

    def _jobs_may_run(self) -> bool:
        now = time.monotonic()
        return (
            bool(self._jobs)
            and self._job_task is None
            and not self._closing
            and self.paused is None
            and self.idle.is_idle()
            and not self._calls
            and not self._in_flight
            and len(self.queue) == 0
            and not self._fetching
            and self._backlog_empty_until > now
            and now >= self._job_not_before
        )

    def _maybe_run_job(self) -> None:
        if self._jobs_may_run():
            self._job_task = self._track(self._run_job())

    async def _run_job(self) -> None:
        """The first job with a unit runs exactly one; then jobs wait for the next idle period
        (or, when none had work, for a recheck or an index change)."""
        ran = False
        try:
            for job in self._jobs:
                units = await job.next_units()
                if not units or not self._jobs_still_allowed():
                    continue
                self.job_running = job
                self._changed()
                try:
                    await job.run(units[0])
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("scheduler: job on lane %d failed", job.lane)
                ran = True
                break
        finally:
            self.job_running = None
            wait = self.idle.quiet_seconds if ran else JOB_RECHECK_SECONDS
            self._job_not_before = time.monotonic() + max(wait, 0.05)
            self._job_task = None
            self._changed()

    def _jobs_still_allowed(self) -> bool:
        """Between finding a unit and running it: nothing more urgent arrived."""
        return (
            not self._closing
            and self.paused is None
            and self.idle.is_idle()
            and not self._calls
            and len(self.queue) == 0
        )

    async def _retire(self, engine: Enricher, calls: set[asyncio.Task[None]]) -> None:
        if calls:
            await asyncio.wait(calls)
        self._retiring.discard(engine)
        await engine.aclose()

    def _track(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("scheduler task failed", exc_info=task.exception())


def backlog_page(
    store: Store,
    cursor: str,
    wanted: Callable[[SpanRow], bool],
    max_failures: int,
    now: float,
    size: int = BACKLOG_PAGE,
) -> tuple[list[SpanRow], str]:
    """About ``size`` pending spans that are ``wanted``, from the files after ``cursor`` (then
    from the start again), whole files at a time; and the cursor for the next page.

    An empty list means no file has a wanted pending span. Pages advance by file path, so
    spans that are pending but cannot be sent never bring the same page back.
    """
    paths = sorted(store.file_rows())
    ordered = [p for p in paths if p > cursor] + [p for p in paths if p <= cursor]
    found: list[SpanRow] = []
    last = cursor
    for start in range(0, len(ordered), BACKLOG_FILES_PER_QUERY):
        chunk = ordered[start : start + BACKLOG_FILES_PER_QUERY]
        spans = pending_spans(store, ENRICHMENT_VERSION, max_failures, now, paths=chunk)
        last = chunk[-1]
        found.extend(s for s in spans if wanted(s))
        if len(found) >= size:
            break
    return found, last
