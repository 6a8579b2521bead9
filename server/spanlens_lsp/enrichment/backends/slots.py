"""Slot affinity: one file's prompts go to one llama.cpp slot, whose cached prompt they reuse.

llama.cpp's server keeps the last prompt of each slot and reuses its longest common prefix
with the next request on that slot (``cache_prompt``). spanlens orders every prompt
stable-first (instructions, the file's context, then the span), so consecutive spans of one
file share most of their prompt, but only on the same slot: ``id_slot`` pins them there. A
file keeps its slot while it is used; a new file takes the slot least recently used, preferring
one no call is running on. A request for a busy slot waits in the server's queue.
"""

from __future__ import annotations

from collections import OrderedDict


class SlotAffinity:
    """Which slot each cache key (a file's path) is pinned to, for one endpoint."""

    def __init__(self) -> None:
        #: Cache key -> slot, least recently used first.
        self._slot_of: OrderedDict[str, int] = OrderedDict()
        #: Calls running per slot.
        self._busy: dict[int, int] = {}

    def acquire(self, key: str, slots: int) -> int:
        """The slot for ``key`` among ``slots`` (>= 1); counted busy until :meth:`release`."""
        slot = self._slot_of.get(key)
        if slot is None or slot >= slots:
            slot = self._choose(slots)
            for other in [k for k, s in self._slot_of.items() if s == slot]:
                del self._slot_of[other]  # its cached prompt is about to be replaced
        self._slot_of[key] = slot
        self._slot_of.move_to_end(key)
        self._busy[slot] = self._busy.get(slot, 0) + 1
        return slot

    def release(self, slot: int) -> None:
        """A call on ``slot`` ended."""
        left = self._busy.get(slot, 0) - 1
        if left > 0:
            self._busy[slot] = left
        else:
            self._busy.pop(slot, None)

    def _choose(self, slots: int) -> int:
        order = list(self._slot_of.values())

        def recency(slot: int) -> int:
            # Never used: -1 (best); else its position from least to most recently used.
            return max((i for i, s in enumerate(order) if s == slot), default=-1)

        return min(range(slots), key=lambda s: (self._busy.get(s, 0) > 0, recency(s), s))
