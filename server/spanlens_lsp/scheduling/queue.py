"""The work queue: span ids in four priority lanes, each span in at most one (its best)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from enum import IntEnum
from functools import partial


class Priority(IntEnum):
    """Lanes, most urgent first. Lower numbers are dispatched first."""

    SAVED = 0
    REQUESTED = 1
    OPEN = 2
    BACKLOG = 3


#: Names of the lanes in status payloads (protocol.md: ``queue``).
LANE_NAMES = {
    Priority.SAVED: "saved",
    Priority.REQUESTED: "requested",
    Priority.OPEN: "open",
    Priority.BACKLOG: "backlog",
}


class WorkQueue:
    """FIFO lanes of span ids. Pushing a queued span into a better lane moves it there."""

    def __init__(self) -> None:
        self._lane_of: dict[int, Priority] = {}
        # dicts keep insertion order: a FIFO set per lane.
        self._lanes: dict[Priority, dict[int, None]] = {p: {} for p in Priority}

    def __len__(self) -> int:
        return len(self._lane_of)

    def __contains__(self, span_id: object) -> bool:
        return span_id in self._lane_of

    def push(self, span_ids: Iterable[int], priority: Priority, *, front: bool = False) -> int:
        """Queue spans in ``priority`` (or keep them where they are if already better).

        ``front`` puts them ahead of what the lane already holds (a save's spans go before an
        older save's). Returns how many spans were added or moved up.
        """
        moved: list[int] = []
        for span_id in span_ids:
            current = self._lane_of.get(span_id)
            if current is not None and current <= priority:
                if front and current == priority:
                    moved.append(span_id)
                continue
            if current is not None:
                del self._lanes[current][span_id]
            self._lane_of[span_id] = priority
            moved.append(span_id)
        lane = self._lanes[priority]
        if front and moved:
            rest = {k: None for k in lane if k not in set(moved)}
            lane.clear()
            lane.update(dict.fromkeys(moved))
            lane.update(rest)
        else:
            for span_id in moved:
                lane[span_id] = None
        return len(moved)

    def discard(self, span_ids: Iterable[int]) -> None:
        """Forget spans wherever they are queued."""
        for span_id in span_ids:
            lane = self._lane_of.pop(span_id, None)
            if lane is not None:
                del self._lanes[lane][span_id]

    def take(
        self,
        allowed: Callable[[Priority, int], bool],
        limit: int | Callable[[Priority], int],
        skip: Collection[int] = (),
        joins: Callable[[Priority, int, int], bool] | None = None,
    ) -> tuple[Priority, list[int]] | None:
        """Remove up to ``limit`` span ids from the best lane that has any ``allowed`` one
        (see :meth:`take_from`); ``allowed`` and ``limit`` also get the lane."""
        for priority in Priority:
            most = limit(priority) if callable(limit) else limit
            picked = self.take_from(priority, partial(allowed, priority), most, skip, joins)
            if picked:
                return priority, picked
        return None

    def take_from(
        self,
        priority: Priority,
        allowed: Callable[[int], bool],
        limit: int,
        skip: Collection[int] = (),
        joins: Callable[[Priority, int, int], bool] | None = None,
    ) -> list[int]:
        """Remove up to ``limit`` ``allowed`` span ids from one lane, in order.

        ``skip`` ids stay queued (spans in flight: their newer version waits for the running
        call to finish). ``joins(priority, first, span_id)`` says whether a span may share a
        call with the first one picked; the pick ends at the first that may not.
        """
        picked: list[int] = []
        for span_id in self._lanes[priority]:
            if span_id in skip or not allowed(span_id):
                continue
            if picked and joins is not None and not joins(priority, picked[0], span_id):
                break
            picked.append(span_id)
            if len(picked) >= limit:
                break
        self.discard(picked)
        return picked

    def depth(self) -> dict[str, int]:
        """Queued spans per lane, by lane name."""
        return {LANE_NAMES[p]: len(self._lanes[p]) for p in Priority}

    def lane(self, priority: Priority) -> list[int]:
        """The span ids of one lane, in order (for tests and status reports)."""
        return list(self._lanes[priority])
