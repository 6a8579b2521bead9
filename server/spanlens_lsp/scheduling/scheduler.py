"""The scheduler: a runner of jobs by lane, within a capacity, when their lane is open.

Lanes, most urgent first: the enrichment lanes (saved 0, requested 1, open 2, backlog 3,
``scheduling.enrich_jobs``) share the engine's capacity; background jobs (docgen, lane 4) run
one unit per idle period once every enrichment lane is empty. The runner owns the gates:
lanes from ``open`` on wait for the editor to be idle (an edit holds them without touching the
unit in flight), ``pause("backlog")`` holds the backlog and the jobs, ``pause("all")`` holds
everything but urgent units (spans asked for by a command), and deferred work backs everything
off for a while. At shutdown it drains the units in flight, then cancels them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from spanlens_lsp.scheduling.enrich_jobs import SpanWork
from spanlens_lsp.scheduling.enricher import Enricher, ResultFn
from spanlens_lsp.scheduling.idle import IdleClock
from spanlens_lsp.scheduling.jobs import (
    FIRST_JOB_LANE,
    JOB_RECHECK_SECONDS,
    Backoff,
    Job,
    Lane,
    track,
)
from spanlens_lsp.scheduling.queue import Priority, WorkQueue
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.worker import StoreWorker

__all__ = ["DRAIN_SECONDS", "Scheduler"]

log = logging.getLogger(__name__)

#: How long shutdown lets units in flight finish before cancelling them.
DRAIN_SECONDS = 5.0


class Scheduler:
    """Runs the enrichment lanes and the background jobs by priority, within capacity."""

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
        self.settings = settings
        self.idle = IdleClock(settings.lsp.idle_seconds)
        self.on_change = on_change
        self.paused: str | None = None  # None | "all" | "backlog"
        self.backoff = Backoff()
        #: The enrichment lanes' shared state (queue, engine, spans in flight).
        self.spans = SpanWork(store, queries, engine, settings, self.backoff, self._changed)
        self.spans.on_result = on_result
        #: How many lane units may run at once.
        self.capacity: Callable[[], int] = self.spans.capacity
        #: Enrichment lanes (below FIRST_JOB_LANE) and background jobs, by lane.
        self._lanes: list[Lane] = []
        self._jobs: list[Job] = []
        self._running: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._closing = False
        self._job_task: asyncio.Task[None] | None = None
        #: No job unit before this (monotonic): one unit per idle period, rechecks.
        self._job_not_before = 0.0
        #: The background job currently running a unit (for status).
        self.job_running: Job | None = None
        #: (idle, backed off) as last reported: both change by the clock alone.
        self._gates = (self.idle.is_idle(), self.backoff.active())
        for lane in self.spans.lanes():
            self.add_job(lane)

    # ------------------------------------------------------------------ the enrichment lanes

    @property
    def engine(self) -> Enricher | None:
        return self.spans.engine

    @property
    def queue(self) -> WorkQueue:
        return self.spans.queue

    @property
    def on_result(self) -> ResultFn | None:
        return self.spans.on_result

    @on_result.setter
    def on_result(self, callback: ResultFn | None) -> None:
        self.spans.on_result = callback

    @property
    def on_saved(self) -> ResultFn | None:
        """Told the saved lane's results (after ``on_result``): the file's embeddings."""
        return self.spans.on_saved

    @on_saved.setter
    def on_saved(self, callback: ResultFn | None) -> None:
        self.spans.on_saved = callback

    @property
    def last_error(self) -> str | None:
        return self.spans.last_error

    def push(
        self,
        span_ids: Iterable[int],
        priority: Priority,
        *,
        front: bool = False,
        explicit: bool = False,
    ) -> int:
        """Queue spans; ``explicit`` ones (asked for by a command) are urgent units: they skip
        pause and back-off. Without an engine (facts only) nothing is queued."""
        ids = list(span_ids)
        added = self.spans.push(ids, priority, front=front, explicit=explicit)
        if added or (explicit and self.engine is not None):
            self._changed()
        return added

    def discard(self, span_ids: Iterable[int]) -> None:
        """Forget queued spans (deleted with their file)."""
        self.queue.discard(span_ids)
        self._changed()

    async def queue_pending_of(self, paths: list[str], priority: Priority) -> int:
        """Queue the pending spans of ``paths`` (open documents) in ``priority``."""
        added = await self.spans.queue_pending_of(paths, priority)
        if added:
            self._changed()
        return added

    def replace_engine(self, engine: Enricher | None) -> None:
        """Use ``engine`` for new calls; the old one closes once its calls have finished."""
        self.backoff.reset()
        self.spans.replace_engine(engine)
        self.invalidate_backlog()

    def busy(self) -> bool:
        """True while spans are queued or in flight."""
        return bool(self.spans.in_flight) or len(self.queue) > 0

    # ------------------------------------------------------------------ control

    def add_job(self, job: Job) -> None:
        """Run ``job`` on its lane: enrichment lanes are :class:`Lane` s, the rest background
        jobs (see scheduling.jobs)."""
        if job.lane < FIRST_JOB_LANE:
            if not isinstance(job, Lane):
                raise ValueError(f"job lane {job.lane} would run before enrichment lanes")
            self._lanes = sorted([*self._lanes, job], key=lambda j: j.lane)
        else:
            self._jobs = sorted([*self._jobs, job], key=lambda j: j.lane)
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

    def note_edit(self) -> None:
        """An edit happened: idle-gated lanes wait for the next quiet period."""
        self.idle.touch()
        self._changed()

    def pause(self, scope: str = "all") -> None:
        """Pause everything (``all``) or only the idle backlog and the jobs (``backlog``)."""
        if self.paused != "all":
            self.paused = scope
        self._changed()

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        self.paused = None
        self.invalidate_backlog()

    def invalidate_backlog(self) -> None:
        """The store changed (indexing, retries): ask it for backlog work again."""
        self.spans.invalidate()
        self._job_not_before = min(self._job_not_before, time.monotonic() + self.idle.quiet_seconds)
        self._changed()

    def update_settings(self, settings: Settings) -> None:
        """Apply new settings (idle period, batch size, failure limits)."""
        self.settings = settings
        self.idle.quiet_seconds = settings.lsp.idle_seconds
        self.spans.update_settings(settings)
        self.invalidate_backlog()

    def snapshot(self) -> dict[str, Any]:
        """Queue state for the ``spanlens/status`` notification."""
        return {
            "queue": self.queue.depth(),
            "inFlight": len(self.spans.in_flight),
            "calls": len(self._running),
            "paused": self.paused,
            "idle": self.idle.is_idle(),
            "deferredSeconds": round(self.backoff.remaining(), 1),
            "backlogEmpty": self.spans.backlog_empty_until > time.monotonic(),
            "lastError": self.last_error,
        }

    async def aclose(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Stop dispatching; let units in flight finish (or cancel them after ``drain_seconds``).

        The engine writes a result in one transaction, and only for a span that still has the
        hash it was asked about, so a cancelled call leaves no half-written rows.
        """
        self._closing = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._running:
            _, running = await asyncio.wait(set(self._running), timeout=drain_seconds)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.spans.aclose()

    # ------------------------------------------------------------------ dispatch

    def _changed(self) -> None:
        self._wake.set()
        if self.on_change is not None:
            self.on_change()

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                await self._dispatch()
            except Exception:  # one bad unit must not stop the runner
                log.exception("scheduler: dispatch failed")
            self._report_gates()
            delay = self._next_deadline()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    def _report_gates(self) -> None:
        """Tell the listener when the quiet period or a back-off ended by itself: the status
        (``idle``, ``deferredSeconds``) changes then with no event of its own to send it."""
        gates = (self.idle.is_idle(), self.backoff.active())
        if gates != self._gates:
            self._gates = gates
            if self.on_change is not None:
                self.on_change()

    def _lane_open(self, lane: int) -> bool:
        """Whether a lane's ordinary units may run now (urgent ones always may)."""
        if self.paused == "all" or self.backoff.active():
            return False
        if lane >= Priority.OPEN and not self.idle.is_idle():
            return False
        return not (lane >= Priority.BACKLOG and self.paused == "backlog")

    async def _dispatch(self) -> None:
        """One unit per free slot from the best lane that has one, then maybe a job's."""
        while not self._closing and len(self._running) < self.capacity():
            picked = await self._next_lane_unit()
            if picked is None:
                break
            self._start(*picked)
        self._maybe_run_job()

    async def _next_lane_unit(self) -> tuple[Lane, Any] | None:
        for lane in self._lanes:
            if self._lane_open(lane.lane):
                units = await lane.next_units()
            else:
                units = lane.urgent_units()
            if units:
                return lane, units[0]
        return None

    def _start(self, lane: Lane, unit: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._run_unit(lane, unit))
        self._running.add(task)
        task.add_done_callback(self._unit_done)
        self._changed()

    async def _run_unit(self, job: Job, unit: Any) -> None:
        try:
            await job.run(unit)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler: a unit on lane %d failed", job.lane)
        finally:
            self._changed()

    def _unit_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free

    def _next_deadline(self) -> float | None:
        now = time.monotonic()
        deadlines = [w for w in (lane.wake_in() for lane in self._lanes) if w is not None]
        if self.backoff.active():
            deadlines.append(self.backoff.remaining())
        if not self.idle.is_idle():
            deadlines.append(self.idle.seconds_until_idle())
        if self._jobs and self._job_not_before > now:
            deadlines.append(self._job_not_before - now)
        return max(0.01, min(deadlines)) if deadlines else None

    # ------------------------------------------------------------------ background jobs

    def _lanes_quiet(self) -> bool:
        """No enrichment unit runs, waits or may still be found."""
        return not self._running and not any(lane.pending() for lane in self._lanes)

    def _jobs_may_run(self) -> bool:
        return (
            bool(self._jobs)
            and self._job_task is None
            and not self._closing
            and self.paused is None
            and self.idle.is_idle()
            and self._lanes_quiet()
            and time.monotonic() >= self._job_not_before
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
                await self._run_unit(job, units[0])
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
            and self._lanes_quiet()
        )

    def _track(self, coro: Any) -> asyncio.Task[Any]:
        return track(self._tasks, coro)
