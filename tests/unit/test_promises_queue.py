"""The work queue's promises: FIFO per lane, a span in its best lane only, pushes that change
nothing report nothing (so they do not wake the scheduler)."""

from __future__ import annotations

from spanlens_lsp.scheduling.queue import Priority, WorkQueue


def test_pushing_a_queued_span_into_its_own_lane_keeps_its_place() -> None:
    queue = WorkQueue()
    assert queue.push([1, 2, 3], Priority.OPEN) == 3
    assert queue.push([1], Priority.OPEN) == 0
    assert queue.lane(Priority.OPEN) == [1, 2, 3]
    assert queue.push([3], Priority.BACKLOG) == 0  # a worse lane: it stays where it is
    assert queue.lane(Priority.OPEN) == [1, 2, 3] and queue.lane(Priority.BACKLOG) == []
    assert queue.push([2], Priority.REQUESTED) == 1  # a better lane: it moves up
    assert queue.lane(Priority.OPEN) == [1, 3] and queue.lane(Priority.REQUESTED) == [2]
    assert len(queue) == 3


def test_take_serves_the_best_lane_first_in_order() -> None:
    queue = WorkQueue()
    queue.push([10, 11], Priority.BACKLOG)
    queue.push([20, 21], Priority.OPEN)
    queue.push([30], Priority.REQUESTED)
    queue.push([40, 41], Priority.SAVED)
    order = []
    while (taken := queue.take(lambda p, i: True, limit=1)) is not None:
        order.append(taken)
    assert order == [
        (Priority.SAVED, [40]),
        (Priority.SAVED, [41]),
        (Priority.REQUESTED, [30]),
        (Priority.OPEN, [20]),
        (Priority.OPEN, [21]),
        (Priority.BACKLOG, [10]),
        (Priority.BACKLOG, [11]),
    ]


def test_take_skips_what_is_not_allowed_and_keeps_it_queued() -> None:
    queue = WorkQueue()
    queue.push([1, 2, 3], Priority.OPEN)
    queue.push([9], Priority.BACKLOG)
    taken = queue.take(lambda p, i: i != 1, limit=5, skip={3})
    assert taken == (Priority.OPEN, [2])
    assert queue.lane(Priority.OPEN) == [1, 3]
    assert queue.take(lambda p, i: p == Priority.BACKLOG, limit=5) == (Priority.BACKLOG, [9])
