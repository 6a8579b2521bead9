"""The enrichment engine against real HTTP: the stand-in model server on 127.0.0.1.

Every scenario of issue 3: valid, repaired and invalid replies, transport faults, routing,
failover, escalation, the breaker, batching with fallback, stale results, derived pending
work, and the privacy rule for remote backends. Backoff settings are tiny so that the file
runs fast; no assertion depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
import time
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import (
    batch_responder,
    broken,
    parse_request,
    request_span_ids,
    valid_reply,
    valid_responder,
)
from tests.support.standin import RecordedRequest, Reply, StandinModelServer, closed_port_url

from spanlens_lsp.app import open_engine
from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.enrichment.outcomes import SpanOutcome
from spanlens_lsp.enrichment.prompt.names import WorkspaceNames
from spanlens_lsp.enrichment.prompt.source import SpanSource, enclosing_context
from spanlens_lsp.enrichment.reply.validate import validate_enrichment
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION, DeferralKind
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow

SMALL_FILE = '''
def add(a, b=1):
    """Add two numbers."""
    return a + b


def neg(x):
    return -x


def greet(name, punctuation="!"):
    message = "hello " + name
    return message + punctuation


def ping():
    return "pong"
'''


def long_function(lines: int) -> str:
    body = "\n".join(f"    total += values[{i}] * {i}" for i in range(lines))
    return f"def long_sum(values):\n    total = 0\n{body}\n    return total\n"


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer() as standin:
        yield standin


@pytest.fixture
def second() -> Iterator[StandinModelServer]:
    with StandinModelServer() as standin:
        yield standin


def workspace(root: Path, files: dict[str, str]) -> None:
    """Write ``files`` under ``root`` and index them."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
    finally:
        store.close()


def backend(url: str, name: str = "local", tier: str = "small", **extra: Any) -> dict[str, Any]:
    return {"name": name, "tier": tier, "url": url, "timeout": 5, **extra}


def make_settings(*backends: dict[str, Any], **enrichment: Any) -> Settings:
    raw = {
        "enrichment": {
            "backoff_base": 0.005,
            "backoff_max": 0.05,
            "breaker_reset": 0.3,
            "batch": False,
            **enrichment,
        },
        "gpu": {"enabled": False},
        "backends": list(backends),
    }
    return settings_from_dict(raw)


def spans_named(store: Store, *names: str) -> list[SpanRow]:
    rows = {s.name: s for s in queries.pending_spans(store, ENRICHMENT_VERSION, 99, 1e12)}
    rows.update({s.name: s for path in _paths(store) for s in store.spans_in_file(path)})
    return [rows[name] for name in names]


def _paths(store: Store) -> list[str]:
    return list(store.file_rows())


async def enrich(root: Path, settings: Settings, *names: str) -> list[SpanOutcome]:
    engine = open_engine(root, settings)
    try:
        return await engine.enrich(spans_named(engine.store, *names))
    finally:
        await engine.aclose()


def stored(root: Path) -> list[tuple[str, dict[str, Any]]]:
    store = open_store(root)
    try:
        return queries.enrichment_rows(store, ENRICHMENT_VERSION)
    finally:
        store.close()


def attempts(root: Path) -> list[dict[str, Any]]:
    store = open_store(root)
    try:
        cursor = store.conn.execute("SELECT * FROM attempts ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        store.close()


def failure(root: Path, content_hash: str) -> dict[str, Any] | None:
    store = open_store(root)
    try:
        return queries.failure_for(store, content_hash)
    finally:
        store.close()


def assert_every_row_valid(root: Path) -> None:
    """Every stored enrichment passes schema and fact validation for a span with its hash."""
    store = open_store(root)
    try:
        spans = {s.content_hash: s for p in store.file_rows() for s in store.spans_in_file(p)}
        workspace_names = WorkspaceNames()
        for content_hash, data in queries.enrichment_rows(store, ENRICHMENT_VERSION):
            row = spans[content_hash]
            text = (root / row.path).read_text()
            file_lines = text.split("\n")
            file_spans = store.spans_in_file(row.path)
            context = SpanSource(
                row,
                file_lines[row.start_line : row.end_line + 1],
                enclosing_context(row, file_spans, file_lines),
                workspace_names.for_file(store, text, file_spans),
            ).stored_context()
            assert validate_enrichment(data, context).ok, data
    finally:
        store.close()


@pytest.fixture
def small_ws(tmp_path: Path) -> Path:
    workspace(tmp_path, {"calc.py": SMALL_FILE})
    return tmp_path


# ------------------------------------------------------------------ replies


async def test_valid_json_is_stored_with_provenance(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.responder = lambda r: Reply.json(
        json.loads(valid_reply(r).text), tokens_in=321, tokens_out=45
    )
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "enriched" and outcome.error is None
    [(content_hash, data)] = stored(small_ws)
    assert content_hash == outcome.content_hash
    assert data["inputs"] == ["a: the a argument", "b: the b argument"]
    # The reply cites file lines 1-3; the stored row is relative to the span, which
    # stays right when the function moves.
    assert data["evidence"] == [{"field": "summary", "lines": [1, 3]}]
    [attempt] = attempts(small_ws)
    assert attempt["outcome"] == "ok" and attempt["tokens_in"] == 321
    assert attempt["tokens_out"] == 45 and attempt["model"] == "qwen2.5-coder:7b"
    body = server.chat_requests[0].json
    assert body["format"]["required"][0] == "summary"  # the schema as structured output
    assert body["keep_alive"] == "30m" and body["options"]["num_ctx"] == 8192


async def test_json_in_prose_or_fences_is_repaired_and_stored(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.responder = lambda r: Reply.content(
        "Sure! Here it is:\n```json\n" + valid_reply(r).text + "\n```\nAnything else?"
    )
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "enriched"
    assert len(stored(small_ws)) == 1


async def test_invalid_json_is_never_stored(small_ws: Path, server: StandinModelServer) -> None:
    server.responder = lambda r: Reply.content('{"summary": "adds", "inputs": [')
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "failed" and outcome.error == "invalid output"
    assert stored(small_ws) == []
    assert len(server.chat_requests) == 2  # max_invalid_per_tier, then nowhere to escalate
    record = failure(small_ws, outcome.content_hash)
    assert record is not None and record["count"] == 1
    assert {a["failure_type"] for a in attempts(small_ws)} == {"invalid output"}


@pytest.mark.parametrize("how", ["invented_param", "evidence_outside", "wrong_types", "echo"])
async def test_schema_or_fact_violations_are_never_stored(
    small_ws: Path, server: StandinModelServer, how: str
) -> None:
    server.responder = lambda r: broken(r, how)
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "greet")
    assert outcome.status == "failed" and outcome.error == "invalid output"
    assert stored(small_ws) == []


async def test_truncated_reply_is_asked_once_more_with_twice_the_room_then_fails(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.responder = lambda r: Reply.content(valid_reply(r).text[:40], finish="length")
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "failed" and outcome.error == "truncated output"
    budgets = [r.json["options"]["num_predict"] for r in server.chat_requests]
    assert len(budgets) == 2 and budgets[1] == 2 * budgets[0]
    assert stored(small_ws) == []


async def test_a_reply_cut_off_at_the_token_limit_lands_with_more_room(
    small_ws: Path, server: StandinModelServer
) -> None:
    cut = {"done": False}

    def responder(request: Any) -> Reply:
        if not cut["done"]:
            cut["done"] = True
            return Reply.content(valid_reply(request).text[:40], finish="length")
        return valid_reply(request)

    server.responder = responder
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "enriched"
    assert len(server.chat_requests) == 2 and len(stored(small_ws)) == 1


# ------------------------------------------------------------------ transport faults


async def test_server_error_is_retried(small_ws: Path, server: StandinModelServer) -> None:
    server.script(Reply.error(500), Reply.error(503))
    server.responder = valid_responder
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "enriched"
    assert [a["failure_type"] for a in attempts(small_ws)] == ["server error", "server error", None]


#: What llama.cpp's llama-server (the built-in engine) answers when the model's text breaks its
#: chat-format parser (seen with Qwen2.5-Coder-1.5B on a batched request).
UNPARSED = {
    "error": {
        "code": 500,
        "message": "The model produced output that does not match the expected peg-native format",
        "type": "server_error",
    }
}


async def test_unparsed_model_output_is_invalid_output_not_a_server_fault(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.script(Reply.error(500, UNPARSED))
    server.responder = valid_responder
    settings = make_settings(backend(server.url), breaker_threshold=1)
    engine = open_engine(small_ws, settings)
    try:
        [outcome] = await engine.enrich(spans_named(engine.store, "add"))
        assert outcome.status == "enriched"
        # The model's fault: asked again, and the endpoint stays healthy.
        assert engine.health()["endpoints"][0]["breaker"] == "closed"
    finally:
        await engine.aclose()
    failures = [a["failure_type"] for a in attempts(small_ws)]
    assert failures == ["invalid output", None], failures


async def test_rate_limit_honours_retry_after(small_ws: Path, server: StandinModelServer) -> None:
    server.script(Reply.rate_limited(0.02))
    server.responder = valid_responder
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "enriched"
    first, second_call = server.chat_requests
    assert second_call.received_at - first.received_at >= 0.02
    assert attempts(small_ws)[0]["failure_type"] == "rate limited"


async def test_long_retry_after_fails_over_instead_of_waiting(
    small_ws: Path, server: StandinModelServer, second: StandinModelServer
) -> None:
    server.script(Reply.rate_limited(60))
    second.responder = valid_responder
    settings = make_settings(backend(server.url, "a"), backend(second.url, "b"))
    [outcome] = await enrich(small_ws, settings, "add")
    assert outcome.status == "enriched"
    assert len(server.chat_requests) == 1 and len(second.chat_requests) == 1


async def test_timeout_is_retried(small_ws: Path, server: StandinModelServer) -> None:
    server.script(Reply.slow(2.0, Reply.json({})))
    server.responder = valid_responder
    settings = make_settings(backend(server.url, timeout=0.3))
    [outcome] = await enrich(small_ws, settings, "add")
    assert outcome.status == "enriched"
    assert attempts(small_ws)[0]["failure_type"] == "model timeout"


async def test_connection_refused_fails_and_reports_unreachable(small_ws: Path) -> None:
    engine = open_engine(small_ws, make_settings(backend(closed_port_url())))
    try:
        [outcome] = await engine.enrich(spans_named(engine.store, "add"))
        health = engine.health()
    finally:
        await engine.aclose()
    assert outcome.status == "failed" and outcome.error == "connection refused"
    assert health["unreachable"] is True
    assert health["endpoints"][0]["last_error"].startswith("connection refused")
    assert stored(small_ws) == []


async def test_disconnect_mid_reply_is_retried(small_ws: Path, server: StandinModelServer) -> None:
    server.script(Reply.disconnect_mid_body(), Reply.disconnect())
    server.responder = valid_responder
    [outcome] = await enrich(small_ws, make_settings(backend(server.url)), "add")
    assert outcome.status == "enriched"
    failures = [a["failure_type"] for a in attempts(small_ws)]
    assert failures == ["connection lost", "connection lost", None]


# ------------------------------------------------------------------ routing, failover, tiers


async def test_routing_by_complexity(
    tmp_path: Path, server: StandinModelServer, second: StandinModelServer
) -> None:
    workspace(tmp_path, {"calc.py": SMALL_FILE, "big.py": long_function(30)})
    server.responder = second.responder = valid_responder
    settings = make_settings(
        backend(server.url, "small-box"),
        backend(second.url, "large-box", tier="large"),
        router={"small_max_lines": 20},
    )
    outcomes = await enrich(tmp_path, settings, "add", "long_sum")
    assert [o.status for o in outcomes] == ["enriched", "enriched"]
    assert request_span_ids(server.chat_requests[0]) == [outcomes[0].span_id]
    assert request_span_ids(second.chat_requests[0]) == [outcomes[1].span_id]


async def test_span_too_large_for_a_tier_context_starts_higher(
    tmp_path: Path, server: StandinModelServer, second: StandinModelServer
) -> None:
    workspace(tmp_path, {"big.py": long_function(60)})
    server.responder = second.responder = valid_responder
    settings = make_settings(
        backend(server.url, "tiny", context_tokens=1500),
        backend(second.url, "roomy", tier="large", context_tokens=32768),
        router={"small_max_lines": 500, "small_max_tokens": 5000},
    )
    [outcome] = await enrich(tmp_path, settings, "long_sum")
    assert outcome.status == "enriched"
    assert server.chat_requests == [] and len(second.chat_requests) == 1


async def test_failover_to_a_second_host(small_ws: Path, second: StandinModelServer) -> None:
    second.responder = valid_responder
    settings = make_settings(backend(closed_port_url(), "down"), backend(second.url, "up"))
    [outcome] = await enrich(small_ws, settings, "add")
    assert outcome.status == "enriched"
    [(_, data)] = stored(small_ws)
    assert data["summary"] == "Test enrichment for the function add in calc.py."
    tried = [(a["backend"], a["outcome"]) for a in attempts(small_ws)]
    assert tried[-1] == ("up", "ok") and ("down", "failed") in tried


async def test_load_spreads_over_the_tier_endpoints(
    small_ws: Path, server: StandinModelServer, second: StandinModelServer
) -> None:
    server.responder = second.responder = valid_responder
    server.latency = second.latency = 0.05
    settings = make_settings(
        backend(server.url, "a", max_parallel=1), backend(second.url, "b", max_parallel=1)
    )
    outcomes = await enrich(small_ws, settings, "add", "neg", "greet", "ping")
    assert {o.status for o in outcomes} == {"enriched"}
    assert len(server.chat_requests) == 2 and len(second.chat_requests) == 2


async def test_escalation_to_the_next_tier(
    small_ws: Path, server: StandinModelServer, second: StandinModelServer
) -> None:
    server.responder = lambda r: broken(r, "invented_param")
    second.responder = valid_responder
    settings = make_settings(
        backend(server.url, "small-box"), backend(second.url, "large-box", tier="large")
    )
    [outcome] = await enrich(small_ws, settings, "greet")
    assert outcome.status == "enriched"
    assert len(server.chat_requests) == 2  # repeated invalid replies escalate early
    store = open_store(small_ws)
    try:
        enrichment = queries.enrichment_for(store, outcome.content_hash, ENRICHMENT_VERSION)
    finally:
        store.close()
    assert enrichment is not None and enrichment["tier"] == "large"


async def test_context_overflow_escalates(
    small_ws: Path, server: StandinModelServer, second: StandinModelServer
) -> None:
    server.script(Reply.context_overflow())
    second.responder = valid_responder
    settings = make_settings(backend(server.url), backend(second.url, "big", tier="large"))
    [outcome] = await enrich(small_ws, settings, "add")
    assert outcome.status == "enriched"
    assert attempts(small_ws)[0]["failure_type"] == "context overflow"


async def test_breaker_opens_and_recovers(small_ws: Path, server: StandinModelServer) -> None:
    server.responder = lambda r: Reply.error(500)
    settings = make_settings(backend(server.url), retries=0, breaker_threshold=2)
    engine = open_engine(small_ws, settings)
    try:
        for name in ("add", "neg"):
            [outcome] = await engine.enrich(spans_named(engine.store, name))
            assert outcome.status == "failed" and outcome.error == "server error"
        assert engine.health()["endpoints"][0]["breaker"] == "open"
        [outcome] = await engine.enrich(spans_named(engine.store, "greet"))
        assert outcome.status == "deferred" and len(server.chat_requests) == 2
        await asyncio.sleep(0.35)  # breaker_reset = 0.3: the next call is a trial
        server.responder = valid_responder
        [outcome] = await engine.enrich(spans_named(engine.store, "greet"))
        assert outcome.status == "enriched"
        assert engine.health()["endpoints"][0]["breaker"] == "closed"
    finally:
        await engine.aclose()


# ------------------------------------------------------------------ batching


async def test_batching_with_partial_fallback(small_ws: Path, server: StandinModelServer) -> None:
    engine_spans: list[SpanRow] = []
    store = open_store(small_ws)
    try:
        engine_spans = spans_named(store, "add", "neg", "greet", "ping")
    finally:
        store.close()
    ids = [s.id for s in engine_spans]
    server.responder = batch_responder(drop={ids[1]}, corrupt={ids[2]})
    settings = make_settings(backend(server.url), batch=True)
    outcomes = await enrich(small_ws, settings, "add", "neg", "greet", "ping")
    assert [o.status for o in outcomes] == ["enriched"] * 4
    requests = [request_span_ids(r) for r in server.chat_requests]
    assert requests[0] == ids and sorted(requests[1:]) == sorted([[ids[1]], [ids[2]]])
    batch_attempt = attempts(small_ws)[0]
    assert batch_attempt["batch_size"] == 4 and batch_attempt["enriched"] == 2
    assert batch_attempt["outcome"] == "partial"
    assert_every_row_valid(small_ws)


# ------------------------------------------------------------------ store invariants


async def test_stale_result_is_discarded(small_ws: Path, server: StandinModelServer) -> None:
    server.latency = 0.3
    server.responder = valid_responder
    engine = open_engine(small_ws, make_settings(backend(server.url)))
    try:
        [span] = spans_named(engine.store, "neg")
        task = asyncio.create_task(engine.enrich([span]))
        await asyncio.to_thread(server.wait_for_requests, 1)
        path = small_ws / "calc.py"
        path.write_text(path.read_text().replace("return -x", "return 0 - x"))
        workspace(small_ws, {})  # re-index: neg now has a new hash
        [outcome] = await task
    finally:
        await engine.aclose()
    assert outcome.status == "discarded"
    assert stored(small_ws) == []


async def test_no_invalid_row_is_ever_stored(small_ws: Path, server: StandinModelServer) -> None:
    kinds = iter(["invented_param", "evidence_outside", "wrong_types", "echo"] * 10)

    def mixed(request: RecordedRequest) -> Reply:
        kind = next(kinds)
        return broken(request, kind) if len(server.chat_requests) % 3 else valid_reply(request)

    server.responder = mixed
    settings = make_settings(backend(server.url), max_invalid_per_tier=3, retries=2)
    await enrich(small_ws, settings, "add", "neg", "greet", "ping")
    assert stored(small_ws)  # some landed...
    assert_every_row_valid(small_ws)  # ...and every one of them is valid


async def test_pending_is_derived_so_a_restart_resumes_the_same_set(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.responder = valid_responder
    settings = make_settings(backend(server.url))
    engine = open_engine(small_ws, settings)
    before = [s.id for s in engine.pending()]
    [first] = engine.pending(limit=1)
    await engine.enrich([first])
    expected = [i for i in before if i != first.id]
    # Kill mid-run: a call is in flight when the engine goes away.
    server.latency = 5
    [second_span] = engine.pending(limit=1)
    task = asyncio.create_task(engine.enrich([second_span]))
    await asyncio.to_thread(server.wait_for_requests, 2)
    task.cancel()
    await engine.aclose()
    restarted = open_engine(small_ws, settings)
    try:
        assert [s.id for s in restarted.pending()] == expected
    finally:
        await restarted.aclose()


async def test_failed_span_waits_for_its_retry_time_then_is_failed_for_good(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.responder = lambda r: Reply.content("no json here")
    settings = make_settings(backend(server.url), max_failures=2, failure_retry_base=60)
    engine = open_engine(small_ws, settings)
    try:
        [span] = spans_named(engine.store, "ping")
        await engine.enrich([span])
        store = engine.store
        now = time.time()
        pending_now = queries.pending_spans(store, ENRICHMENT_VERSION, 2, now)
        later = queries.pending_spans(store, ENRICHMENT_VERSION, 2, now + 61)
        assert span.id not in [s.id for s in pending_now]
        assert span.id in [s.id for s in later]
        await engine.enrich([span])
        assert span.id not in [
            s.id for s in queries.pending_spans(store, ENRICHMENT_VERSION, 2, now + 1e6)
        ]
        assert queries.state_counts(store, ENRICHMENT_VERSION, 2)["failed"] == 1
        assert queries.retry_failed(store) == 1
        assert span.id in [s.id for s in engine.pending()]
    finally:
        await engine.aclose()


async def test_concurrent_requests_for_one_hash_make_one_call(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.latency = 0.1
    server.responder = valid_responder
    engine = open_engine(small_ws, make_settings(backend(server.url)))
    try:
        [span] = spans_named(engine.store, "add")
        first, again = await asyncio.gather(engine.enrich([span]), engine.enrich([span]))
    finally:
        await engine.aclose()
    assert first[0].status == again[0].status == "enriched"
    assert len(server.chat_requests) == 1


# ------------------------------------------------------------------ providers and privacy


async def test_openai_json_schema_refusal_falls_back_to_json_object(
    small_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SPANLENS_KEY", "sk-test-123")
    with StandinModelServer(
        responder=valid_responder, require_api_key="sk-test-123", reject_json_schema=True
    ) as server:
        settings = make_settings(
            backend(server.url, provider="openai", api_key_env="TEST_SPANLENS_KEY")
        )
        engine = open_engine(small_ws, settings)
        try:
            outcomes = await engine.enrich(spans_named(engine.store, "add"))
            outcomes += await engine.enrich(spans_named(engine.store, "neg"))
        finally:
            await engine.aclose()
        formats = [r.json["response_format"]["type"] for r in server.chat_requests]
    assert [o.status for o in outcomes] == ["enriched", "enriched"]
    assert formats.count("json_schema") == 1  # refused once, remembered for the endpoint
    assert formats.count("json_object") == 2
    text = json.dumps(attempts(small_ws)) + json.dumps(stored(small_ws))
    assert "sk-test-123" not in text


async def test_remote_backends_never_see_secret_looking_files(
    tmp_path: Path, server: StandinModelServer
) -> None:
    workspace(tmp_path, {"secrets.py": "def token():\n    return 1\n", "app.py": SMALL_FILE})
    server.responder = valid_responder
    settings = make_settings(backend(server.url, "cloud", tier="remote", remote=True))
    outcomes = await enrich(tmp_path, settings, "token", "ping")
    assert [o.status for o in outcomes] == ["deferred", "enriched"]
    assert "must not leave this machine" in (outcomes[0].error or "")
    sent = [parse_request(r) for r in server.chat_requests]
    assert all(s is not None and s["spans"][0]["path"] == "app.py" for s in sent)


async def test_remote_backends_never_see_code_holding_a_credential(
    tmp_path: Path, server: StandinModelServer
) -> None:
    key = "AKIA" + "QWERTYUIOPASDFGH"
    workspace(
        tmp_path,
        {"aws.py": f'def client():\n    return connect("{key}")\n', "app.py": SMALL_FILE},
    )
    server.responder = valid_responder
    settings = make_settings(backend(server.url, "cloud", tier="remote", remote=True))
    outcomes = await enrich(tmp_path, settings, "client", "ping")
    assert [o.status for o in outcomes] == ["deferred", "enriched"]
    assert all(key not in json.dumps(r.json) for r in server.chat_requests)


# ------------------------------------------------------------------ GPU


class FakeGpu:
    """A GPU probe with fixed readings (the real sampler needs NVML)."""

    def __init__(self, too_hot: bool) -> None:
        self.too_hot = too_hot
        self.available = True

    @contextlib.asynccontextmanager
    async def sampling(self, interval: float) -> AsyncIterator[Any]:
        samples = types.SimpleNamespace(summary=None)
        yield samples
        samples.summary = {"samples": 3, "vram_used_mb_max": 5120, "temp_c_max": 71}

    def limits_exceeded(self, min_free_vram_mb: int, max_temperature_c: int) -> str | None:
        return "GPU at 91 °C (limit 85)" if self.too_hot and max_temperature_c else None


async def test_gpu_samples_are_stored_and_limits_defer_local_work(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.responder = valid_responder
    settings = make_settings(backend(server.url))
    settings.gpu.enabled = True
    settings.gpu.max_temperature_c = 85
    hot = open_engine(small_ws, settings, gpu=FakeGpu(too_hot=True))
    try:
        [outcome] = await hot.enrich(spans_named(hot.store, "add"))
    finally:
        await hot.aclose()
    assert outcome.status == "deferred" and "91 °C" in (outcome.error or "")
    # Typed, so that waiting is chosen by kind, never by the wording of a sentence.
    assert outcome.deferral is not None and outcome.deferral.kind is DeferralKind.GPU
    assert server.chat_requests == [] and attempts(small_ws) == []
    cool = open_engine(small_ws, settings, gpu=FakeGpu(too_hot=False))
    try:
        [outcome] = await cool.enrich(spans_named(cool.store, "add"))
    finally:
        await cool.aclose()
    assert outcome.status == "enriched"
    [attempt] = attempts(small_ws)
    assert json.loads(attempt["gpu"]) == {"samples": 3, "vram_used_mb_max": 5120, "temp_c_max": 71}


# ------------------------------------------------------------------ robustness (review fixes)


def _openai_body(content: str, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    return {"choices": [{**choice, "finish_reason": "stop"}], **extra}


def _ollama_body(content: str, **extra: Any) -> dict[str, Any]:
    return {"message": {"role": "assistant", "content": content}, "done": True, **extra}


@pytest.mark.parametrize(
    ("provider", "make_body", "status"),
    [
        ("openai", lambda text: _openai_body(text, usage="n/a"), "enriched"),
        ("openai", lambda text: _openai_body(text, usage={"prompt_tokens": "many"}), "enriched"),
        ("openai", lambda text: {"choices": 5, "usage": [1]}, "failed"),
        ("ollama", lambda text: _ollama_body(text, prompt_eval_count="n/a"), "enriched"),
        ("ollama", lambda text: {"message": ["x"], "eval_count": {"a": 1}}, "failed"),
    ],
)
async def test_malformed_200_replies_never_raise(
    small_ws: Path, server: StandinModelServer, provider: str, make_body: Any, status: str
) -> None:
    # Reply.error(200, body) sends the body verbatim with status 200.
    server.responder = lambda r: Reply.error(200, make_body(valid_reply(r).text))
    settings = make_settings(backend(server.url, provider=provider), retries=0)
    [outcome] = await enrich(small_ws, settings, "add")
    assert outcome.status == status
    rows = attempts(small_ws)
    assert rows and rows[0]["tokens_in"] == 0
    if status == "failed":
        assert outcome.error == "invalid output" and stored(small_ws) == []


class ExplodingBackend:
    """A backend whose client breaks: ``chat`` raises, or hangs until cancelled."""

    def __init__(self, settings: Any, hang: bool = False) -> None:
        from spanlens_lsp.enrichment.backends.capabilities import Capabilities

        self.settings = settings
        self.hang = hang
        self.entered = asyncio.Event()
        self.capabilities = Capabilities(detected=True)

    async def detect(self, timeout: float) -> Any:
        return self.capabilities

    async def count_tokens(self, text: str, timeout: float) -> int | None:
        return None

    async def chat(self, request: Any) -> Any:
        self.entered.set()
        if self.hang:
            await asyncio.Event().wait()
        raise RuntimeError("client bug at http://user:hunter2@example.invalid")

    async def probe(self, timeout: float) -> Any:
        raise AssertionError("not probed")

    async def aclose(self) -> None:
        return None


def _half_open_cascade(small_ws: Path, hang: bool) -> tuple[Any, Any, list[Any], Any]:
    from spanlens_lsp.enrichment.call.cascade import Cascade
    from spanlens_lsp.enrichment.call.endpoints import Breaker, Endpoint
    from spanlens_lsp.enrichment.call.path import CallPath
    from spanlens_lsp.enrichment.planning.calls import CallPlan

    settings = make_settings(backend("http://user:hunter2@127.0.0.1:9"), retries=0)
    exploding = ExplodingBackend(settings.backends[0], hang=hang)
    breaker = Breaker(threshold=1, reset_after=0.0, failures=1, opened_at=time.monotonic() - 1)
    endpoint = Endpoint(exploding, breaker, asyncio.Semaphore(1))
    recorded: list[Any] = []

    async def record(attempt: Any) -> None:
        recorded.append(attempt)

    cascade = Cascade(CallPath({"small": [endpoint]}, settings.enrichment, record))
    store = open_store(small_ws)
    try:
        [span] = spans_named(store, "add")
    finally:
        store.close()
    lines = (small_ws / span.path).read_text().split("\n")[span.start_line : span.end_line + 1]
    job = CallPlan([SpanSource(span, lines)], ["small"])
    return cascade, job, recorded, exploding


async def test_a_backend_that_raises_is_a_typed_failure_and_frees_the_trial(
    small_ws: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cascade, job, recorded, _ = _half_open_cascade(small_ws, hang=False)
    result = await cascade.run(job)
    assert result.attempted and result.failure is not None
    assert result.failure.value == "backend error"
    [attempt] = recorded  # the call is recorded
    assert attempt.failure_type == "backend error" and "hunter2" not in (attempt.detail or "")
    breaker = cascade.endpoints["small"][0].breaker
    assert breaker.trial_in_flight is False
    assert "hunter2" not in caplog.text


async def test_a_cancelled_trial_call_releases_the_half_open_breaker(small_ws: Path) -> None:
    cascade, job, recorded, exploding = _half_open_cascade(small_ws, hang=True)
    task = asyncio.create_task(cascade.run(job))
    await asyncio.wait_for(exploding.entered.wait(), 5)
    breaker = cascade.endpoints["small"][0].breaker
    assert breaker.trial_in_flight is True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert breaker.trial_in_flight is False and breaker.can_call(time.monotonic())
    assert recorded == []


CLASS_FILE = '''
class Counter:
    """Counts things."""

    def __init__(self):
        self.count = 0

    def bump(self, by=1):
        self.count += by
        return self.count
'''


async def test_container_whose_file_changed_since_indexing_is_discarded(
    tmp_path: Path, server: StandinModelServer
) -> None:
    workspace(tmp_path, {"counter.py": CLASS_FILE})
    server.responder = valid_responder
    path = tmp_path / "counter.py"
    # Only the docstring changes: the class's skeleton hash stays the same.
    path.write_text(path.read_text().replace("Counts things.", "Counts other things."))
    [outcome] = await enrich(tmp_path, make_settings(backend(server.url)), "Counter")
    assert outcome.status == "discarded"
    assert outcome.error == "file changed since it was indexed"
    assert server.chat_requests == [] and stored(tmp_path) == []


async def test_container_of_an_unchanged_file_is_enriched(
    tmp_path: Path, server: StandinModelServer
) -> None:
    workspace(tmp_path, {"counter.py": CLASS_FILE})
    server.responder = valid_responder
    [outcome] = await enrich(tmp_path, make_settings(backend(server.url)), "Counter")
    assert outcome.status == "enriched"


async def test_url_credentials_and_api_key_never_reach_store_health_or_log(
    small_ws: Path,
    server: StandinModelServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="spanlens_lsp")
    monkeypatch.setenv("SPANLENS_TEST_KEY", "sk-very-secret-123")
    with_creds = server.url.replace("http://", "http://user:hunter2@")
    server.script(Reply.error(500, body="echo: key sk-very-secret-123 user:hunter2"))
    server.responder = valid_responder
    settings = make_settings(
        backend(with_creds, provider="openai", api_key_env="SPANLENS_TEST_KEY"),
        breaker_threshold=1,  # so that the failure is logged at WARNING too
        breaker_reset=0.0,
    )
    engine = open_engine(small_ws, settings)
    try:
        [outcome] = await engine.enrich(spans_named(engine.store, "add"))
        health = engine.health()
        probe = await engine.probe()
    finally:
        await engine.aclose()
    assert outcome.status == "enriched"
    host = with_creds.split("@", 1)[1]
    rows = attempts(small_ws)
    assert [a["host"] for a in rows] == [host, host]
    assert "sk-very-secret-123" not in rows[0]["detail"] and "hunter2" not in rows[0]["detail"]
    store = open_store(small_ws)
    try:
        [(stored_host,)] = store.conn.execute("SELECT host FROM enrichments").fetchall()
    finally:
        store.close()
    assert stored_host == host
    assert health["endpoints"][0]["url"] == f"http://{host}"
    assert probe["backends"][0]["url"] == f"http://{host}"
    assert "hunter2" not in caplog.text and "sk-very-secret-123" not in caplog.text


async def test_wrong_api_key_is_an_endpoint_problem_not_a_span_failure(
    small_ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANLENS_TEST_KEY", "wrong")
    with StandinModelServer(require_api_key="right", responder=valid_responder) as server:
        settings = make_settings(
            backend(server.url, provider="openai", api_key_env="SPANLENS_TEST_KEY", max_parallel=1)
        )
        engine = open_engine(small_ws, settings)
        try:
            outcomes = await engine.enrich(spans_named(engine.store, "add", "neg"))
            health = engine.health()
            [later] = await engine.enrich(spans_named(engine.store, "greet"))
        finally:
            await engine.aclose()
        assert len(server.chat_requests) == 1  # the endpoint is paused after one refusal
    assert [o.status for o in outcomes] == ["deferred", "deferred"]
    assert later.status == "deferred"
    assert all(failure(small_ws, o.content_hash) is None for o in [*outcomes, later])
    [entry] = health["endpoints"]
    assert entry["breaker"] == "open" and "SPANLENS_TEST_KEY" in entry["misconfigured"]
    assert health["misconfigured"] == [entry["misconfigured"]]
    assert [a["failure_type"] for a in attempts(small_ws)] == ["backend misconfigured"]


async def test_unset_api_key_env_defers_without_calling(
    small_ws: Path, server: StandinModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPANLENS_UNSET_KEY", raising=False)
    server.responder = valid_responder
    settings = make_settings(
        backend(server.url, provider="openai", api_key_env="SPANLENS_UNSET_KEY")
    )
    [outcome] = await enrich(small_ws, settings, "add")
    assert outcome.status == "deferred" and "SPANLENS_UNSET_KEY" in (outcome.error or "")
    assert server.chat_requests == [] and failure(small_ws, outcome.content_hash) is None


async def test_missing_model_fails_over_and_is_reported_once(
    small_ws: Path, second: StandinModelServer
) -> None:
    with StandinModelServer(models=("other:1b",), responder=valid_responder) as server:
        second.responder = valid_responder
        settings = make_settings(backend(server.url, "a"), backend(second.url, "b"))
        engine = open_engine(small_ws, settings)
        try:
            [outcome] = await engine.enrich(spans_named(engine.store, "add"))
            health = engine.health()
        finally:
            await engine.aclose()
    assert outcome.status == "enriched"
    [message] = health["misconfigured"]
    assert "ollama pull qwen2.5-coder:7b" in message


async def test_rate_limit_cools_the_endpoint_down_for_every_job(
    small_ws: Path, server: StandinModelServer
) -> None:
    # The 429 comes on the last (only) try; the other job, queued behind it, must not call.
    server.script(Reply.rate_limited(60))
    server.responder = valid_responder
    settings = make_settings(backend(server.url, max_parallel=1), retries=0)
    engine = open_engine(small_ws, settings)
    try:
        outcomes = await engine.enrich(spans_named(engine.store, "add", "neg"))
        health = engine.health()
        [later] = await engine.enrich(spans_named(engine.store, "greet"))
    finally:
        await engine.aclose()
    assert len(server.chat_requests) == 1
    # A 429 is the endpoint's state: both spans wait, neither is counted as failed.
    assert [(o.status, o.transient) for o in outcomes] == [("deferred", True)] * 2
    assert all(failure(small_ws, o.content_hash) is None for o in outcomes)
    assert later.status == "deferred" and later.error == "backend local rate limited"
    assert health["endpoints"][0]["cooldown_s"] > 50


async def test_short_retry_after_makes_other_jobs_wait_it_out(
    small_ws: Path, server: StandinModelServer
) -> None:
    server.script(Reply.rate_limited(0.2))
    server.responder = valid_responder
    settings = make_settings(backend(server.url, max_parallel=2), retries=1, backoff_max=1.0)
    outcomes = await enrich(small_ws, settings, "add", "neg")
    assert [o.status for o in outcomes] == ["enriched", "enriched"]
    first, *later = sorted(r.received_at for r in server.chat_requests)
    # Both spans were called concurrently once; no call followed within the Retry-After.
    assert len(later) >= 2
    assert sum(1 for t in later if t - first < 0.2) <= 1
