"""The enrich pre-flight and doctor's probe go through the endpoints built once (issue 17 §1):
the same HTTP client, breaker and health as the span calls. Against the stand-in model server
on 127.0.0.1 (real HTTP); the services come from the composition root."""

from __future__ import annotations

from pathlib import Path

from tests.support.replies import valid_reply
from tests.support.settings import one_backend_settings
from tests.support.standin import Reply, StandinModelServer, closed_port_url

from spanlens_lsp.app import command_endpoints, open_engine
from spanlens_lsp.enrichment.call.preflight import preflight
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.rows import SpanRow

SOURCE = "def add(a, b=1):\n    return a + b\n\n\ndef neg(x):\n    return -x\n"


def _workspace(root: Path) -> list[SpanRow]:
    (root / "m.py").write_text(SOURCE)
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        return queries.pending_spans(store, ENRICHMENT_VERSION, 99, 1e12)
    finally:
        store.close()


async def test_a_probe_after_span_calls_opened_the_breaker_reports_it_without_connecting(
    tmp_path: Path,
) -> None:
    spans = _workspace(tmp_path)
    with StandinModelServer(responder=lambda request: Reply.error(500)) as server:
        engine = open_engine(
            tmp_path, one_backend_settings(server.url, breaker_threshold=2, breaker_reset=60)
        )
        try:
            for span in spans:
                await engine.enrich([span])
            assert engine.health()["endpoints"][0]["breaker"] == "open"
            seen = len(server.requests)
            [probe] = await preflight(engine.calls)
        finally:
            await engine.aclose()
    assert len(server.requests) == seen  # the open breaker spares the failing server
    assert probe["reachable"] is True  # it answered, with errors
    assert "circuit open (server error)" in probe["error"]


async def test_the_pre_flight_and_doctor_s_check_use_the_endpoint_s_one_client(
    tmp_path: Path,
) -> None:
    spans = _workspace(tmp_path)
    with StandinModelServer(responder=valid_reply) as server:
        engine = open_engine(tmp_path, one_backend_settings(server.url, breaker_reset=60))
        try:
            [outcome] = await engine.enrich(spans[:1])
            [probe] = await preflight(engine.calls, check_output=True)
            [again] = await preflight(engine.calls)
        finally:
            await engine.aclose()
    assert outcome.status == "enriched"
    assert probe["reachable"] and probe["output_check"]["ok"] is True
    assert again["model_present"] is True
    # Span call, model list, doctor's question, model list again: one keep-alive connection.
    assert len(server.chat_requests) == 2
    assert {request.connection for request in server.requests} == {1}


async def test_an_unreachable_probe_counts_toward_the_breaker_the_span_calls_respect(
    tmp_path: Path,
) -> None:
    spans = _workspace(tmp_path)
    settings = one_backend_settings(closed_port_url(), breaker_threshold=1, breaker_reset=60)
    async with command_endpoints(settings) as calls:
        [probe] = await preflight(calls)
        assert probe["reachable"] is False
        engine = open_engine(tmp_path, settings, endpoints=calls.endpoints)
        try:
            assert engine.health()["endpoints"][0]["breaker"] == "open"
            [outcome] = await engine.enrich(spans[:1])
            [doctor] = await preflight(calls, check_output=True)
        finally:
            await engine.aclose()
    # The span is not sent to an endpoint the probe found down: it waits, as after a
    # span call's refused connection.
    assert outcome.status == "deferred"
    assert "circuit open (connection refused)" in (outcome.error or "")
    assert doctor["reachable"] is False and "output_check" not in doctor


async def test_doctor_s_structured_question_is_a_call_of_the_path_and_counts_toward_health(
    tmp_path: Path,
) -> None:
    with StandinModelServer(responder=lambda request: Reply.error(500)) as server:
        settings = one_backend_settings(server.url, breaker_threshold=1, breaker_reset=60)
        async with command_endpoints(settings) as calls:
            [probe] = await preflight(calls, check_output=True)
            [endpoint] = calls.all_endpoints()
            state = endpoint.breaker.state(calls.clock())
    assert probe["reachable"] is True and probe["model_present"] is True
    assert probe["output_check"]["ok"] is False
    assert probe["output_check"]["detail"] == "server error"
    assert len(server.chat_requests) == 1
    assert state == "open"  # as a span call's server error would leave it
