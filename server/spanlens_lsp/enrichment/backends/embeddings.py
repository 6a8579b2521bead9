"""Embedding endpoints on the wire: Ollama's ``/api/embed`` and OpenAI-compatible
``/v1/embeddings`` (llama.cpp ``--embedding``, vLLM, LiteLLM, hosted APIs).

An :class:`EmbeddingBackend` is a :class:`~spanlens_lsp.enrichment.backends.base.Backend`, so the
call path gives it what every model call gets (slots, breaker, retries, an attempts row);
:meth:`EmbeddingBackend.embed` is its one call. A reply is checked before anyone sees it: one
vector per text, every one of the same length, finite and not all zero; the vectors come back
L2-normalised. A reply that fails a check is an invalid output, never a vector.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from spanlens_lsp.enrichment.backends.base import (
    BackendFailure,
    CallResult,
    ChatReply,
    ChatRequest,
    FailureKind,
    ProbeResult,
)
from spanlens_lsp.enrichment.backends.capabilities import Capabilities
from spanlens_lsp.enrichment.backends.http import (
    as_dict,
    bearer_headers,
    body_failure,
    list_models,
    make_client,
    post_json,
    token_count,
)
from spanlens_lsp.settings import BackendSettings, EmbeddingSettings
from spanlens_lsp.states import EMBED_TIER


@dataclass(frozen=True, slots=True)
class EmbeddingReply(ChatReply):
    """A completed embedding call: one L2-normalised vector per text (``text`` is empty)."""

    vectors: list[list[float]]


def embedding_backend_settings(settings: EmbeddingSettings) -> BackendSettings:
    """The endpoint as the call path reads every endpoint (name, URL, key, limits), on the
    ``embed`` tier."""
    return BackendSettings(
        name=settings.name,
        tier=EMBED_TIER,
        provider=settings.provider,
        url=settings.url,
        model=settings.model,
        max_parallel=settings.max_parallel,
        timeout=settings.timeout,
        api_key_env=settings.api_key_env,
        remote=settings.remote,
    )


class EmbeddingBackend:
    """One embedding endpoint and model, Ollama or OpenAI-compatible (``provider``)."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.embedding = settings
        self.settings = embedding_backend_settings(settings)
        self._client = make_client(self.settings)
        self._ollama = settings.provider == "ollama"
        path = urlparse(settings.url).path.rstrip("/")
        self._prefix = "" if path.endswith("/v1") else "/v1"
        self.capabilities = Capabilities(detected=True)

    async def embed(self, texts: list[str]) -> CallResult:
        """POST ``texts`` and return their vectors (an :class:`EmbeddingReply`), or the typed
        failure; never raises for network or model problems."""
        headers, missing = self._headers()
        if missing:
            return BackendFailure(FailureKind.MISCONFIGURED, missing)
        path = "/api/embed" if self._ollama else f"{self._prefix}/embeddings"
        payload = {"model": self.settings.model, "input": texts}
        posted = await post_json(
            self._client,
            path,
            payload,
            headers,
            deadline=self.settings.timeout,
            decode_in_thread=True,
        )
        if isinstance(posted, BackendFailure):
            return posted
        body, started = posted
        elapsed = (time.perf_counter() - started) * 1000
        try:
            # Checked off the event loop too: the numbers of a batch, in numpy.
            return await asyncio.to_thread(self._reply, body, len(texts), elapsed)
        except Exception as exc:  # a reply must never crash the caller
            return BackendFailure(
                FailureKind.INVALID_OUTPUT,
                f"unreadable reply ({type(exc).__name__})",
                status=200,
                duration_ms=elapsed,
            )

    def _reply(self, body: Any, count: int, elapsed: float) -> CallResult:
        failure = body_failure(body, elapsed)
        if failure is not None:
            return failure
        if self._ollama:
            tokens = token_count(body.get("prompt_eval_count"))
            raw = body.get("embeddings")
        else:
            tokens = token_count(as_dict(body.get("usage")).get("prompt_tokens"))
            raw = _openai_vectors(body.get("data"))
        vectors = normalised_vectors(raw, count)
        if isinstance(vectors, str):
            return BackendFailure(
                FailureKind.INVALID_OUTPUT,
                vectors,
                status=200,
                tokens_in=tokens,
                duration_ms=elapsed,
            )
        return EmbeddingReply("", tokens, 0, elapsed, vectors)

    async def chat(self, request: ChatRequest) -> CallResult:
        """An embedding endpoint answers no chat: a backend error (never called so)."""
        return BackendFailure(FailureKind.BACKEND_ERROR, "an embedding endpoint does not chat")

    async def detect(self, timeout: float) -> Capabilities:
        """Nothing to detect: vectors have no output form or slots to learn."""
        return self.capabilities

    async def count_tokens(self, text: str, timeout: float) -> int | None:
        """No tokenizer is asked: None."""
        return None

    async def probe(self, timeout: float) -> ProbeResult:
        """The server's model list: reachable, and does it serve the model?"""
        headers, missing = self._headers()
        if self._ollama:
            models = await list_models(self._client, "/api/tags", "models", "name", timeout)
        else:
            models = await list_models(
                self._client, f"{self._prefix}/models", "data", "id", timeout, headers, missing
            )
        if isinstance(models, ProbeResult):
            return models
        wanted = self.settings.model
        present = wanted in models or f"{wanted}:latest" in models
        return ProbeResult(True, model_present=present, models=models)

    def _headers(self) -> tuple[dict[str, str], str | None]:
        return bearer_headers(self.settings.api_key_env)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _openai_vectors(data: Any) -> Any:
    """The ``embedding`` of each ``data`` entry in ``index`` order (None if it has no shape)."""
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        return None
    indexes = [item.get("index", position) for position, item in enumerate(data)]
    if sorted(indexes) != list(range(len(data))):
        return None
    ordered = sorted(zip(indexes, data, strict=True), key=lambda pair: pair[0])
    return [item.get("embedding") for _, item in ordered]


def normalised_vectors(raw: Any, count: int) -> list[list[float]] | str:
    """``raw`` as ``count`` L2-normalised vectors of one length, or what is wrong with it.

    Checked and normalised in numpy: a reply of 64 vectors of 768 numbers is 49,152 values,
    and a run embeds the whole workspace. Imported here, at the first reply: ~90 ms that
    server start need not pay."""
    import numpy

    if not isinstance(raw, list):
        return "reply has no embeddings"
    if len(raw) != count:
        return f"reply has {len(raw)} vectors for {count} texts"
    if not all(isinstance(vector, list) and vector for vector in raw):
        return "reply has a vector that is not a list of numbers"
    lengths = list(dict.fromkeys(len(vector) for vector in raw))
    if len(lengths) > 1:
        return f"reply mixes vectors of {lengths[0]} and {lengths[1]} dimensions"
    # JSON numbers only: a string or a boolean is no coordinate, whatever numpy makes of it.
    if not set(map(type, itertools.chain.from_iterable(raw))) <= {int, float}:
        return "reply has a vector that is not a list of numbers"
    try:
        array = numpy.array(raw, dtype=numpy.float64)
    except (OverflowError, ValueError):
        array = numpy.array([[numpy.inf]])
    if not numpy.isfinite(array).all():
        return "reply has a vector with a value that is not a finite number"
    with numpy.errstate(over="ignore"):  # an overflowing length is refused just below
        norms = numpy.linalg.norm(array, axis=1)
    if not (numpy.isfinite(norms).all() and (norms > 0).all()):
        return "reply has a vector of zero or unbounded length"
    vectors: list[list[float]] = (array / norms[:, None]).tolist()
    return vectors
