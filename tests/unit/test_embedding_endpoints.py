"""Embedding endpoints against real HTTP stand-ins on 127.0.0.1: Ollama's /api/embed and the
OpenAI-compatible /v1/embeddings, their replies checked, retried and recorded like any call."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.standin import Reply, StandinModelServer, standin_vector

from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.embedding.endpoints import (
    EmbedFailure,
    close_embedders,
    embedders_from_settings,
)
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.enrichments import Attempt

MODEL = "nomic-embed-text"


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer(models=(MODEL,)) as standin:
        yield standin


def _settings(url: str, provider: str = "ollama", **extra: Any) -> Settings:
    entry = {"name": "vec", "provider": provider, "url": url, "model": MODEL, **extra}
    enrichment = {"backoff_base": 0.001, "backoff_max": 0.01, "breaker_threshold": 3}
    return settings_from_dict({"embeddings": [entry], "enrichment": enrichment})


def _embed(settings: Settings, texts: list[str]) -> tuple[Any, list[Attempt]]:
    """Embed ``texts`` with the first embedder; (result or the EmbedFailure, attempts)."""
    attempts: list[Attempt] = []

    async def record(attempt: Attempt) -> None:
        attempts.append(attempt)

    async def go() -> Any:
        embedders = embedders_from_settings(settings, record)
        try:
            return await embedders[0].embed(texts, ["h1"] * len(texts))
        except EmbedFailure as exc:
            return exc
        finally:
            await close_embedders(embedders)

    return asyncio.run(go()), attempts


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def test_no_embeddings_configured_means_no_embedders() -> None:
    assert embedders_from_settings(Settings()) == []


@pytest.mark.parametrize("provider", ["ollama", "openai"])
def test_vectors_come_back_one_per_text_normalised_and_the_call_is_recorded(
    server: StandinModelServer, provider: str
) -> None:
    result, attempts = _embed(_settings(server.url, provider), ["parse config", "read file"])
    assert [r.json for r in server.embed_requests] == [
        {"model": MODEL, "input": ["parse config", "read file"]}
    ]
    expected = [_unit(standin_vector(t)) for t in ("parse config", "read file")]
    assert [[round(x, 6) for x in v] for v in result.vectors] == [
        [round(x, 6) for x in v] for v in expected
    ]
    assert result.tokens == 10
    assert [(a.tier, a.backend, a.model, a.outcome, a.tokens_in) for a in attempts] == [
        ("embed", "vec", MODEL, "ok", 10)
    ]


def test_openai_entries_are_put_in_index_order_and_the_key_comes_from_the_environment(
    server: StandinModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.require_api_key = "sk-test-123"
    monkeypatch.setenv("EMBED_KEY", "sk-test-123")
    data = [{"index": 1, "embedding": [0.0, 2.0]}, {"index": 0, "embedding": [3.0, 0.0]}]
    server.script_embeddings(Reply.vectors_of(None, body={"data": data}))
    result, attempts = _embed(_settings(server.url, "openai", api_key_env="EMBED_KEY"), ["a", "b"])
    assert result.vectors == [[1.0, 0.0], [0.0, 1.0]]
    assert server.embed_requests[0].headers["authorization"] == "Bearer sk-test-123"
    assert "sk-test-123" not in repr(attempts)


def test_a_server_error_is_retried_and_both_calls_are_recorded(
    server: StandinModelServer,
) -> None:
    server.script_embeddings(Reply.error(500))
    result, attempts = _embed(_settings(server.url), ["x"])
    assert len(result.vectors) == 1
    assert [(a.outcome, a.failure_type) for a in attempts] == [
        ("failed", "server error"),
        ("ok", None),
    ]


@pytest.mark.parametrize(
    ("vectors", "why"),
    [
        ([[1.0, 0.0]], "1 vectors for 2 texts"),
        ([[1.0, float("nan")], [0.0, 1.0]], "not a finite number"),
        ([[1.0, 0.0], [0.0, 1.0, 0.0]], "mixes vectors of 2 and 3 dimensions"),
        ([[0.0, 0.0], [0.0, 1.0]], "zero or unbounded length"),
        ([["1", 0.0], [0.0, 1.0]], "not a list of numbers"),
        ([[True, 0.0], [0.0, 1.0]], "not a list of numbers"),
        ([[10**400, 0.0], [0.0, 1.0]], "not a finite number"),
        ([[1e300, 1e300], [0.0, 1.0]], "zero or unbounded length"),
    ],
)
def test_an_invalid_reply_never_becomes_vectors(
    server: StandinModelServer, vectors: Any, why: str
) -> None:
    # Every try gets the same bad reply: asked again at once, then given up on.
    server.script_embeddings(*[Reply.vectors_of(vectors)] * 5)
    result, attempts = _embed(_settings(server.url), ["a", "b"])
    assert isinstance(result, EmbedFailure)
    assert why in str(result)
    assert "\n" not in str(result)
    assert attempts and all(a.outcome == "failed" for a in attempts)
    assert all(a.failure_type == "invalid output" for a in attempts)


def test_a_timeout_is_a_one_line_failure(server: StandinModelServer) -> None:
    server.script_embeddings(*[Reply.slow(2.0, Reply.vectors_of([[1.0]]))] * 5)
    result, attempts = _embed(_settings(server.url, timeout=0.2), ["a"])
    assert isinstance(result, EmbedFailure)
    assert "no complete reply within the 0.2 s timeout" in str(result)
    assert {a.failure_type for a in attempts} == {"model timeout"}


def test_the_breaker_opens_and_then_no_request_is_sent(server: StandinModelServer) -> None:
    server.script_embeddings(*[Reply.error(500)] * 20)
    settings = _settings(server.url)

    async def go() -> tuple[list[Any], int]:
        embedders = embedders_from_settings(settings)
        outcomes: list[Any] = []
        try:
            for _ in range(3):
                try:
                    outcomes.append(await embedders[0].embed(["a"]))
                except EmbedFailure as exc:
                    outcomes.append(exc)
            return outcomes, len(server.embed_requests)
        finally:
            await close_embedders(embedders)

    outcomes, sent = asyncio.run(go())
    assert all(isinstance(o, EmbedFailure) for o in outcomes)
    assert sent == 3  # threshold 3: the first embed's tries opened it
    assert "circuit open" in str(outcomes[-1])


def test_a_missing_model_is_a_misconfiguration_with_its_fix(server: StandinModelServer) -> None:
    settings = _settings(server.url)
    settings.embeddings[0].model = "not-pulled"
    result, _ = _embed(settings, ["a"])
    assert isinstance(result, EmbedFailure)
    assert str(result).startswith(f"embedding endpoint vec ({server.url}) does not serve model")
    assert "ollama pull not-pulled" in str(result)
