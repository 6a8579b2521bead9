"""`spanlens enrich` rides out a faulty endpoint: it waits, retries, and ends when every span is
enriched or failed for real; claims keep two runs from doing the same work twice.

Every scenario runs the real runner and engine against the stand-in model server on
127.0.0.1. Backoff, Retry-After and breaker times are small so the file stays quick; no
assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.support.faults import FaultyResponder
from tests.support.replies import request_span_ids, valid_reply, valid_responder
from tests.support.standin import RecordedRequest, Reply, StandinModelServer
from tests.unit.test_enrichment_engine import assert_every_row_valid, workspace

from spanlens_lsp.app import enrich_workspace, open_engine
from spanlens_lsp.config import load_settings, settings_from_dict
from spanlens_lsp.enrichment.engine import EnrichmentEngine
from spanlens_lsp.enrichment.runner import run_enrich, summary_lines
from spanlens_lsp.settings import ConfigError, Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments
from spanlens_lsp.store.db import db_path_for, open_store
from spanlens_lsp.store.enrichments import StoreWriteFailed
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.worker import StoreWorker

T = TypeVar("T")


def functions_workspace(root: Path, files: int, per_file: int) -> int:
    """``files`` modules of ``per_file`` small functions, indexed; returns the span count."""
    sources = {}
    for f in range(files):
        sources[f"module_{f}.py"] = "\n\n".join(
            f"def f{f}_{i}(x, y={i}):\n    if x > y:\n        return x - y\n    return x + y\n"
            for i in range(per_file)
        )
    workspace(root, sources)
    return files * per_file


def settings_for(url: str, **enrichment: Any) -> Settings:
    raw = {
        "enrichment": {
            "backoff_base": 0.01,
            "backoff_max": 2.0,
            "breaker_reset": 0.3,
            **enrichment,
        },
        "gpu": {"enabled": False},
        "backends": [{"name": "local", "url": url, "timeout": 5, "max_parallel": 4}],
    }
    return settings_from_dict(raw)


def failure_rows(root: Path) -> list[tuple[str, int, str]]:
    store = open_store(root)
    try:
        return store.conn.execute("SELECT content_hash, count, last_error FROM failures").fetchall()
    finally:
        store.close()


def state_counts(root: Path, max_failures: int) -> dict[str, int]:
    store = open_store(root)
    try:
        return enrichments.state_counts(store, ENRICHMENT_VERSION, max_failures)
    finally:
        store.close()


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer() as standin:
        yield standin


async def test_one_run_rides_out_thirty_percent_mixed_faults(
    tmp_path: Path, server: StandinModelServer
) -> None:
    spans = functions_workspace(tmp_path, 5, 40)
    faults = FaultyResponder(0.3, retry_after=0.2)
    server.responder = faults
    run = await enrich_workspace(tmp_path, settings_for(server.url))
    counts = state_counts(tmp_path, 3)
    assert faults.counts["rate_limited"] > 0 and faults.counts["valid"] > 0
    assert run.deferred == 0 and run.stopped is None
    assert run.pending == 0 and counts["pending"] == 0
    assert run.succeeded + run.failed == spans
    assert counts["fresh"] == run.succeeded and counts["failed"] == run.failed
    assert run.succeeded >= spans * 0.9
    assert_every_row_valid(tmp_path)
    # A 429 is the endpoint's state, never a failure counted against a span.
    assert all(error != "rate limited" for _, _, error in failure_rows(tmp_path))


async def test_a_rate_limit_makes_the_run_wait_and_shows_it(
    tmp_path: Path, server: StandinModelServer
) -> None:
    spans = functions_workspace(tmp_path, 2, 30)
    server.script(Reply.rate_limited(3))
    server.responder = valid_responder
    shown: list[str] = []
    run = await enrich_workspace(
        tmp_path,
        settings_for(server.url, batch=False),
        progress=lambda done, total, extra="": shown.append(extra),
    )
    assert run.succeeded == spans and run.deferred == 0 and run.failed == 0
    assert any(text.startswith("waiting ") and "local rate limited" in text for text in shown)
    assert failure_rows(tmp_path) == []


async def test_a_run_gives_up_after_give_up_after_without_progress_and_says_why(
    tmp_path: Path, server: StandinModelServer
) -> None:
    spans = functions_workspace(tmp_path, 1, 6)
    server.responder = lambda request: Reply.rate_limited(0.2)
    run = await enrich_workspace(tmp_path, settings_for(server.url, give_up_after=1))
    assert run.stopped == "no progress for 1 s: local rate limited"
    assert run.succeeded == run.failed == run.deferred == 0 and run.pending == spans
    assert failure_rows(tmp_path) == []
    assert summary_lines(run)[-1] == (
        "stopped early: no progress for 1 s: local rate limited; the rest stays pending"
    )


async def test_a_run_stops_at_once_when_every_backend_is_misconfigured(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 6)
    server.models = ("other:1b",)  # the model went away after the pre-flight
    run = await enrich_workspace(tmp_path, settings_for(server.url, give_up_after=600))
    assert run.stopped is not None and "does not serve model qwen2.5-coder:7b" in run.stopped
    assert len(server.chat_requests) <= 4  # one per worker, not one per retry
    assert failure_rows(tmp_path) == []


async def test_malformed_or_invalid_output_never_opens_the_breaker(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 3)
    # A complete 200 whose body is not JSON, and one whose JSON is not an object.
    replies = iter([Reply.malformed(), Reply.error(200, [1, 2])] * 20)
    server.responder = lambda request: next(replies)
    settings = settings_for(
        server.url,
        batch=False,
        breaker_threshold=2,
        retries=2,
        max_invalid_per_tier=3,
        max_failures=1,
    )
    engine = open_engine(tmp_path, settings)
    try:
        outcomes = await engine.enrich(engine.pending())
        health = engine.health()["endpoints"][0]
    finally:
        await engine.aclose()
    # The endpoint answered every call: the replies are the spans' problem, not its health.
    assert [(o.status, o.error) for o in outcomes] == [("failed", "invalid output")] * 3
    assert health["breaker"] == "closed"
    assert len(server.chat_requests) == 9  # three tries per span, none refused by a breaker


async def test_a_server_that_drips_a_byte_at_a_time_times_out_at_the_backend_timeout(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 1)
    server.script(Reply.drip(0.1))  # every read is quick; the whole reply takes ~40 s
    server.responder = valid_responder
    raw = {
        "enrichment": {"backoff_base": 0.01, "backoff_max": 0.05},
        "gpu": {"enabled": False},
        "backends": [{"name": "local", "url": server.url, "timeout": 1}],
    }
    engine = open_engine(tmp_path, settings_from_dict(raw))
    try:
        [outcome] = await asyncio.wait_for(engine.enrich(engine.pending()), 15)
    finally:
        await engine.aclose()
    assert outcome.status == "enriched"  # the retry got a whole reply
    first = attempts_of(tmp_path)[0]
    assert first["failure_type"] == "model timeout"
    assert 1000 <= first["duration_ms"] < 5000


async def pragma(engine: EnrichmentEngine, setting: str) -> None:
    """Set a PRAGMA on the connection the engine writes through (its writer thread's)."""
    await engine.writer.run_first(lambda store: store.conn.execute(f"PRAGMA {setting}"))


def attempts_of(root: Path) -> list[dict[str, Any]]:
    store = open_store(root)
    try:
        cursor = store.conn.execute("SELECT * FROM attempts ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        store.close()


def test_give_up_after_is_a_typed_setting_with_a_default_of_300_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("SPANLENS_")]:
        monkeypatch.delenv(name)
    assert load_settings(tmp_path).enrichment.give_up_after == 300
    monkeypatch.setenv("SPANLENS_ENRICHMENT_GIVE_UP_AFTER", "45")
    assert load_settings(tmp_path).enrichment.give_up_after == 45
    for bad in ("0", "-5", "soon"):
        monkeypatch.setenv("SPANLENS_ENRICHMENT_GIVE_UP_AFTER", bad)
        with pytest.raises(ConfigError, match=r"enrichment\.give_up_after"):
            load_settings(tmp_path)


async def test_a_failing_store_write_stops_the_run_at_once(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 5, 40)
    server.responder = valid_responder
    engine = open_engine(tmp_path, settings_for(server.url, batch=False))
    # SQLite refuses every write on the engine's writer connection, as on a read-only database.
    await pragma(engine, "query_only = 1")
    try:
        with pytest.raises(StoreWriteFailed) as raised:
            await run_enrich(engine)
    finally:
        await engine.aclose()
    message = str(raised.value)
    assert "\n" not in message and "cannot write the index" in message
    assert "the index is read-only" in message
    # The first write is the claim, made before any call: no model was called at all.
    assert server.chat_requests == []
    assert state_counts(tmp_path, 3)["pending"] == 200  # nothing lost, nothing half-written


async def test_a_lock_held_too_long_fails_one_enrich_but_a_read_only_store_stops_the_engine(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 3)
    holder: list[sqlite3.Connection] = []

    def lock_then_answer(request: RecordedRequest) -> Reply:
        if not holder:  # another process takes the write lock while the call runs
            conn = sqlite3.connect(db_path_for(tmp_path), check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")
            holder.append(conn)
        return valid_reply(request)

    server.responder = lock_then_answer
    engine = open_engine(tmp_path, settings_for(server.url, batch=False))
    await pragma(engine, "busy_timeout = 100")
    try:
        first, second, third = engine.pending()
        with pytest.raises(StoreWriteFailed, match="locked"):
            await engine.enrich([first])
        holder[0].close()  # the other process is done: the server's engine goes on
        assert [o.status for o in await engine.enrich([second])] == ["enriched"]
        await pragma(engine, "query_only = 1")
        with pytest.raises(StoreWriteFailed, match="the index is read-only"):
            await engine.enrich([third])
        await pragma(engine, "query_only = 0")
        calls = len(server.chat_requests)
        with pytest.raises(StoreWriteFailed, match="the index is read-only"):
            await engine.enrich([third])  # a lasting failure: no model is called again
        assert len(server.chat_requests) == calls
    finally:
        await engine.aclose()


class WatchedWriter(StoreWorker):
    """The engine's writer thread, noting when a write is handed to it while a lock is held."""

    def __init__(self, root: Path, holder: list[sqlite3.Connection]) -> None:
        super().__init__(root, "watched-writer")
        self.holder = holder
        self.write_under_lock = asyncio.Event()

    async def run_first(self, fn: Callable[[Store], T]) -> T:
        if self.holder:
            self.write_under_lock.set()
        return await super().run_first(fn)


async def test_a_write_lock_held_by_another_process_never_stalls_the_event_loop(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 1)
    holder: list[sqlite3.Connection] = []

    def lock_then_answer(request: RecordedRequest) -> Reply:
        if not holder:  # the CLI takes the write lock while the model answers
            conn = sqlite3.connect(db_path_for(tmp_path), check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")
            holder.append(conn)
        return valid_reply(request)

    server.responder = lock_then_answer
    writer = WatchedWriter(tmp_path, holder)
    engine = open_engine(tmp_path, settings_for(server.url, batch=False), writer=writer)
    # The writer waits for the lock as long as this test may take: it must not give up here.
    await writer.run_first(lambda store: store.conn.execute("PRAGMA busy_timeout = 600000"))
    try:
        [span] = engine.pending()
        enriching = asyncio.ensure_future(engine.enrich([span]))
        waiting = asyncio.ensure_future(writer.write_under_lock.wait())
        await asyncio.wait({enriching, waiting}, return_when=asyncio.FIRST_COMPLETED)
        # The engine's write waits in the writer thread, not on the loop: the loop runs this
        # test, and reads (what a hover or the status does) answer while the lock is held.
        assert not enriching.done()
        assert [s.id for s in engine.pending()] == [span.id]
        assert enrichments.enrichment_for(engine.store, span.content_hash, engine.version) is None
        holder[0].rollback()  # the other process is done
        [outcome] = await enriching
        assert outcome.status == "enriched"
        assert (
            enrichments.enrichment_for(engine.store, span.content_hash, engine.version) is not None
        )
        assert len(server.chat_requests) == 1  # the reply waited for the lock, was not lost
    finally:
        for conn in holder:
            conn.close()
        await engine.aclose()
        await writer.aclose()


async def test_a_garbled_batch_reply_is_asked_again_before_the_batch_is_split(
    tmp_path: Path, server: StandinModelServer
) -> None:
    spans = functions_workspace(tmp_path, 1, 6)
    server.script(Reply.content("Sure! These functions add and subtract numbers."))
    server.responder = valid_responder
    run = await enrich_workspace(tmp_path, settings_for(server.url))
    assert run.succeeded == spans
    # The batch again, not one call per span.
    assert [len(request_span_ids(r)) for r in server.chat_requests] == [spans, spans]
