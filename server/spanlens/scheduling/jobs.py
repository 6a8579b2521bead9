"""Pluggable background jobs: what the scheduler runs when the enrichment lanes are empty.

A :class:`Job` lives on a lane below the enrichment lanes (saved, requested, open, backlog,
which the scheduler feeds itself); docgen is one. The scheduler runs a job's units only when
no span is queued or in flight, the backlog is known to be empty, the editor is idle and
nothing is paused; then exactly one unit per idle period, after which the job yields: an edit
or any enrichment work goes first (the unit in flight finishes).
"""

from __future__ import annotations

from typing import Any, Protocol

#: The first lane a job may use: every enrichment lane (``Priority.BACKLOG`` is 3) comes first.
FIRST_JOB_LANE = 4
#: How long a job that had nothing to do is left alone before it is asked again (unless the
#: index changes first).
JOB_RECHECK_SECONDS = 30.0


class Job(Protocol):
    """A background job of the scheduler."""

    #: Its lane (:data:`FIRST_JOB_LANE` or more); lanes run in order, after every
    #: enrichment lane.
    lane: int

    async def next_units(self) -> list[Any]:
        """Units ready to run now (empty: nothing to do until the index changes)."""
        ...

    async def run(self, unit: Any) -> None:
        """Run one unit; never raises for expected failures (it records them itself)."""
        ...
