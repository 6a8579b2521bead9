"""Per-endpoint capabilities against stand-ins that speak like llama.cpp and llama-cpp-python:
the structured-output form a server takes, its schema bounds, context per slot, slots and
tokenizer, detected once and remembered; a refused format is never a server fault."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.support.replies import valid_responder
from tests.support.standin import Reply, StandinModelServer
from tests.unit.test_enrichment_engine import (
    SMALL_FILE,
    attempts,
    backend,
    long_function,
    make_settings,
    spans_named,
    stored,
    workspace,
)

from spanlens_lsp.app import open_engine
from spanlens_lsp.enrichment.backends.base import ChatReply, ChatRequest
from spanlens_lsp.enrichment.backends.capabilities import OutputForm
from spanlens_lsp.enrichment.backends.openai import OpenAIBackend
from spanlens_lsp.enrichment.engine import EnrichmentEngine
from spanlens_lsp.enrichment.prompt.build import build_prompt, with_more_reply_room
from spanlens_lsp.enrichment.prompt.schema import SpanBounds, bounded_schema, reply_token_bound
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.store.rows import SpanRow


def _openai(url: str, **extra: Any) -> dict[str, Any]:
    return backend(url, provider="openai", model="qwen2.5-coder:7b", **extra)


async def _enrich(root: Path, settings: Any, *names: str) -> tuple[list[Any], EnrichmentEngine]:
    engine = open_engine(root, settings)
    try:
        outcomes = await engine.enrich(spans_named(engine.store, *names))
    finally:
        await engine.aclose()
    return outcomes, engine


async def test_llama_cpp_python_refusal_is_a_capability_not_a_server_fault(
    tmp_path: Path,
) -> None:
    workspace(tmp_path, {"calc.py": SMALL_FILE})
    with StandinModelServer(responder=valid_responder, engine="llama-cpp-python") as server:
        # A breaker that opens on the first server fault: a refused format must not count.
        settings = make_settings(_openai(server.url), breaker_threshold=1)
        engine = open_engine(tmp_path, settings)
        try:
            first = await engine.enrich(spans_named(engine.store, "add"))
            second = await engine.enrich(spans_named(engine.store, "greet"))
            [endpoint] = engine.cascade.endpoints["small"]
            breaker_failures = endpoint.breaker.failures
            caps = endpoint.capabilities
        finally:
            await engine.aclose()
        chats = [r.json for r in server.chat_requests]
    assert [o.status for o in first + second] == ["enriched", "enriched"]
    assert breaker_failures == 0
    assert caps is not None and caps.engine == "llama-cpp-python"
    # Detected from the server itself: json_object + schema is asked for from the start.
    assert [c["response_format"]["type"] for c in chats] == ["json_object", "json_object"]
    schema = chats[1]["response_format"]["schema"]
    assert schema["properties"]["inputs"]["maxItems"] == 2  # greet(name, punctuation)
    assert schema["properties"]["summary"]["maxLength"] > 0
    # Its converter drops the whole grammar on a pattern: never sent to it.
    assert "pattern" not in json.dumps(schema)
    assert all(c["repeat_penalty"] == 1.1 for c in chats)
    assert not any(a["outcome"] == "failed" for a in attempts(tmp_path))


async def test_a_500_refusing_json_schema_steps_down_without_failing_the_span(
    tmp_path: Path,
) -> None:
    workspace(tmp_path, {"calc.py": SMALL_FILE})
    with StandinModelServer(responder=valid_responder, engine="llama-cpp-python") as server:
        settings = make_settings(_openai(server.url), breaker_threshold=1)
        engine = open_engine(tmp_path, settings)
        [endpoint] = engine.cascade.endpoints["small"]
        caps = endpoint.capabilities
        assert caps is not None
        caps.detected = True  # detection skipped: only the refusal's body can teach it
        try:
            outcomes = await engine.enrich(spans_named(engine.store, "add"))
            outcomes += await engine.enrich(spans_named(engine.store, "neg"))
            breaker_open = endpoint.breaker.opened_at is not None
        finally:
            await engine.aclose()
        kinds = [r.json["response_format"]["type"] for r in server.chat_requests]
    assert [o.status for o in outcomes] == ["enriched", "enriched"]
    assert not breaker_open
    assert kinds == ["json_schema", "json_object", "json_object"]  # refused once, remembered
    assert caps.form.value == "json_object+schema"
    assert len(stored(tmp_path)) == 2


async def test_llama_cpp_slots_cap_concurrency_and_split_the_context(tmp_path: Path) -> None:
    workspace(tmp_path, {"calc.py": SMALL_FILE})
    with StandinModelServer(
        responder=valid_responder, engine="llama.cpp", n_ctx=8192, slots=2, latency=0.05
    ) as server:
        settings = make_settings(_openai(server.url, max_parallel=4, context_tokens=8192))
        engine = open_engine(tmp_path, settings)
        try:
            names = ("add", "neg", "greet", "ping")
            outcomes = await asyncio.gather(
                *(engine.enrich(spans_named(engine.store, n)) for n in names)
            )
            [endpoint] = engine.cascade.endpoints["small"]
            context = endpoint.context_tokens
        finally:
            await engine.aclose()
        chats = [r.json for r in server.chat_requests]
        peak = server.max_in_flight
    assert [o[0].status for o in outcomes] == ["enriched"] * 4
    assert peak <= 2
    assert context == 4096
    schema = chats[0]["response_format"]["json_schema"]["schema"]
    assert "pattern" in json.dumps(schema)  # llama.cpp's grammar enforces patterns
    assert all(c["repeat_penalty"] == 1.1 for c in chats)
    assert all(len(json.dumps(c["messages"])) // 3 + c["max_tokens"] <= 4096 for c in chats)


async def test_a_prompt_the_server_counts_too_long_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    workspace(tmp_path, {"big.py": long_function(400)})
    # 1 token for every 1.5 characters: the estimate is far too low, the tokenizer is right.
    with StandinModelServer(
        responder=valid_responder, engine="llama.cpp", n_ctx=700, slots=1, chars_per_token=0.5
    ) as server:
        settings = make_settings(_openai(server.url, context_tokens=700))
        outcomes, _ = await _enrich(tmp_path, settings, "long_sum")
        sent = server.chat_requests
    assert outcomes[0].status == "failed"
    assert "context overflow" in (outcomes[0].error or "")
    assert sent == []


def test_max_tokens_is_the_bound_of_the_schema_and_fits_the_room() -> None:
    span = SpanBounds(7, ("a", "b", "c"), 10, 30)
    schema, bound = bounded_schema([span], room_tokens=None)
    assert bound == reply_token_bound(schema)
    small, small_bound = bounded_schema([span], room_tokens=bound // 2)
    assert small_bound <= bound // 2
    assert (
        small["properties"]["summary"]["maxLength"] < schema["properties"]["summary"]["maxLength"]
    )
    assert schema["properties"]["inputs"]["maxItems"] == 3
    batch, _ = bounded_schema([span, SpanBounds(8, (), 31, 40)], None)
    entries = batch["properties"]["enrichments"]
    assert entries["maxItems"] == 2
    ids = [o["properties"]["span_id"]["enum"] for o in entries["items"]["anyOf"]]
    assert ids == [[7], [8]]
    assert entries["items"]["anyOf"][1]["properties"]["inputs"]["maxItems"] == 0


def _function_f_of_x() -> SpanRow:
    """The span of ``def f(x): return x`` at the top of a.py."""
    return SpanRow(
        id=1,
        path="a.py",
        language="python",
        name="f",
        kind="function",
        ordinal=0,
        start_line=0,
        start_col=0,
        end_line=1,
        end_col=0,
        name_start_line=0,
        name_start_col=4,
        name_end_line=0,
        name_end_col=5,
        content_hash="h",
        facts={"params": [{"name": "x"}]},
        enriched_hash=None,
    )


def test_a_retry_with_more_room_is_not_made_when_it_cannot_fit() -> None:
    row = _function_f_of_x()
    source = SpanSource(row, ["def f(x):", "    return x"])
    roomy = build_prompt([source], 16384)
    assert with_more_reply_room(roomy) is not None
    tight = build_prompt([source], roomy.tokens + roomy.max_tokens + 10)
    assert tight.tokens + tight.max_tokens <= tight.context_tokens  # type: ignore[operator]
    assert with_more_reply_room(tight) is None


def test_doctor_reports_the_form_it_found_and_whether_replies_are_valid(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from spanlens_lsp.cli import main

    (tmp_path / "a.py").write_text("def f(x):\n    return x\n")
    with StandinModelServer(responder=valid_responder, engine="llama-cpp-python") as server:
        monkeypatch.setenv(
            "SPANLENS_BACKENDS",
            json.dumps(
                [
                    {
                        "name": "l",
                        "provider": "openai",
                        "url": server.url,
                        "model": "qwen2.5-coder:7b",
                    }
                ]
            ),
        )
        monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
        assert main(["doctor", str(tmp_path)]) == 0
        server.responder = lambda request: Reply.json({"answer": "maybe"})
        code = main(["doctor", str(tmp_path), "--json"])
    assert code == 1


def test_doctor_text_names_form_context_and_validity(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    from spanlens_lsp.cli import main

    (tmp_path / "a.py").write_text("def f(x):\n    return x\n")
    with StandinModelServer(
        responder=valid_responder, engine="llama.cpp", n_ctx=4096, slots=4
    ) as server:
        monkeypatch.setenv(
            "SPANLENS_BACKENDS",
            json.dumps(
                [
                    {
                        "name": "l",
                        "provider": "openai",
                        "url": server.url,
                        "model": "qwen2.5-coder:7b",
                    }
                ]
            ),
        )
        monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
        assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "engine llama.cpp, structured output json_schema, context per slot 1024, slots 4" in out
    assert "replies valid" in out


def _find_key(node: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in ``node`` (a JSON tree), or None."""
    if isinstance(node, dict):
        if key in node:
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        return next((v for v in (_find_key(n, key) for n in node) if v is not None), None)
    return None


async def test_a_litellm_proxy_routing_one_name_to_two_llama_cpp_servers(tmp_path: Path) -> None:
    from tests.support.litellm_standin import LiteLLMProxyStandin

    workspace(tmp_path, {"calc.py": SMALL_FILE})
    with (
        StandinModelServer(
            models=("smol-a",), responder=valid_responder, engine="llama.cpp", slots=1
        ) as first,
        StandinModelServer(
            models=("smol-b",), responder=valid_responder, engine="llama.cpp", slots=1
        ) as second,
        LiteLLMProxyStandin(
            {"code-small": [(first.url, "smol-a"), (second.url, "smol-b")]}
        ) as proxy,
    ):
        # The proxy hides the engine: the backend says which one is behind it.
        settings = make_settings(
            backend(
                proxy.url, provider="openai", model="code-small", engine="llama.cpp", max_parallel=2
            )
        )
        outcomes, _ = await _enrich(tmp_path, settings, "add", "neg", "greet", "ping")
        upstream = [r.json for r in first.chat_requests + second.chat_requests]
        spread = {url for url, _ in proxy.forwarded} == {first.url, second.url}
    assert [o.status for o in outcomes] == ["enriched"] * 4
    assert spread  # load spread over both servers
    # Bounds, patterns and the repetition control reach llama.cpp through the proxy.
    formats = [json.dumps(r["response_format"]) for r in upstream]
    assert all('"maxLength"' in f for f in formats)
    assert all('"pattern"' in f for f in formats)  # outputs and side effects, in every one
    inputs = [json.dumps(_find_key(r["response_format"], "inputs")) for r in upstream]
    assert sum('"pattern"' in f for f in inputs) == 3  # ping() has no parameter to name
    assert all(r["repeat_penalty"] == 1.1 for r in upstream)
    assert len(stored(tmp_path)) == 4


def test_a_tight_context_drops_the_enclosing_context_before_cutting_the_code() -> None:
    row = _function_f_of_x()
    context = "Module imports:\n" + "\n".join(f"import module_{i}" for i in range(300))
    source = SpanSource(row, ["def f(x):", "    return x"], context)
    whole = build_prompt([source], 16384)
    bare = build_prompt([SpanSource(row, source.lines)], 16384)
    # Room for the code and a bounded reply, not for the imports as well.
    tight = build_prompt([source], bare.tokens + whole.max_tokens + 50)
    assert "import module_1" in whole.messages[1]["content"] and not whole.dropped_context
    assert tight.dropped_context and tight.excerpted == ()
    assert "import module_1" not in tight.messages[1]["content"]
    assert "    2 |     return x" in tight.messages[1]["content"]


async def test_an_unknown_openai_compatible_engine_gets_no_bounds_it_may_reject(
    tmp_path: Path,
) -> None:
    workspace(tmp_path, {"calc.py": SMALL_FILE})
    with StandinModelServer(responder=valid_responder) as server:
        outcomes, _ = await _enrich(tmp_path, make_settings(_openai(server.url)), "add")
        [chat] = [r.json for r in server.chat_requests]
    assert outcomes[0].status == "enriched"
    schema = json.dumps(chat["response_format"]["json_schema"]["schema"])
    # OpenAI's strict mode rejects length and range keywords; the shape itself is plain JSON
    # Schema and stays.
    assert "maxLength" not in schema and "pattern" not in schema and "minItems" not in schema
    assert '"additionalProperties": false' in schema and '"required"' in schema
    assert "repeat_penalty" not in chat  # not an OpenAI parameter
    assert chat["max_tokens"] > 0


async def _enrich_while_the_probe_is_slow_then_quick(
    tmp_path: Path, server: StandinModelServer
) -> tuple[bool, list[Any], Any, list[str]]:
    """Enrich ``add`` while the server's probes answer after the 1 s detection timeout, then
    ``greet`` once they answer at once: (detected while slow, outcomes, caps, chat forms)."""
    workspace(tmp_path, {"calc.py": SMALL_FILE})
    engine = open_engine(tmp_path, make_settings(_openai(server.url, timeout=1)))
    try:
        first = await engine.enrich(spans_named(engine.store, "add"))
        [endpoint] = engine.cascade.endpoints["small"]
        assert endpoint.capabilities is not None
        detected_while_slow = endpoint.capabilities.detected
        server.probe_latency = 0.0  # the completion it was busy with is done
        second = await engine.enrich(spans_named(engine.store, "greet"))
        caps = endpoint.capabilities
    finally:
        await engine.aclose()
    forms = [r.json["response_format"]["type"] for r in server.chat_requests]
    return detected_while_slow, first + second, caps, forms


async def test_a_tokenizer_probe_that_times_out_is_asked_again_not_remembered_as_a_guess(
    tmp_path: Path,
) -> None:
    """llama-cpp-python answers its tokenizer only between completions: a busy server at the
    first probe must not be remembered as a plain OpenAI-compatible one for good."""
    with StandinModelServer(
        responder=valid_responder, engine="llama-cpp-python", probe_latency=3.0
    ) as server:
        (
            detected_while_busy,
            outcomes,
            caps,
            forms,
        ) = await _enrich_while_the_probe_is_slow_then_quick(tmp_path, server)
    assert not detected_while_busy  # no guess was remembered while it was busy
    assert caps is not None and caps.engine == "llama-cpp-python"
    assert [o.status for o in outcomes] == ["enriched", "enriched"]
    assert forms[-1] == "json_object"  # its own form once it answered


async def test_llama_cpp_props_that_time_out_are_asked_again_for_slots_and_context(
    tmp_path: Path,
) -> None:
    with StandinModelServer(
        responder=valid_responder, engine="llama.cpp", slots=2, n_ctx=8192, probe_latency=3.0
    ) as server:
        detected_while_busy, outcomes, caps, _ = await _enrich_while_the_probe_is_slow_then_quick(
            tmp_path, server
        )
    assert not detected_while_busy
    assert [o.status for o in outcomes] == ["enriched", "enriched"]
    assert caps is not None and caps.engine == "llama.cpp"
    assert caps.slots == 2 and caps.context_per_slot == 4096


def _compact_backend(url: str) -> OpenAIBackend:
    settings = make_settings(_openai(url))
    return OpenAIBackend(settings.backends[0], compact_grammar=True)


_TINY = ChatRequest(
    messages=[{"role": "user", "content": "Describe add."}],
    schema={
        "type": "object",
        "required": ["summary"],
        "properties": {"summary": {"type": "string", "maxLength": 40}},
    },
    max_tokens=40,
)


async def test_an_engine_with_llguidance_is_asked_for_compact_json() -> None:
    # A small model spends a seventh of its reply tokens on line breaks and indentation when
    # the grammar allows them: the built-in engine gets the schema as an llguidance grammar
    # that allows none.
    with StandinModelServer(engine="llama.cpp") as server:
        server.script(Reply.json({"summary": "Adds two numbers."}))
        backend = _compact_backend(server.url)
        try:
            caps = await backend.detect(5.0)
            reply = await backend.chat(_TINY)
        finally:
            await backend.aclose()
        [chat] = [r.json for r in server.chat_requests]
    assert isinstance(reply, ChatReply) and json.loads(reply.text)["summary"]
    assert caps.form is OutputForm.COMPACT_GRAMMAR and caps.as_json()["structured_output"] == (
        "llguidance-compact"
    )
    assert "response_format" not in chat
    head, _, schema = chat["grammar"].partition("start: %json ")
    assert head == "%llguidance {}\n"
    sent = json.loads(schema)
    assert sent["x-guidance"] == {
        "whitespace_flexible": False,
        "item_separator": ", ",
        "key_separator": ": ",
    }
    assert sent["properties"] == _TINY.schema["properties"]


async def test_a_llama_cpp_without_llguidance_steps_down_to_json_schema() -> None:
    with StandinModelServer(engine="llama.cpp", llguidance=False) as server:
        server.script(*(Reply.json({"summary": "Adds two numbers."}) for _ in range(2)))
        backend = _compact_backend(server.url)
        try:
            await backend.detect(5.0)
            replies = [await backend.chat(_TINY) for _ in range(2)]
        finally:
            await backend.aclose()
        chats = [r.json for r in server.chat_requests]
    assert all(isinstance(r, ChatReply) for r in replies)
    # Refused once, remembered: the next call goes straight to json_schema.
    assert ["grammar" in c for c in chats] == [True, False, False]
    assert [c.get("response_format", {}).get("type") for c in chats[1:]] == ["json_schema"] * 2
    assert backend.capabilities.form is OutputForm.JSON_SCHEMA


async def test_a_plain_openai_backend_never_sends_a_grammar() -> None:
    with StandinModelServer(engine="llama.cpp") as server:
        server.script(Reply.json({"summary": "Adds two numbers."}))
        settings = make_settings(_openai(server.url))
        backend = OpenAIBackend(settings.backends[0])
        try:
            await backend.detect(5.0)
            await backend.chat(_TINY)
        finally:
            await backend.aclose()
        [chat] = [r.json for r in server.chat_requests]
    assert "grammar" not in chat and chat["response_format"]["type"] == "json_schema"
