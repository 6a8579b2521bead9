"""The built-in engine as a backend (provider ``local``): an OpenAI-compatible endpoint whose
server spanlens starts itself, on the first call, and shares with every spanlens process.

Before each call the engine is found (or started, off the event loop) through
:func:`spanlens_lsp.localmodel.engine.ensure_engine`, which also resets its idle clock; the call
itself goes through :class:`~.openai.OpenAIBackend`, so capabilities detection, slots, the
breaker and attempts treat it like any llama.cpp server. ``settings.url`` follows the engine.
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
from spanlens_lsp.enrichment.backends.openai import OpenAIBackend
from spanlens_lsp.localmodel.engine import EngineOptions, EngineUnavailable, ensure_engine
from spanlens_lsp.settings import BackendSettings, LocalSettings, Settings

#: The name of the built-in engine's backend when spanlens picks it.
BUILT_IN_NAME = "built-in"
#: Its URL before the engine has started (never called).
UNSTARTED_URL = "http://127.0.0.1:0"


def local_backend_settings(settings: Settings, tier: str = "small") -> BackendSettings:
    """The backend entry of the built-in engine with ``settings.local``'s model."""
    local = settings.local
    return BackendSettings(
        name=BUILT_IN_NAME,
        tier=tier,
        provider="local",
        url=UNSTARTED_URL,
        model=local.model,
        max_parallel=1,
        timeout=local.timeout,
        context_tokens=local.context_tokens,
        engine="llama.cpp",
    )


class LocalEngineBackend:
    """The built-in engine of one model, started on first use."""

    def __init__(self, settings: BackendSettings, local: LocalSettings | None = None) -> None:
        self.settings = settings
        local = local or LocalSettings()
        self.options = EngineOptions(
            model=settings.model,
            idle_minutes=local.idle_minutes,
            threads=local.threads,
            context_tokens=settings.context_tokens,
        )
        self._inner: OpenAIBackend | None = None
        self._lock = asyncio.Lock()
        #: Capabilities before the engine runs; the inner backend's afterwards.
        self._unstarted = Capabilities(context_per_slot=settings.context_tokens)

    @property
    def capabilities(self) -> Capabilities:
        """What the engine can do (detected once it runs)."""
        return self._inner.capabilities if self._inner is not None else self._unstarted

    async def _engine(self) -> OpenAIBackend | BackendFailure:
        """The backend of the running engine (started if need be), or why there is none."""
        async with self._lock:
            try:
                state = await asyncio.to_thread(ensure_engine, self.options)
            except EngineUnavailable as exc:
                return BackendFailure(FailureKind.MISCONFIGURED, str(exc))
            if self._inner is None or self._inner.settings.url != state.url:
                old = self._inner
                self.settings = dataclasses.replace(self.settings, url=state.url)
                # An engine built with llguidance is asked for compact JSON replies.
                self._inner = OpenAIBackend(
                    dataclasses.replace(self.settings, provider="openai"),
                    compact_grammar=state.grammar == "llguidance",
                )
                if old is not None:
                    self._inner.capabilities = old.capabilities
                    await old.aclose()
            return self._inner

    async def chat(self, request: ChatRequest) -> CallResult:
        """One call to the engine, started first if it is not running."""
        inner = await self._engine()
        if isinstance(inner, BackendFailure):
            return inner
        return await inner.chat(request)

    async def detect(self, timeout: float) -> Capabilities:
        """Detect the engine's capabilities (starting it)."""
        inner = await self._engine()
        if isinstance(inner, BackendFailure):
            return self.capabilities
        return await inner.detect(timeout)

    async def count_tokens(self, text: str, timeout: float) -> int | None:
        """Tokens of ``text`` by the engine's tokenizer (None before it runs)."""
        if self._inner is None:
            return None
        return await self._inner.count_tokens(text, timeout)

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
