"""The built-in embedding model as an embedding endpoint: an OpenAI-compatible
``/v1/embeddings`` whose server spanlens starts itself, on the first call, and shares with every
spanlens process (one engine per model, stopped when idle; see
:mod:`spanlens_lsp.localmodel.engine`).

Before each call the engine is found (or started, off the event loop), which also resets its
idle clock; the call itself goes through :class:`~.embeddings.EmbeddingBackend`, so replies
are checked and normalised like any endpoint's. ``settings.url`` follows the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses

from spanlens_lsp.enrichment.backends.base import (
    BackendFailure,
    CallResult,
    ChatRequest,
    FailureKind,
    ProbeResult,
)
from spanlens_lsp.enrichment.backends.capabilities import Capabilities
from spanlens_lsp.enrichment.backends.embeddings import (
    EmbeddingBackend,
    embedding_backend_settings,
)
from spanlens_lsp.localmodel.engine import EngineOptions, EngineUnavailable, ensure_engine
from spanlens_lsp.settings import EmbeddingSettings, LocalSettings

#: Context of the embedding engine's slot, in tokens (as measured by bench_retrieval; llama.cpp
#: caps it at the model's own, 512 for all-MiniLM-L6-v2: texts are cut to fit by the
#: embedder, at the catalog entry's ``max_text_chars``).
EMBEDDING_CONTEXT = 4096


class LocalEmbeddingBackend:
    """The built-in engine of one embedding model, started on first use."""

    def __init__(self, settings: EmbeddingSettings, local: LocalSettings | None = None) -> None:
        self.embedding = settings
        self.settings = embedding_backend_settings(settings)
        local = local or LocalSettings()
        self.options = EngineOptions(
            model=settings.model,
            idle_minutes=local.idle_minutes,
            threads=local.threads,
            context_tokens=EMBEDDING_CONTEXT,
        )
        self.capabilities = Capabilities(detected=True)
        self._inner: EmbeddingBackend | None = None
        self._lock = asyncio.Lock()

    async def _engine(self) -> EmbeddingBackend | BackendFailure:
        """The endpoint of the running engine (started if need be), or why there is none."""
        async with self._lock:
            try:
                state = await asyncio.to_thread(ensure_engine, self.options)
            except EngineUnavailable as exc:
                return BackendFailure(FailureKind.MISCONFIGURED, str(exc))
            if self._inner is None or self._inner.embedding.url != state.url:
                old = self._inner
                # What doctor shows and attempts record: the engine's address once it runs.
                self.settings = dataclasses.replace(self.settings, url=state.url)
                self._inner = EmbeddingBackend(
                    dataclasses.replace(self.embedding, provider="openai", url=state.url)
                )
                if old is not None:
                    await old.aclose()
            return self._inner

    async def embed(self, texts: list[str]) -> CallResult:
        """The vectors of ``texts`` from the engine, started first if it is not running."""
        inner = await self._engine()
        if isinstance(inner, BackendFailure):
            return inner
        return await inner.embed(texts)

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
        """Whether the engine can run: its model installed and its server answering."""
        inner = await self._engine()
        if isinstance(inner, BackendFailure):
            return ProbeResult(False, error=inner.detail)
        probe = await inner.probe(timeout)
        probe.model_present = True if probe.reachable else None  # it serves only its model
        return probe

    async def aclose(self) -> None:
        """Close the HTTP client (the engine stays up for other processes until idle)."""
        if self._inner is not None:
            await self._inner.aclose()
