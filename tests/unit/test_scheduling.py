"""The scheduler with a scripted engine: priorities, idle gating, pause, deferral, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.scheduling.queue import Priority, WorkQueue
from spanlens_lsp.scheduling.scheduler import Scheduler
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import Deferral, DeferralKind
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.worker import StoreWorker

SOURCE = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(6))


@dataclass
class Outcome:
    span_id: int
    content_hash: str
    status: str
    error: str | None = None
    deferral: Deferral | None = None


class ScriptedEngine:
    """Records calls; each call waits for ``release`` (if set) and answers ``status``."""

    def __init__(self, status: str = "failed", capacity: int = 1, error: str = "boom") -> None:
        self.calls: list[list[str]] = []
        self.status = status
        self.error = error
        self.release: asyncio.Event | None = None
        self._capacity = capacity
        self.closed = False

    async def enrich(self, spans: list[SpanRow], *, tier: str | None = None) -> list[Any]:
        self.calls.append([s.name for s in spans])
        if self.release is not None:
            await self.release.wait()
        return [self.outcome(s) for s in spans]

    def outcome(self, span: SpanRow) -> Outcome:
        deferral = None
        if self.status == "deferred":
            deferral = Deferral(DeferralKind.UNAVAILABLE, self.error)
        return Outcome(span.id, span.content_hash, self.status, self.error, deferral)

    def capacity(self) -> int:
        return self._capacity

    def health(self) -> dict[str, Any]:
        return {"endpoints": [], "unreachable": False}

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def store(tmp_path: Path) -> Store:
    (tmp_path / "m.py").write_text(SOURCE)
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    return store


@pytest_asyncio.fixture
async def make(tmp_path: Path, store: Store) -> AsyncIterator[Any]:
    made: list[tuple[Scheduler, StoreWorker]] = []

    def build(engine: ScriptedEngine, idle: float = 0.0, batch: int = 8) -> Scheduler:
        settings = Settings()
        settings.lsp.idle_seconds = idle
        settings.enrichment.batch_max_spans = batch
        worker = StoreWorker(tmp_path, "test")
        scheduler = Scheduler(store, worker, engine, settings)
        scheduler.paused = "backlog"  # tests push explicitly unless they resume
        made.append((scheduler, worker))
        scheduler.start()
        return scheduler

    yield build
    for scheduler, worker in made:
        await scheduler.aclose(drain_seconds=0.5)
        await worker.aclose()
    store.close()


def ids(store: Store) -> dict[str, int]:
    return {s.name: s.id for s in store.spans_in_file("m.py")}


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_queue_keeps_each_span_in_its_best_lane() -> None:
    queue = WorkQueue()
    queue.push([1, 2, 3], Priority.BACKLOG)
    queue.push([2], Priority.SAVED)
    queue.push([2], Priority.OPEN)  # a worse lane does not demote it
    queue.push([4, 3], Priority.SAVED, front=True)
    assert queue.depth() == {"saved": 3, "requested": 0, "open": 0, "backlog": 1}
    assert queue.lane(Priority.SAVED) == [4, 3, 2]
    taken = queue.take(lambda p, i: True, limit=2, skip={4})
    assert taken == (Priority.SAVED, [3, 2])


async def test_priorities_run_saved_before_requested_before_open(make: Any, store: Store) -> None:
    engine = ScriptedEngine(status="enriched")
    engine.release = asyncio.Event()
    scheduler = make(engine, batch=1)
    span = ids(store)
    scheduler.push([span["f0"]], Priority.OPEN)
    await until(lambda: len(engine.calls) == 1)  # f0 runs; the rest queue behind it
    scheduler.push([span["f1"]], Priority.OPEN)
    scheduler.push([span["f2"]], Priority.REQUESTED)
    scheduler.push([span["f3"]], Priority.SAVED)
    engine.release.set()
    await until(lambda: len(engine.calls) == 4)
    assert engine.calls == [["f0"], ["f3"], ["f2"], ["f1"]]


async def test_edits_hold_open_documents_until_idle_but_not_saves(make: Any, store: Store) -> None:
    engine = ScriptedEngine()
    scheduler = make(engine, idle=0.3)
    span = ids(store)
    scheduler.note_edit()
    scheduler.push([span["f1"]], Priority.OPEN)
    scheduler.push([span["f2"]], Priority.SAVED)
    await until(lambda: len(engine.calls) == 1)
    assert engine.calls == [["f2"]]
    assert scheduler.snapshot()["queue"]["open"] == 1
    await until(lambda: len(engine.calls) == 2)  # once the quiet period is over
    assert engine.calls[1] == ["f1"]


async def test_pause_lets_only_explicit_requests_through(make: Any, store: Store) -> None:
    engine = ScriptedEngine()
    scheduler = make(engine)
    scheduler.pause("all")
    span = ids(store)
    scheduler.push([span["f1"]], Priority.SAVED)
    scheduler.push([span["f2"]], Priority.REQUESTED, explicit=True)
    await until(lambda: len(engine.calls) == 1)
    assert engine.calls == [["f2"]]
    scheduler.resume()
    await until(lambda: ["f1"] in engine.calls)


async def test_deferred_spans_are_requeued_with_backoff(make: Any, store: Store) -> None:
    engine = ScriptedEngine(status="deferred", error="GPU busy: 90 C")
    scheduler = make(engine)
    scheduler.push([ids(store)["f1"]], Priority.SAVED)
    await until(lambda: len(engine.calls) == 1)
    await asyncio.sleep(0.2)
    assert len(engine.calls) == 1  # backing off, not spinning
    assert scheduler.snapshot()["queue"]["saved"] == 1
    assert scheduler.snapshot()["deferredSeconds"] > 0


async def test_backlog_comes_from_the_store_when_idle(make: Any, store: Store) -> None:
    engine = ScriptedEngine(status="discarded")
    scheduler = make(engine)
    scheduler.resume()
    await until(lambda: sum(len(c) for c in engine.calls) >= 6)
    await until(lambda: scheduler.snapshot()["backlogEmpty"])
    # Discarded spans (the index is behind the file) are not fetched again and again.
    assert sorted(n for c in engine.calls for n in c) == [f"f{i}" for i in range(6)]


async def test_shutdown_cancels_a_call_that_does_not_finish(make: Any, store: Store) -> None:
    engine = ScriptedEngine()
    engine.release = asyncio.Event()  # never set: the call hangs
    scheduler = make(engine)
    scheduler.push([ids(store)["f1"]], Priority.SAVED)
    await until(lambda: len(engine.calls) == 1)
    await asyncio.wait_for(scheduler.aclose(drain_seconds=0.2), 2)
    assert scheduler.snapshot()["inFlight"] == 0
    assert not [t for t in asyncio.all_tasks() if "Scheduler" in repr(t.get_coro())]


class LocalOnlyEngine(ScriptedEngine):
    """Only remote backends: spans of ``a_secret.py`` can never be sent; others are discarded."""

    def __init__(self) -> None:
        super().__init__(status="discarded")
        self.sent: list[int] = []

    def outcome(self, span: SpanRow) -> Outcome:
        self.sent.append(span.id)
        if span.path == "a_secret.py":
            reason = "file must not leave this machine and no local backend is configured"
            deferral = Deferral(DeferralKind.NO_ROUTE, reason, lasting=True)
            return Outcome(span.id, span.content_hash, "deferred", reason, deferral)
        return Outcome(span.id, span.content_hash, "discarded", "file is gone")


async def test_spans_that_cannot_be_sent_do_not_starve_other_files(
    tmp_path: Path, make: Any, store: Store
) -> None:
    # More undeliverable spans than one backlog page, in a file that sorts first.
    (tmp_path / "a_secret.py").write_text(SOURCE * 12)
    index_files(tmp_path, store, workers=1)
    engine = LocalOnlyEngine()
    scheduler = make(engine)
    scheduler.resume()
    other = {s.id for s in store.spans_in_file("m.py")}
    await until(lambda: other <= set(engine.sent), 10)
    await until(lambda: scheduler.snapshot()["backlogEmpty"], 10)
    secret = {s.id for s in store.spans_in_file("a_secret.py")}
    # Each undeliverable span was offered once, and no global back-off followed.
    assert sorted(engine.sent) == sorted(secret | other)
    assert scheduler.snapshot()["deferredSeconds"] == 0


async def test_background_calls_are_one_model_request_each(make: Any, store: Store) -> None:
    engine = ScriptedEngine(status="discarded")
    engine.release = asyncio.Event()
    scheduler = make(engine, batch=4)
    scheduler.resume()
    await until(lambda: len(engine.calls) == 1)
    scheduler.note_edit()
    scheduler.idle.quiet_seconds = 60
    scheduler.push([ids(store)["f5"]], Priority.SAVED)
    assert len(engine.calls[0]) <= 4
    engine.release.set()
    await until(lambda: len(engine.calls) == 2)
    assert engine.calls[1] == ["f5"]  # the save overtakes the queued backlog


async def test_a_failed_span_waits_for_its_retry_time(make: Any, store: Store) -> None:
    engine = ScriptedEngine(status="enriched")
    scheduler = make(engine)
    span = {s.name: s for s in store.spans_in_file("m.py")}
    now = time.time()
    # f1 failed a minute ago and may retry now; f2 failed and waits another hour.
    queries.record_failure(store, span["f1"].content_hash, "model timeout", now - 7200, 60, 60)
    queries.record_failure(store, span["f2"].content_hash, "model timeout", now, 3600, 3600)
    scheduler.push([span["f2"].id, span["f1"].id, span["f3"].id], Priority.SAVED)
    await until(lambda: sum(len(c) for c in engine.calls) >= 2)
    await asyncio.sleep(0)  # let the dispatch loop settle what it took
    sent = sorted(n for call in engine.calls for n in call)
    assert sent == ["f1", "f3"]
    # Asked for explicitly (a command), it goes at once.
    scheduler.push([span["f2"].id], Priority.REQUESTED, explicit=True)
    await until(lambda: ["f2"] in engine.calls)
    assert ids(store)["f2"] == span["f2"].id


async def test_run_first_runs_inside_a_long_job_at_its_yield_points(tmp_path: Path) -> None:
    """An opened buffer's index (run_first) does not wait for the workspace walk to end."""
    import threading

    worker = StoreWorker(tmp_path, "test")
    release = threading.Event()
    order: list[str] = []

    def long_job(store: Store) -> None:
        order.append("walk started")
        while not release.wait(0.01):
            worker.run_urgent()  # between the walk's transactions
        order.append("walk ended")

    def queued_job(store: Store) -> None:
        order.append("queued job")

    try:
        walk = asyncio.ensure_future(worker.run(long_job))
        queued = asyncio.ensure_future(worker.run(queued_job))
        while not order:
            await asyncio.sleep(0.01)
        result = await asyncio.wait_for(worker.run_first(lambda store: store.span_count()), 10)
        assert result == 0
        assert order == ["walk started"]  # answered while the walk still runs
        release.set()
        await asyncio.wait_for(asyncio.gather(walk, queued), 10)
        assert order == ["walk started", "walk ended", "queued job"]
    finally:
        release.set()
        await worker.aclose()


async def test_run_first_jumps_ahead_of_queued_work(tmp_path: Path) -> None:
    import threading

    worker = StoreWorker(tmp_path, "test")
    gate = threading.Event()
    order: list[str] = []
    try:
        blocker = asyncio.ensure_future(worker.run(lambda store: gate.wait(10)))
        queued = asyncio.ensure_future(worker.run(lambda store: order.append("queued")))
        urgent = asyncio.ensure_future(worker.run_first(lambda store: order.append("urgent")))
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.wait_for(asyncio.gather(blocker, queued, urgent), 10)
        assert order == ["urgent", "queued"]
    finally:
        gate.set()
        await worker.aclose()


class CountingJob:
    """A job on the docgen lane with ``units`` units; records what ran and what the
    scheduler had queued or in flight at that moment."""

    lane = 4

    def __init__(self, scheduler: Scheduler, units: int) -> None:
        self.scheduler = scheduler
        self.left = units
        self.ran: list[tuple[int, int]] = []

    async def next_units(self) -> list[int]:
        return [self.left] if self.left else []

    async def run(self, unit: int) -> None:
        snapshot = self.scheduler.snapshot()
        self.ran.append((snapshot["queue"]["saved"], snapshot["inFlight"]))
        self.left -= 1


async def test_a_job_runs_only_once_every_span_is_done_and_yields_after_each_unit(
    make: Any, store: Store
) -> None:
    engine = ScriptedEngine(status="enriched", capacity=2)  # a free slot while one call runs
    engine.release = asyncio.Event()
    scheduler = make(engine, idle=0.2)
    job = CountingJob(scheduler, units=3)
    scheduler.add_job(job)
    scheduler.resume()  # the backlog (six pending spans) comes first
    await until(lambda: len(engine.calls) >= 1)
    await asyncio.sleep(0.5)  # several idle periods with the call held
    assert job.ran == []  # spans in flight: the job waits
    # Enrichment results are never stored by the scripted engine, so the backlog would
    # refill forever: swap in an engine that has nothing left to do.
    scheduler.replace_engine(ScriptedEngine(status="discarded"))
    engine.release.set()
    await until(lambda: len(job.ran) == 1, 10)
    # One unit, then the job yields: an edit now holds the next unit for a quiet period.
    scheduler.note_edit()
    assert scheduler.snapshot()["idle"] is False and len(job.ran) == 1
    await until(lambda: len(job.ran) == 3, 10)
    assert all(ran == (0, 0) for ran in job.ran)  # never beside queued or running spans


async def test_pause_holds_jobs_back(make: Any, store: Store) -> None:
    scheduler = make(ScriptedEngine(status="discarded"), idle=0.0)
    scheduler.resume()
    await until(lambda: scheduler.snapshot()["backlogEmpty"])
    scheduler.pause("all")
    job = CountingJob(scheduler, units=1)
    scheduler.add_job(job)
    await asyncio.sleep(0.3)
    assert job.ran == []
    scheduler.resume()
    await until(lambda: job.ran, 10)


class ListLane:
    """A lane job of its own (not spans) on an enrichment lane: the runner's gates apply to
    it as to the span lanes; ``urgent`` units pass pause and idle."""

    def __init__(self, lane: int) -> None:
        self.lane = lane
        self.units: list[str] = []
        self.urgent: list[str] = []
        self.ran: list[str] = []

    async def next_units(self) -> list[str]:
        return [self.units.pop(0)] if self.units else []

    def urgent_units(self) -> list[str]:
        return [self.urgent.pop(0)] if self.urgent else []

    async def run(self, unit: str) -> None:
        self.ran.append(unit)

    def pending(self) -> bool:
        return bool(self.units or self.urgent)

    def wake_in(self) -> float | None:
        return None


async def test_a_lower_lane_job_never_runs_while_a_higher_lane_job_has_units(
    make: Any, store: Store
) -> None:
    scheduler = make(ScriptedEngine(status="discarded"), idle=0.0)
    order: list[str] = []

    class Recording(CountingJob):
        def __init__(self, name: str, lane: int, units: int) -> None:
            super().__init__(scheduler, units)
            self.name, self.lane = name, lane

        async def run(self, unit: int) -> None:
            order.append(self.name)
            await super().run(unit)

    scheduler.add_job(Recording("low", 6, 2))
    scheduler.add_job(Recording("high", 5, 3))
    scheduler.resume()
    await until(lambda: len(order) == 5, 10)
    assert order == ["high", "high", "high", "low", "low"]


async def test_a_lane_job_is_gated_like_the_span_lanes(make: Any, store: Store) -> None:
    """The runner, not the job, decides: an idle-gated lane waits for quiet, a pause holds it
    but not its urgent units, and background jobs wait while it has work."""
    scheduler = make(ScriptedEngine(status="discarded"), idle=0.3)
    lane = ListLane(int(Priority.OPEN))
    scheduler.add_job(lane)
    job = CountingJob(scheduler, units=1)
    scheduler.add_job(job)
    scheduler.pause("all")
    lane.units.append("ordinary")
    lane.urgent.append("asked")
    await until(lambda: lane.ran == ["asked"])
    await asyncio.sleep(0.2)
    assert lane.ran == ["asked"] and job.ran == []  # paused: only the urgent unit ran
    scheduler.note_edit()
    scheduler.resume()
    await asyncio.sleep(0.1)
    assert lane.ran == ["asked"]  # an open-document lane waits for the quiet period
    await until(lambda: lane.ran == ["asked", "ordinary"])
    await until(lambda: job.ran, 10)  # the job only once the lane is empty


async def test_scheduling_follows_the_typed_deferral_not_its_wording(
    make: Any, store: Store
) -> None:
    """A lasting deferral whose text reads like a passing GPU limit is not retried; a passing
    one whose text names a missing local backend is (with back-off)."""

    class Worded(ScriptedEngine):
        def outcome(self, span: SpanRow) -> Outcome:
            if span.name == "f1":
                deferral = Deferral(DeferralKind.NO_ROUTE, "GPU busy: 90 C", lasting=True)
            else:
                text = "file must not leave this machine and no local backend is configured"
                deferral = Deferral(DeferralKind.UNAVAILABLE, text)
            return Outcome(span.id, span.content_hash, "deferred", deferral.detail, deferral)

    engine = Worded()
    scheduler = make(engine, batch=1)
    span = ids(store)
    scheduler.push([span["f1"]], Priority.SAVED)
    await until(lambda: len(engine.calls) == 1)
    await until(lambda: scheduler.snapshot()["inFlight"] == 0)
    assert scheduler.snapshot()["queue"]["saved"] == 0  # lasting: not queued again
    assert scheduler.snapshot()["deferredSeconds"] == 0
    scheduler.push([span["f2"]], Priority.SAVED)
    await until(lambda: len(engine.calls) == 2)
    await until(lambda: scheduler.snapshot()["queue"]["saved"] == 1)  # passing: retried
    assert scheduler.snapshot()["deferredSeconds"] > 0
