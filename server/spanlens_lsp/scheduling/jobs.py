"""Pluggable jobs: what the scheduler's runner runs, lane by lane.

Every kind of work is a :class:`Job` on a lane; the runner (``scheduling.scheduler``) asks the
lanes in order and runs their units. Lanes below :data:`FIRST_JOB_LANE` are the enrichment
lanes (saved, requested, open, backlog: ``scheduling.enrich_jobs``); they share the engine's
capacity and implement :class:`Lane`. Lanes from :data:`FIRST_JOB_LANE` on are background jobs
(docgen is one): the runner runs their units only when no lower lane has work queued or in
flight, the editor is idle and nothing is paused; then exactly one unit per idle period, after
which the job yields: an edit or any enrichment work goes first (the unit in flight finishes).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, Protocol, runtime_checkable

#: The first lane a background job may use: every enrichment lane (``Priority.BACKLOG`` is 3)
#: comes first.
FIRST_JOB_LANE = 4
#: How long a job that had nothing to do is left alone before it is asked again (unless the
#: index changes first).
JOB_RECHECK_SECONDS = 30.0
#: Back-off after work was deferred (GPU limits, open breakers): first and longest wait.
DEFER_FIRST_SECONDS = 1.0
DEFER_MAX_SECONDS = 30.0


class Job(Protocol):
    """A job of the scheduler."""

    #: Its lane; lanes run in order, lower first.
    lane: int

    async def next_units(self) -> list[Any]:
        """Units ready to run now, best first (empty: nothing to do until the index changes).

        The runner asks only when it can run a unit, and runs the first one at once: a job
        that hands a unit out (takes it off its queue) never loses it. A background job's unit
        may be dropped when something more urgent arrived while it was being found; it must be
        found again next time.
        """
        ...

    async def run(self, unit: Any) -> None:
        """Run one unit; never raises for expected failures (it records them itself)."""
        ...


@runtime_checkable
class Lane(Job, Protocol):
    """A job on an enrichment lane: units queue, some are urgent, all share the capacity."""

    def pending(self) -> bool:
        """Whether work waits or may still be found (queued, being fetched, not known empty);
        background jobs wait while any lane is pending."""
        ...

    def urgent_units(self) -> list[Any]:
        """Units asked for by a command: they run even while the lane is paused, waiting for
        idle or backing off (taken off the queue like :meth:`Job.next_units`)."""
        ...

    def wake_in(self) -> float | None:
        """Seconds until the lane wants to be asked again on its own (a recheck), or None."""
        ...


class Backoff:
    """The runner's global back-off: deferred work waits, doubling up to a limit.

    When deferred spans are tried again, not how a call is retried: that is the retry policy
    (:mod:`spanlens_lsp.enrichment.call.retry`), whose docstring says why the two differ."""

    def __init__(self) -> None:
        self.until = 0.0
        self.seconds = DEFER_FIRST_SECONDS

    def defer(self) -> None:
        """Deferred again: wait, and wait longer next time."""
        self.until = time.monotonic() + self.seconds
        self.seconds = min(DEFER_MAX_SECONDS, self.seconds * 2)

    def reset(self) -> None:
        """Work went through (or the engine changed): no wait."""
        self.until = 0.0
        self.seconds = DEFER_FIRST_SECONDS

    def active(self) -> bool:
        """Whether deferred work still waits."""
        return time.monotonic() < self.until

    def remaining(self) -> float:
        """Seconds left to wait (0 when none)."""
        return max(0.0, self.until - time.monotonic())


def track(tasks: set[asyncio.Task[Any]], coro: Any) -> asyncio.Task[Any]:
    """Run ``coro`` as a task held in ``tasks`` until it ends; a failure is logged, not lost."""
    task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(functools.partial(_task_done, tasks))
    return task


def _task_done(tasks: set[asyncio.Task[Any]], task: asyncio.Task[Any]) -> None:
    tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("spanlens_lsp.scheduling").error(
            "scheduler task failed", exc_info=task.exception()
        )
