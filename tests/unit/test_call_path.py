"""One call path for every model call (issue 17 §1): a file overview takes the same endpoint
slots, breaker and attempt record as a span call. Against the stand-in model server on
127.0.0.1; the services are built by the composition root as the server builds them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import parse_docgen_request, valid_reply
from tests.support.settings import one_backend_settings
from tests.support.standin import Reply, StandinModelServer

from spanlens_lsp.app import build_engine
from spanlens_lsp.cli import main
from spanlens_lsp.docgen.overview import OverviewSpan, OverviewWriter
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.worker import StoreWorker

SOURCE = "def add(a, b=1):\n    return a + b\n\n\ndef neg(x):\n    return -x\n"
SPANS = [
    OverviewSpan("add", "function", "def add(a, b=1)", "Adds two numbers."),
    OverviewSpan("neg", "function", "def neg(x)", "Negates a number."),
]


def _workspace(root: Path) -> list[SpanRow]:
    root.mkdir(exist_ok=True)
    (root / "m.py").write_text(SOURCE)
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        return queries.pending_spans(store, ENRICHMENT_VERSION, 99, 1e12)
    finally:
        store.close()


@contextlib.asynccontextmanager
async def _engine(root: Path, settings: Settings) -> AsyncIterator[Any]:
    worker = StoreWorker(root, "test")
    engine = build_engine(root, settings, worker, None)
    assert engine is not None
    try:
        yield engine
    finally:
        await engine.aclose()
        await worker.aclose()


def _overview_requests(server: StandinModelServer) -> int:
    return sum(1 for r in server.chat_requests if parse_docgen_request(r) is not None)


async def test_an_overview_on_a_one_slot_endpoint_waits_for_the_span_call_in_flight(
    tmp_path: Path,
) -> None:
    with StandinModelServer(responder=valid_reply, latency=0.3) as server:
        settings = one_backend_settings(server.url)
        spans = _workspace(tmp_path)
        async with _engine(tmp_path, settings) as engine:
            writer = OverviewWriter(settings, engine.calls)
            enrich = asyncio.create_task(engine.enrich(spans[:1]))
            deadline = time.monotonic() + 5
            while server.in_flight == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert server.in_flight == 1  # the span call holds the endpoint's one slot
            overview = await writer.write("m.py", "python", SPANS, local_only=False)
            [outcome] = await enrich
    assert overview.data is not None and outcome.status == "enriched"
    assert _overview_requests(server) == 1
    assert server.max_in_flight == 1  # max_parallel = 1 held across spans and overviews


def test_an_overview_call_is_an_attempt_and_counted_by_stats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with StandinModelServer(responder=valid_reply) as server:
        root = tmp_path / "ws"
        spans = _workspace(root)
        settings = one_backend_settings(server.url)
        (root / "spanlens.toml").write_text(
            "[docgen]\nenabled = true\n\n[enrichment]\nretries = 0\n\n[gpu]\nenabled = false\n\n"
            f'[[backends]]\nname = "local"\ntier = "small"\nurl = "{server.url}"\n'
            "max_parallel = 1\nprice_in = 1.0\nprice_out = 2.0\n"
        )

        async def enrich() -> None:
            async with _engine(root, settings) as engine:
                await engine.enrich(spans)

        asyncio.run(enrich())
        store = open_store(root)
        try:
            before = queries.attempt_totals(store)
        finally:
            store.close()
        assert main(["docgen", str(root), "--json"]) == 0
        docgen = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert docgen["written"] == 1 and docgen["modelCalls"] == 1
    assert _overview_requests(server) == 1
    store = open_store(root)
    try:
        rows = store.conn.execute(
            "SELECT span_hashes, batch_size, outcome, detail, tokens_in, tokens_out, "
            "duration_ms, cost, enriched FROM attempts ORDER BY id"
        ).fetchall()
    finally:
        store.close()
    hashes, size, outcome, detail, t_in, t_out, ms, cost, enriched = rows[-1]
    assert json.loads(hashes) == [] and size == 0 and enriched == 0
    assert outcome == "ok" and detail == "overview of m.py"
    assert t_in == 100 and t_out == 50 and ms > 0
    assert cost == pytest.approx((100 * 1.0 + 50 * 2.0) / 1_000_000)
    assert main(["stats", str(root), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["calls"] == before["calls"] + 1
    assert stats["tokens_in"] == before["tokens_in"] + 100
    assert stats["tokens_out"] == before["tokens_out"] + 50
    assert stats["cost"] == pytest.approx(
        (before["tokens_in"] + 100) * 1e-6 + (before["tokens_out"] + 50) * 2e-6
    )
    [row] = stats["backends"]
    assert row["calls"] == before["calls"] + 1 and row["latency_p95_ms"] > 0


def _down(request: Any) -> Reply:
    return Reply.error(500, {"error": "down"})


async def test_span_failures_open_the_breaker_that_overviews_respect(tmp_path: Path) -> None:
    with StandinModelServer(responder=_down) as server:
        settings = one_backend_settings(server.url, breaker_threshold=2, breaker_reset=60.0)
        spans = _workspace(tmp_path)
        async with _engine(tmp_path, settings) as engine:
            outcomes = await engine.enrich(spans)  # two span calls, two server errors
            assert len(server.chat_requests) == 2
            assert engine.health()["endpoints"][0]["breaker"] == "open"
            writer = OverviewWriter(settings, engine.calls)
            overview = await writer.write("m.py", "python", SPANS, local_only=False)
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert overview.data is None and overview.calls == 0
    assert "circuit open" in (overview.error or "")
    assert len(server.chat_requests) == 2  # the overview never reached the endpoint


async def test_overview_failures_open_the_breaker_that_spans_respect(tmp_path: Path) -> None:
    with StandinModelServer(responder=_down) as server:
        settings = one_backend_settings(server.url, breaker_threshold=2, breaker_reset=60.0)
        spans = _workspace(tmp_path)
        async with _engine(tmp_path, settings) as engine:
            writer = OverviewWriter(settings, engine.calls)
            for _ in range(2):
                overview = await writer.write("m.py", "python", SPANS, local_only=False)
                assert overview.data is None and overview.error == "server error"
            assert _overview_requests(server) == len(server.chat_requests) == 2
            [outcome] = await engine.enrich(spans[:1])
    assert outcome.status == "deferred" and "circuit open" in (outcome.error or "")
    assert len(server.chat_requests) == 2  # the span call never reached the endpoint


async def test_an_overview_after_a_failed_store_write_calls_no_model_and_says_why(
    tmp_path: Path,
) -> None:
    from spanlens_lsp.store.enrichments import StoreWriteFailed

    with StandinModelServer(responder=valid_reply) as server:
        settings = one_backend_settings(server.url)
        _workspace(tmp_path)
        async with _engine(tmp_path, settings) as engine:
            engine.calls.halt(StoreWriteFailed("cannot write the index: disk full"))
            writer = OverviewWriter(settings, engine.calls)
            overview = await writer.write("m.py", "python", SPANS, local_only=False)
    assert overview.data is None and overview.error == "cannot write the index: disk full"
    assert server.chat_requests == []


async def test_a_new_engine_gives_docgen_its_call_path(tmp_path: Path) -> None:
    from spanlens_lsp.app import build_services, close_services, replace_docgen, replace_engine

    with StandinModelServer(responder=valid_reply) as server:
        _workspace(tmp_path)
        services = build_services(tmp_path, one_backend_settings(server.url))
        try:

            def docgen_calls() -> Any:
                assert services.docgen.docgen is not None
                return services.docgen.docgen.writer.calls

            first = docgen_calls()
            assert first is not None and first is services.calls
            replace_engine(
                services, one_backend_settings(server.url, retries=1)
            )  # e.g. new settings
            assert services.calls is not None and services.calls is not first
            assert docgen_calls() is services.calls
            replace_docgen(services, one_backend_settings(server.url, retries=1))
            assert docgen_calls() is services.calls
        finally:
            await close_services(services)
