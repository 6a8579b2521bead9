"""Embedders: the configured embedding endpoints (``[[embeddings]]``), each called through the
one call path, so an embedding call has what every model call has: the endpoint's slots
(``max_parallel``), its circuit breaker, the retry policy of ``[enrichment]`` and an
``attempts`` row (tier ``embed``) that `spanlens status` and `spanlens stats` count.

The search side asks ``embedders_from_settings(settings)[0].embed([query])`` for a query's
vector; the embedding run (:mod:`spanlens_lsp.embedding.run`) for spans' vectors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spanlens_lsp.embedding.builtin import embedding_endpoints
from spanlens_lsp.enrichment.backends.base import Backend, BackendFailure, CallResult, FailureKind
from spanlens_lsp.enrichment.backends.embeddings import EmbeddingBackend, EmbeddingReply
from spanlens_lsp.enrichment.backends.local_embeddings import LocalEmbeddingBackend
from spanlens_lsp.enrichment.call.endpoints import (
    Breaker,
    Endpoint,
    GpuProbe,
    close_endpoints,
    identity_of,
    scrub_for,
)
from spanlens_lsp.enrichment.call.path import Asked, CallPath, CallRequest, Recorder, Verdict
from spanlens_lsp.enrichment.call.retry import Step
from spanlens_lsp.settings import EmbeddingSettings, Settings
from spanlens_lsp.states import EMBED_TIER
from spanlens_lsp.store.enrichments import Attempt

__all__ = [
    "EmbedFailure",
    "EmbedResult",
    "Embedder",
    "check_embedder",
    "close_embedders",
    "embedders_from_settings",
]

Vectors = list[list[float]]


@dataclass(slots=True, frozen=True)
class EmbedResult:
    """The vectors of one :meth:`Embedder.embed`: one per text, L2-normalised, in order."""

    vectors: Vectors
    #: Input tokens the endpoint reported (0 when it reports none).
    tokens: int
    duration_ms: float


class EmbedFailure(Exception):
    """No vectors came back (endpoint down, breaker open, invalid replies); the message is
    one line for the user."""

    def __init__(self, message: str, kind: FailureKind | None = None) -> None:
        super().__init__(message)
        #: How the last call failed (None when no call was made: breaker open, no slot).
        self.kind = kind

    @property
    def input_refused(self) -> bool:
        """Whether the endpoint refused what it was sent (a text longer than its model's
        context, or another HTTP 4xx of the request), not the endpoint's own trouble: one
        text of a batch may be the cause."""
        return self.kind in (FailureKind.CONTEXT_OVERFLOW, FailureKind.CLIENT_ERROR)

    @property
    def too_long(self) -> bool:
        """Whether the endpoint said a text is longer than its model's context."""
        return self.kind is FailureKind.CONTEXT_OVERFLOW


class Embedder:
    """One embedding endpoint and model, called through a :class:`CallPath`."""

    def __init__(self, settings: EmbeddingSettings, calls: CallPath, endpoint: Endpoint) -> None:
        self.settings = settings
        self.calls = calls
        self.endpoint = endpoint

    @property
    def name(self) -> str:
        """The endpoint's name (``embeddings.name``)."""
        return self.settings.name

    @property
    def model(self) -> str:
        """The embedding model: it keys the stored vectors."""
        return self.settings.model

    @property
    def remote(self) -> bool:
        """Whether texts leave this machine (then ignored and secret-looking files' spans are
        never sent)."""
        return self.settings.is_remote

    @property
    def batch_size(self) -> int:
        """Texts sent in one request."""
        return self.settings.batch_size

    async def embed(self, texts: list[str], span_hashes: Sequence[str] = ()) -> EmbedResult:
        """The vectors of ``texts``, each cut at the endpoint's ``max_chars``, in one request
        (retried as the policy says); raises :class:`EmbedFailure`. ``span_hashes`` (the
        spans the texts are of) go in the attempts row."""
        if not texts:
            return EmbedResult([], 0, 0.0)
        # A text says what it is about first (kind and name, summary, signature, then
        # docstring): what is cut is the tail.
        batch = [text[: self.settings.max_chars] for text in texts]

        async def send(backend: Backend) -> CallResult:
            if not isinstance(backend, EmbeddingBackend | LocalEmbeddingBackend):
                raise TypeError("an embedding request reached a chat backend")
            return await backend.embed(batch)

        request: CallRequest[EmbeddingReply | None] = CallRequest(
            None, judge_vectors, span_hashes=tuple(span_hashes), send=send
        )
        asked: Asked[EmbeddingReply | None] = Asked()
        step = await self.calls.ask_tier(EMBED_TIER, [self.endpoint], request, asked)
        reply = asked.verdict.value if asked.verdict is not None else None
        if step is Step.DONE and reply is not None:
            return EmbedResult(reply.vectors, reply.tokens_in, reply.duration_ms)
        failure = asked.verdict.failure if asked.verdict is not None else None
        raise EmbedFailure(self._why(asked), failure.kind if failure is not None else None)

    def _why(self, asked: Asked[EmbeddingReply | None]) -> str:
        where = f"embedding endpoint {self.name} ({self.endpoint.display_url})"
        if asked.reasons:
            # The call path names an endpoint "backend NAME ...": this one embeds.
            reason = asked.reasons[-1]
            if reason.startswith(f"backend {self.name} "):
                return "embedding endpoint" + reason.removeprefix("backend")
            return f"{where}: {reason}"
        if asked.verdict is not None and asked.verdict.failure is not None:
            return f"{where}: {asked.verdict.detail or asked.verdict.failure.kind.value}"
        return f"{where}: {self.endpoint.blocked_reason(self.calls.clock())}"

    async def aclose(self) -> None:
        """Close the endpoint's HTTP client."""
        await close_endpoints([self.endpoint])


def judge_vectors(reply: CallResult) -> Verdict[EmbeddingReply | None]:
    """An embedding reply (its vectors checked and normalised by the backend), or why not."""
    if not isinstance(reply, EmbeddingReply):
        failure = (
            reply
            if isinstance(reply, BackendFailure)
            else BackendFailure(FailureKind.INVALID_OUTPUT, "reply carries no vectors")
        )
        return Verdict(None, failure, "failed", failure.kind.value, failure.detail)
    return Verdict(reply, None)


async def _record_nothing(attempt: Attempt) -> None:
    """Calls made without a recorder (a search query's vector) leave no attempts row."""


def embedders_from_settings(
    settings: Settings, record: Recorder | None = None, *, gpu: GpuProbe | None = None
) -> list[Embedder]:
    """One :class:`Embedder` per embedding endpoint in force: each ``[[embeddings]]`` entry,
    or the built-in model when none is configured and it is installed
    (:func:`~spanlens_lsp.embedding.builtin.embedding_endpoints`); ``[]`` without any: search
    by keywords only. Each call is recorded through ``record`` (an ``attempts`` row; None
    records nothing). Close them with :func:`close_embedders`."""
    entries = embedding_endpoints(settings)
    if not entries:
        return []
    enrichment = settings.enrichment
    endpoints = {
        EMBED_TIER: [
            Endpoint(
                _backend(entry, settings),
                Breaker(enrichment.breaker_threshold, enrichment.breaker_reset),
                asyncio.Semaphore(entry.max_parallel),
            )
            for entry in entries
        ]
    }
    calls = CallPath(
        endpoints,
        enrichment,
        record or _record_nothing,
        gpu=gpu,
        gpu_settings=settings.gpu,
    )
    return [
        Embedder(entry, calls, endpoint)
        for entry, endpoint in zip(entries, endpoints[EMBED_TIER], strict=True)
    ]


def _backend(entry: EmbeddingSettings, settings: Settings) -> Backend:
    """The backend of one endpoint: the built-in engine's (provider ``local``), else HTTP."""
    if entry.provider == "local":
        return LocalEmbeddingBackend(entry, settings.local)
    return EmbeddingBackend(entry)


async def check_embedder(embedder: Embedder, timeout: float = 10.0) -> dict[str, Any]:
    """`spanlens doctor`'s check of one embedding endpoint: reachable, its model listed, and
    one text embedded (``dims``, or the ``error`` that says why not)."""
    endpoint = embedder.endpoint
    probe = await endpoint.backend.probe(min(timeout, embedder.settings.timeout))
    entry = {
        **identity_of(endpoint),
        "reachable": probe.reachable,
        "model_present": probe.model_present,
        "dims": None,
        "error": scrub_for(endpoint, probe.error) if probe.error else None,
    }
    if probe.reachable and entry["error"] is None:
        # The model list may name a file, not the model (llama.cpp): the embedding decides.
        try:
            result = await embedder.embed(["spanlens doctor"])
        except EmbedFailure as exc:
            entry["error"] = str(exc)
        else:
            entry["dims"] = len(result.vectors[0])
    return entry


async def close_embedders(embedders: Sequence[Embedder]) -> None:
    """Close every embedder's HTTP client."""
    await close_endpoints([embedder.endpoint for embedder in embedders])
