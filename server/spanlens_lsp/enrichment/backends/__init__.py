"""Model backends: one module per provider, each implementing :class:`Backend`.

All HTTP spanlens does lives under this package. A backend never raises for a model or network
problem: :meth:`Backend.chat` returns either a :class:`ChatReply` or a :class:`BackendFailure`
whose :class:`FailureKind` the cascade reasons about (retry, fail over, escalate, open the
breaker).
"""

from __future__ import annotations

from dataclasses import dataclass

from spanlens_lsp.enrichment.backends.base import Backend
from spanlens_lsp.settings import BackendSettings, LocalSettings

__all__ = ["PROVIDERS", "Provider", "create_backend", "provider_for"]


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider: where its backend class lives, and the fixes its users are told."""

    name: str
    #: "module:Class" of its :class:`Backend`, imported when first used.
    backend: str
    #: How to start a server of this provider (for an unreachable endpoint).
    start_hint: str
    #: How to make a model available; ``{model}`` is the configured model.
    model_hint: str

    def start_fix(self) -> str:
        """The fix for an unreachable endpoint."""
        return self.start_hint

    def model_fix(self, model: str) -> str:
        """The fix for an endpoint that does not serve ``model``."""
        return self.model_hint.format(model=model)


#: Every provider spanlens speaks, by the name ``backends.provider`` takes.
PROVIDERS: dict[str, Provider] = {
    "ollama": Provider(
        "ollama",
        "spanlens_lsp.enrichment.backends.ollama:OllamaBackend",
        "start Ollama (`ollama serve`)",
        "run `ollama pull {model}`",
    ),
    "openai": Provider(
        "openai",
        "spanlens_lsp.enrichment.backends.openai:OpenAIBackend",
        "start the server",
        "set backends.model to a model the server lists",
    ),
    "local": Provider(
        "local",
        "spanlens_lsp.enrichment.backends.local:LocalEngineBackend",
        "see `spanlens doctor` for the built-in engine",
        "run `spanlens model install {model}`",
    ),
}


def provider_for(name: str) -> Provider:
    """The registry entry of provider ``name`` (config validation allows only known names)."""
    return PROVIDERS.get(name, PROVIDERS["ollama"])


def create_backend(settings: BackendSettings, local: LocalSettings | None = None) -> Backend:
    """The backend for ``settings.provider``, from :data:`PROVIDERS`; the built-in engine's
    (provider ``local``) runs as ``local`` says (idle period, threads)."""
    import importlib

    module, _, cls = provider_for(settings.provider).backend.partition(":")
    factory = getattr(importlib.import_module(module), cls)
    args = (settings, local) if settings.provider == "local" else (settings,)
    backend: Backend = factory(*args)
    return backend
