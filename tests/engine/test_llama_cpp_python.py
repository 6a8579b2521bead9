"""spanlens against a real llama.cpp engine (llama-cpp-python's server, SmolLM2-135M): the
structured-output form it takes is detected, usage is counted, a reply cut off at the token
limit is handled, an oversized prompt is refused before sending, and whatever is stored is
valid. A handful of spans, bounded replies and one slot keep it to a few minutes on 2 cores."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_enrichment_engine import (
    assert_every_row_valid,
    attempts,
    backend,
    long_function,
    make_settings,
    spans_named,
    workspace,
)

from spanlens_lsp.app import open_engine
from spanlens_lsp.enrichment.backends.base import ChatRequest, FailureKind
from spanlens_lsp.enrichment.backends.capabilities import OutputForm
from spanlens_lsp.enrichment.backends.openai import OpenAIBackend
from spanlens_lsp.settings import BackendSettings

from .conftest import N_CTX

CODE = '''
def clamp(value, low, high):
    """Limit value to the range [low, high]."""
    return max(low, min(high, value))


def read_lines(path):
    with open(path) as handle:
        return handle.read().splitlines()


def is_even(number):
    return number % 2 == 0
'''


def _settings(url: str, context: int = N_CTX):  # type: ignore[no-untyped-def]
    return make_settings(
        backend(
            url,
            provider="openai",
            model="smollm2",
            context_tokens=context,
            timeout=240,
            max_parallel=2,
            temperature=0.0,
        ),
        retries=0,
        max_invalid_per_tier=1,
    )


async def test_real_engine_end_to_end(tmp_path: Path, llama_server: str) -> None:
    workspace(tmp_path, {"tools.py": CODE, "big.py": long_function(600)})
    engine = open_engine(tmp_path, _settings(llama_server))
    try:
        outcomes = await engine.enrich(spans_named(engine.store, "clamp", "read_lines", "is_even"))
        [endpoint] = engine.cascade.endpoints["small"]
        caps = endpoint.capabilities
        parallel = endpoint.parallel
    finally:
        await engine.aclose()
    assert caps is not None
    assert caps.engine == "llama-cpp-python" and caps.form is OutputForm.JSON_OBJECT_SCHEMA
    assert parallel == 1  # its server runs one completion at a time
    rows = attempts(tmp_path)
    assert len(rows) >= 3
    # The server took the request in its form: every call was answered, none was a fault.
    assert all(r["failure_type"] not in ("server error", "request rejected") for r in rows), rows
    assert all(r["tokens_in"] > 0 and r["tokens_out"] > 0 for r in rows)  # usage counted
    assert all(r["failure_type"] != "truncated output" for r in rows), rows  # bounded replies
    assert {o.status for o in outcomes} <= {"enriched", "failed"}
    assert_every_row_valid(tmp_path)


async def test_real_engine_refuses_an_oversized_prompt_before_sending(
    tmp_path: Path, llama_server: str
) -> None:
    workspace(tmp_path, {"big.py": long_function(600)})
    # Less context than the system prompt and the smallest bounded reply need.
    engine = open_engine(tmp_path, _settings(llama_server, context=400))
    try:
        [outcome] = await engine.enrich(spans_named(engine.store, "long_sum"))
    finally:
        await engine.aclose()
    assert outcome.status == "failed" and "context overflow" in (outcome.error or "")
    assert attempts(tmp_path) == []  # nothing was sent


async def test_real_engine_reply_cut_at_the_token_limit_is_truncated(llama_server: str) -> None:
    client = OpenAIBackend(
        BackendSettings(provider="openai", url=llama_server, model="smollm2", timeout=120)
    )
    try:
        await client.detect(10)
        schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
        messages = [{"role": "user", "content": "Write a long story about a cat in field a."}]
        result = await client.chat(ChatRequest(messages, schema, max_tokens=6))
        counted = await client.count_tokens("def f(x):\n    return x\n", 10)
    finally:
        await client.aclose()
    assert getattr(result, "kind", None) is FailureKind.TRUNCATED
    assert getattr(result, "tokens_out", 0) == 6
    assert counted is not None and counted > 3
