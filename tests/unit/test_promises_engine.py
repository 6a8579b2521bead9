"""Promises of the enrichment engine and the scheduler that users rely on without seeing them.

Each test fails when the behaviour it names breaks (issue 7, section 5): exact parameter
names, spans changed on disk since indexing, credentials batched with clean code, calls that
never mix files, and a cancelled call that leaves its span pending after a restart.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import parse_request, request_span_ids, valid_responder
from tests.support.standin import StandinModelServer
from tests.unit.test_enrichment_engine import (
    attempts,
    backend,
    make_settings,
    spans_named,
    stored,
    workspace,
)

from spanlens_lsp.app import open_engine
from spanlens_lsp.enrichment.prompt.source import SpanContext
from spanlens_lsp.enrichment.reply.validate import validate_enrichment
from spanlens_lsp.scheduling.queue import Priority
from spanlens_lsp.scheduling.scheduler import Scheduler
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.worker import StoreWorker

#: An AWS access key id (the credential check's oldest rule); split so no scanner flags this file.
AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"

NEIGHBOURS = f'''
def first(a):
    return a + 1


def leaky():
    return connect("{AWS_KEY}")


def third(b):
    return b * 2
'''

SMALL = """
def one(x):
    return x + 1


def two(y):
    return y + 2


def three(z):
    return z + 3
"""


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer(responder=valid_responder) as standin:
        yield standin


# ------------------------------------------------------------------ validation


GOOD = {
    "summary": "Reads a file and returns its text.",
    "outputs": ["the text"],
    "side_effects": ["reads the file system"],
    "pitfalls": [],
    "tags": ["io"],
    "usage_snippet": "load('a.txt')",
    "evidence": [{"field": "summary", "lines": [1, 2]}],
}
CODE = "def load(path):\n    return open(path).read()"


@pytest.mark.parametrize(
    "item",
    [
        "pathname: the file to read",  # the parameter's name is a prefix of it
        "pat: the file to read",  # it is a prefix of the parameter's name
        "Path: the file to read",  # names are case-sensitive
        "paths: the file to read",
    ],
)
def test_an_input_must_name_a_parameter_exactly(item: str) -> None:
    ctx = SpanContext(1, 1, 2, ("path",), CODE)
    result = validate_enrichment({**GOOD, "inputs": [item]}, ctx)
    assert not result.ok and result.data is None
    assert any("names no parameter" in e for e in result.errors), result.errors


@pytest.mark.parametrize("item", ["path: the file to read", "`path`: the file"])
def test_an_input_naming_the_parameter_is_valid(item: str) -> None:
    ctx = SpanContext(1, 1, 2, ("path",), CODE)
    assert validate_enrichment({**GOOD, "inputs": [item]}, ctx).ok


# ------------------------------------------------------------------ the text the model sees


async def test_a_span_changed_on_disk_since_indexing_is_neither_sent_nor_stored(
    tmp_path: Path, server: StandinModelServer
) -> None:
    workspace(tmp_path, {"calc.py": SMALL})
    path = tmp_path / "calc.py"
    # The file changes after indexing and nobody re-indexes it: the index still has the old
    # hash of `two`, whose text on disk is now different.
    path.write_text(path.read_text().replace("return y + 2", "return y - 2"))
    engine = open_engine(tmp_path, make_settings(backend(server.url)))
    try:
        old_two, unchanged = spans_named(engine.store, "two", "three")
        outcomes = await engine.enrich([old_two, unchanged])
    finally:
        await engine.aclose()
    assert [o.status for o in outcomes] == ["discarded", "enriched"]
    sent = [name for r in server.chat_requests for name in _names(r)]
    assert sent == ["three"], sent
    assert all("y - 2" not in json.dumps(r.json) for r in server.chat_requests)
    hashes = {h for h, _ in stored(tmp_path)}
    assert old_two.content_hash not in hashes
    assert hashes == {unchanged.content_hash}


# ------------------------------------------------------------------ privacy in batches


async def test_a_credential_batched_with_clean_neighbours_never_reaches_a_remote_tier(
    tmp_path: Path, server: StandinModelServer
) -> None:
    workspace(tmp_path, {"mixed.py": NEIGHBOURS})
    settings = make_settings(backend(server.url, "cloud", tier="remote", remote=True), batch=True)
    engine = open_engine(tmp_path, settings)
    try:
        spans = spans_named(engine.store, "first", "leaky", "third")
        outcomes = await engine.enrich(spans)
    finally:
        await engine.aclose()
    by_name = {s.name: o for s, o in zip(spans, outcomes, strict=True)}
    assert by_name["leaky"].status == "deferred"
    assert "must not leave this machine" in (by_name["leaky"].error or "")
    assert by_name["first"].status == by_name["third"].status == "enriched"
    bodies = [r.body.decode("utf-8", "replace") for r in server.chat_requests]
    assert bodies, "the clean neighbours went to the remote tier"
    assert all(AWS_KEY not in body for body in bodies)
    assert all("leaky" not in _names(r) for r in server.chat_requests)
    sent = sorted(name for r in server.chat_requests for name in _names(r))
    assert sent == ["first", "third"]


# ------------------------------------------------------------------ one file per call


async def test_a_model_request_never_mixes_files(
    tmp_path: Path, server: StandinModelServer
) -> None:
    workspace(tmp_path, {"a.py": SMALL, "b.py": SMALL.replace("x + 1", "x + 10")})
    settings = make_settings(backend(server.url, max_parallel=4), batch=True)
    store = open_store(tmp_path)
    worker = StoreWorker(tmp_path, "test")
    engine = open_engine(tmp_path, settings)
    scheduler = Scheduler(store, worker, engine, settings)
    done: list[int] = []
    scheduler.on_result = lambda spans, outcomes: done.extend(o.span_id for o in outcomes)
    scheduler.paused = "backlog"
    scheduler.start()
    try:
        ids = [s.id for p in ("a.py", "b.py") for s in store.spans_in_file(p)]
        # Interleaved files, all in the save lane, where one scheduler call may carry many.
        interleaved = [i for pair in zip(ids[:3], ids[3:], strict=True) for i in pair]
        scheduler.push(interleaved, Priority.SAVED)
        await _until(lambda: len(done) >= 6)
    finally:
        await scheduler.aclose(drain_seconds=1)
        await engine.aclose()
        await worker.aclose()
        store.close()
    paths = [
        {s["path"] for s in (parse_request(r) or {"spans": []})["spans"]}
        for r in server.chat_requests
    ]
    assert paths and all(len(p) == 1 for p in paths), paths
    assert any(len(request_span_ids(r)) > 1 for r in server.chat_requests), "batching ran"


async def test_background_calls_never_join_spans_of_different_files(tmp_path: Path) -> None:
    # Two files whose spans sit within one batch window of each other.
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text(SMALL.lstrip())
    store = open_store(tmp_path)
    from spanlens_lsp.indexing.indexer import index_files

    index_files(tmp_path, store, workers=1)
    engine = _RecordingEngine()
    settings = make_settings(backend("http://127.0.0.1:9"), batch=True)
    worker = StoreWorker(tmp_path, "test")
    scheduler = Scheduler(store, worker, engine, settings)
    scheduler.start()
    try:
        # Open-document lane, file after file: a call takes a file's spans and stops there.
        ids = [s.id for p in ("a.py", "b.py", "c.py") for s in store.spans_in_file(p)]
        scheduler.push(ids, Priority.OPEN)
        await _until(lambda: sum(len(c) for c in engine.calls) >= 9)
    finally:
        await scheduler.aclose(drain_seconds=1)
        await worker.aclose()
        store.close()
    assert all(len({path for path, _ in call}) == 1 for call in engine.calls), engine.calls
    assert any(len(call) > 1 for call in engine.calls), "spans of one file did share a call"


class _RecordingEngine:
    """Records the (path, name) of every span of every call and answers 'discarded'."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, str]]] = []

    async def enrich(self, spans: list[Any], *, tier: str | None = None) -> list[Any]:
        from spanlens_lsp.enrichment.outcomes import SpanOutcome

        self.calls.append([(s.path, s.name) for s in spans])
        return [SpanOutcome(s.id, s.content_hash, "discarded", "test") for s in spans]

    def capacity(self) -> int:
        return 1

    def health(self) -> dict[str, Any]:
        return {"endpoints": [], "unreachable": False}

    async def aclose(self) -> None:
        return None


# ------------------------------------------------------------------ cancel, then restart


async def test_a_cancelled_call_leaves_its_span_pending_after_a_restart(
    tmp_path: Path, server: StandinModelServer
) -> None:
    workspace(tmp_path, {"calc.py": SMALL})
    server.latency = 30  # the call never finishes before the shutdown budget runs out
    settings = make_settings(backend(server.url, timeout=60))
    store = open_store(tmp_path)
    worker = StoreWorker(tmp_path, "test")
    engine = open_engine(tmp_path, settings)
    scheduler = Scheduler(store, worker, engine, settings)
    scheduler.paused = "backlog"
    scheduler.start()
    [two] = spans_named(store, "two")
    try:
        scheduler.push([two.id], Priority.SAVED)
        await asyncio.to_thread(server.wait_for_requests, 1, timeout=10)
    finally:
        await scheduler.aclose(drain_seconds=0.2)  # shutdown: cancels the call in flight
        await engine.aclose()
        await worker.aclose()
        store.close()

    fresh = open_store(tmp_path)  # a restart: a new store, a new engine
    restarted = open_engine(tmp_path, settings)
    try:
        assert two.id in [s.id for s in restarted.pending()]
        assert queries.failure_for(fresh, two.content_hash) is None
        assert queries.enrichment_for(fresh, two.content_hash, ENRICHMENT_VERSION) is None
        assert queries.state_counts(fresh, ENRICHMENT_VERSION, 3)["failed"] == 0
        assert queries.pending_spans(fresh, ENRICHMENT_VERSION, 3, time.time() + 1e6)
    finally:
        await restarted.aclose()
        fresh.close()
    assert all(a["outcome"] != "ok" for a in attempts(tmp_path))


def _names(request: Any) -> list[str]:
    parsed = parse_request(request)
    return [str(s["name"]) for s in parsed["spans"]] if parsed else []


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
