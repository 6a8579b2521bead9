"""The embedding run over a real index and a stand-in endpoint on 127.0.0.1: every span gets a
vector of its current text, only once; a new summary re-embeds only its span; a remote
endpoint never sees a private file's span; an invalid reply stores nothing."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.support.standin import (
    LLAMA_CPP_TOO_LARGE,
    LLAMA_CPP_TOO_LONG,
    Reply,
    StandinModelServer,
)

from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.embedding.endpoints import close_embedders, embedders_from_settings
from spanlens_lsp.embedding.job import EmbeddingJob
from spanlens_lsp.embedding.run import EmbedPlan, EmbedRun, embed_pending, plan_embeddings
from spanlens_lsp.settings import IndexSettings, Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.embeddings import embedded_text_hashes, model_vectors, unpack_vector
from spanlens_lsp.store.enrichments import Attempt, attempt_totals, put_enrichment, record_attempt
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.worker import StoreWorker
from spanlens_lsp.workspace.index import index_workspace

MODEL = "nomic-embed-text"
T = TypeVar("T")

SOURCE = '''def load_config(path):
    """Read the TOML settings file."""
    return open(path).read()


def add(a, b):
    return a + b
'''


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer(models=(MODEL,)) as standin:
        yield standin


def _settings(url: str, **extra: Any) -> Settings:
    entry = {"name": "vec", "url": url, "model": MODEL, **extra}
    enrichment = {"backoff_base": 0.001, "backoff_max": 0.01}
    return settings_from_dict({"embeddings": [entry], "enrichment": enrichment})


def _index(root: Path) -> None:
    store = open_store(root)
    try:
        index_workspace(store, root, IndexSettings())
    finally:
        store.close()


def _run(root: Path, settings: Settings, paths: list[str] | None = None) -> EmbedRun:
    async def go() -> EmbedRun:
        worker = StoreWorker(root, "embed")

        async def record(attempt: Attempt) -> None:
            await worker.run_first(lambda store: record_attempt(store, attempt))

        embedders = embedders_from_settings(settings, record)
        try:
            return await embed_pending(root, embedders[0], worker, worker, paths=paths)
        finally:
            await close_embedders(embedders)
            await worker.aclose()

    return asyncio.run(go())


def _stored(root: Path) -> dict[str, str]:
    store = open_store(root)
    try:
        return embedded_text_hashes(store, MODEL)
    finally:
        store.close()


def _summarise(root: Path, name: str, summary: str, version: str = ENRICHMENT_VERSION) -> None:
    store = open_store(root)
    try:
        span = next(s for s in store.spans_in_file("a.py") if s.name == name)
        data = {"summary": summary}
        put_enrichment(
            store, span.content_hash, version, data, model="m", tier="t", backend="b", host="h"
        )
    finally:
        store.close()


def test_every_span_is_embedded_once_and_a_second_run_sends_nothing(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    write("a.py", SOURCE)
    _index(tmp_path)
    first = _run(tmp_path, _settings(server.url))
    assert (first.spans, first.embedded, first.failed, first.calls) == (2, 2, 0, 1)
    assert len(server.embedded_texts) == 2
    assert any("Read the TOML settings file." in t for t in server.embedded_texts)
    assert not any("return" in t for t in server.embedded_texts)  # never the code
    store = open_store(tmp_path)
    try:
        vectors = [unpack_vector(blob) for _, _, blob in model_vectors(store, MODEL)]
        assert len(vectors) == 2
        assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vectors)
        assert attempt_totals(store)["calls"] == 1  # recorded like every model call
    finally:
        store.close()

    second = _run(tmp_path, _settings(server.url))
    assert (second.up_to_date, second.embedded, second.reused) == (2, 0, 0)
    assert len(server.embed_requests) == 1


def test_a_new_summary_re_embeds_only_its_span_and_a_stale_one_is_never_used(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    write("a.py", SOURCE)
    _index(tmp_path)
    _summarise(tmp_path, "add", "Old summary from another schema.", version="s0.p0")
    _run(tmp_path, _settings(server.url))
    assert not any("Old summary" in t for t in server.embedded_texts)
    server.reset()

    _summarise(tmp_path, "add", "Adds two numbers.")
    run = _run(tmp_path, _settings(server.url))
    assert len(server.embedded_texts) == 1
    assert server.embedded_texts[0].startswith("function add\nAdds two numbers.")
    assert (run.embedded, run.up_to_date) == (1, 1)


def test_a_span_with_the_text_of_a_stored_vector_reuses_it_without_a_call(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    # Same name and signature, different bodies: different span hashes, one embedded text.
    write("a.py", "def add(a, b):\n    return a + b\n")
    write("b.py", "def add(a, b):\n    return b + a\n")
    _index(tmp_path)
    _run(tmp_path, _settings(server.url), paths=["a.py"])
    run = _run(tmp_path, _settings(server.url), paths=["b.py"])
    assert (run.reused, run.embedded) == (1, 0)
    assert len(server.embed_requests) == 1
    assert len(_stored(tmp_path)) == 2


def test_a_remote_endpoint_never_receives_a_private_files_span(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    write("a.py", SOURCE)
    write("deploy_secrets.py", "def token():\n    return 1\n")
    write("b.py", 'def connect():\n    """Uses AKIAIOSFODNN7EXAMPLE to log in."""\n')
    _index(tmp_path)
    run = _run(tmp_path, _settings(server.url, remote=True))
    assert run.private_skipped == 2
    assert run.embedded == 2
    texts = "\n".join(server.embedded_texts)
    assert "token" not in texts and "AKIA" not in texts and "connect" not in texts
    # A local endpoint embeds them: nothing leaves the machine.
    local = _run(tmp_path, _settings(server.url))
    assert (local.private_skipped, local.embedded) == (0, 2)


def test_an_invalid_reply_stores_nothing_and_a_failure_is_counted(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    write("a.py", SOURCE)
    _index(tmp_path)
    server.script_embeddings(*[Reply.vectors_of([[1.0, 0.0]])] * 5)  # one vector for two texts
    run = _run(tmp_path, _settings(server.url))
    assert (run.embedded, run.failed) == (0, 2)
    assert run.error is not None and "1 vectors for 2 texts" in run.error
    assert _stored(tmp_path) == {}
    store = open_store(tmp_path)
    try:
        assert attempt_totals(store)["calls"] == 2  # asked again once, both recorded
    finally:
        store.close()
    # The endpoint mends: the next run embeds what is missing.
    server.reset()
    assert _run(tmp_path, _settings(server.url)).embedded == 2


def test_batches_follow_batch_size(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    write("a.py", "".join(f"def f{i}(x):\n    return {i}\n\n" for i in range(7)))
    _index(tmp_path)
    run = _run(tmp_path, _settings(server.url, batch_size=3))
    assert [len(r.json["input"]) for r in server.embed_requests] == [3, 3, 1]
    assert (run.embedded, run.calls) == (7, 3)


def _plan(root: Path, settings: Settings) -> EmbedPlan:
    async def go() -> EmbedPlan:
        worker = StoreWorker(root, "plan")
        embedders = embedders_from_settings(settings)
        try:
            return await plan_embeddings(root, embedders[0], worker)
        finally:
            await close_embedders(embedders)
            await worker.aclose()

    return asyncio.run(go())


def test_a_method_moved_to_a_renamed_class_re_embeds_under_its_new_name(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    # The method's code is unchanged, so is its hash; its name (A.size -> Box.size) is not.
    body = "    def size(self):\n        return 1\n"
    write("a.py", f"class A:\n{body}")
    _index(tmp_path)
    _run(tmp_path, _settings(server.url))
    server.reset()
    write("a.py", f"class Box:\n{body}")
    _index(tmp_path)
    run = _run(tmp_path, _settings(server.url))
    assert run.embedded == 2  # the class and its method
    assert any(t.startswith("method Box.size") for t in server.embedded_texts)


def test_spans_sharing_a_hash_under_two_names_leave_nothing_pending(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    # One hash, two texts (A.size, B.size): the vector is of one of them, and the hash is done.
    body = "    def size(self):\n        return 1\n"
    write("a.py", f"class A:\n{body}\n\nclass B:\n{body}")
    _index(tmp_path)
    _run(tmp_path, _settings(server.url))
    plan = _plan(tmp_path, _settings(server.url))
    assert (plan.texts, plan.confirmed) == ({}, [])
    assert _run(tmp_path, _settings(server.url)).changed == 0
    assert len(server.embed_requests) == 1


def test_vectors_stored_without_their_inputs_are_confirmed_once_without_a_call(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    write("a.py", SOURCE)
    _index(tmp_path)
    _run(tmp_path, _settings(server.url))
    store = open_store(tmp_path)
    try:  # rows as a spanlens before migration 8 wrote them
        store.conn.execute("UPDATE embeddings SET source = NULL")
    finally:
        store.close()
    stored = _stored(tmp_path)
    plan = _plan(tmp_path, _settings(server.url))
    assert (plan.texts, len(plan.confirmed)) == ({}, 2)
    run = _run(tmp_path, _settings(server.url))
    assert (run.up_to_date, run.changed) == (2, 0)
    assert len(server.embed_requests) == 1 and _stored(tmp_path) == stored
    assert _plan(tmp_path, _settings(server.url)).confirmed == []


# --------------------------------------------------------------- long texts


LONG_DOC = "Explains at length. " * 20  # 400 characters of docstring


def _spans_with_one_long(count: int = 7, long_at: int = 3) -> str:
    return "".join(
        f'def f{i}(x):\n    """{LONG_DOC if i == long_at else "Short."}"""\n    return {i}\n\n'
        for i in range(count)
    )


def test_texts_are_cut_at_the_endpoints_max_chars(
    tmp_path: Path, write: Callable, server: StandinModelServer
) -> None:
    write("a.py", _spans_with_one_long())
    _index(tmp_path)
    run = _run(tmp_path, _settings(server.url, max_chars=60))
    assert run.embedded == 7
    assert max(len(t) for t in server.embedded_texts) == 60
    assert all(t.startswith("function f") for t in server.embedded_texts)  # the head is kept


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, LLAMA_CPP_TOO_LONG), (500, LLAMA_CPP_TOO_LARGE)],
    ids=["context-400", "batch-500"],
)
def test_a_text_the_endpoint_refuses_as_too_long_fails_alone(
    tmp_path: Path, write: Callable, status: int, message: str
) -> None:
    write("a.py", _spans_with_one_long())
    _index(tmp_path)
    with StandinModelServer(
        models=(MODEL,), embedding_max_chars=200, embedding_refusal=(status, message)
    ) as server:
        run = _run(tmp_path, _settings(server.url))
        assert (run.embedded, run.failed) == (6, 1)
        assert run.error is not None and run.error.startswith("function f3: ")
        assert message in run.error  # the endpoint's own words
        # Halved until the long text was alone: 7 -> 3 + 4 (with f3) -> 2 (f3, f4) + 2 -> 1 + 1.
        sizes = [len(r.json["input"]) for r in server.embed_requests]
        assert sizes == [7, 3, 4, 2, 1, 1, 2]
        long_hash = next(h for h, t in _texts_by_hash(tmp_path).items() if t == "f3")
        assert long_hash not in _stored(tmp_path) and len(_stored(tmp_path)) == 6
        store = open_store(tmp_path)
        try:  # the span's own failed call, with its reason, like any model call
            rows = store.conn.execute(
                "SELECT span_hashes, outcome, detail FROM attempts WHERE outcome = 'failed'"
            ).fetchall()
        finally:
            store.close()
        assert [long_hash] in [json.loads(r[0]) for r in rows]
        assert all(message in r[2] for r in rows)
        # The others are done: the next run sends the long text alone, and only it.
        server.reset()
        again = _run(tmp_path, _settings(server.url))
        assert (again.up_to_date, again.failed) == (6, 1)
        assert [len(r.json["input"]) for r in server.embed_requests] == [1]


def test_an_endpoint_refusing_every_request_is_not_asked_text_by_text(
    tmp_path: Path, write: Callable
) -> None:
    write("a.py", "".join(f"def f{i}(x):\n    return {i}\n\n" for i in range(8)))
    _index(tmp_path)
    refusal = (400, "unknown field 'encoding_format'")
    with StandinModelServer(
        models=(MODEL,), embedding_max_chars=0, embedding_refusal=refusal
    ) as server:
        run = _run(tmp_path, _settings(server.url))
        assert (run.embedded, run.failed) == (0, 8)
        assert "unknown field" in (run.error or "")
        # 8, then the first half of each half: no text got past, so the request is at fault.
        assert [len(r.json["input"]) for r in server.embed_requests] == [8, 4, 2, 1]


def _texts_by_hash(root: Path) -> dict[str, str]:
    store = open_store(root)
    try:
        return {s.content_hash: s.name for s in store.spans_in_file("a.py")}
    finally:
        store.close()


# --------------------------------------------------------------- the server's job


class CountingThread:
    """A store thread that names each store function it runs."""

    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker
        self.ran: list[str] = []

    def _name(self, fn: Any) -> str:
        return str(getattr(getattr(fn, "func", fn), "__name__", fn))

    async def run(self, fn: Callable[[Store], T]) -> T:
        self.ran.append(self._name(fn))
        return await self.worker.run(fn)

    async def run_first(self, fn: Callable[[Store], T]) -> T:
        self.ran.append(self._name(fn))
        return await self.worker.run_first(fn)


def test_an_idle_check_plans_again_only_after_the_index_changed(
    tmp_path: Path, write: Callable
) -> None:
    write("a.py", SOURCE)
    _index(tmp_path)

    async def go(server: StandinModelServer) -> None:
        worker = StoreWorker(tmp_path, "job")
        queries = CountingThread(worker)
        job = EmbeddingJob(tmp_path, _settings(server.url), queries, worker)
        try:
            (unit,) = await job.next_units()
            await job.run(unit)
            assert await job.next_units() == []
            planned = queries.ran.count("pending_spans")
            assert await job.next_units() == []
            assert queries.ran.count("pending_spans") == planned  # nothing changed
            _summarise(tmp_path, "add", "Adds two numbers.")  # another process writes
            (unit,) = await job.next_units()
            assert [text.splitlines()[1] for text, _ in unit[1].texts.values()] == [
                "Adds two numbers."
            ]
        finally:
            await job.aclose()
            await worker.aclose()

    with StandinModelServer(models=(MODEL,)) as server:
        asyncio.run(go(server))
