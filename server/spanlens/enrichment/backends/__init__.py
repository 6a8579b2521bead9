"""Model backends: one module per provider, each implementing :class:`Backend`.

All HTTP spanlens does lives under this package. A backend never raises for a model or network
problem: :meth:`Backend.chat` returns either a :class:`ChatReply` or a :class:`BackendFailure`
whose :class:`FailureKind` the cascade reasons about (retry, fail over, escalate, open the
breaker).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from spanlens.enrichment.backends.base import Backend, BackendFailure, ChatRequest
from spanlens.enrichment.backends.urls import display_url, endpoint_secrets, scrub
from spanlens.settings import BackendSettings, LocalSettings

__all__ = ["PROVIDERS", "Provider", "create_backend", "probe_backends", "provider_for"]


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
        "spanlens.enrichment.backends.ollama:OllamaBackend",
        "start Ollama (`ollama serve`)",
        "run `ollama pull {model}`",
    ),
    "openai": Provider(
        "openai",
        "spanlens.enrichment.backends.openai:OpenAIBackend",
        "start the server",
        "set backends.model to a model the server lists",
    ),
    "local": Provider(
        "local",
        "spanlens.enrichment.backends.local:LocalEngineBackend",
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


#: Doctor's tiny structured-output request: one enum answer, a few tokens.
_CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["answer"],
    "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
}
_CHECK_MESSAGES = [
    {"role": "user", "content": 'Is 2 greater than 1? Reply with JSON: {"answer": "yes"} or no.'}
]


async def output_check(backend: Backend, timeout: float) -> dict[str, Any]:
    """Detect the endpoint's capabilities, then ask one tiny structured-output question: the
    form found, the context per slot, and whether the reply came back valid JSON."""
    await backend.detect(timeout)
    reply = await backend.chat(ChatRequest(_CHECK_MESSAGES, _CHECK_SCHEMA, 16, "spanlens_check"))
    ok, detail = False, ""
    if isinstance(reply, BackendFailure):
        detail = reply.kind.value
    else:
        try:
            value = json.loads(reply.text)
            ok = isinstance(value, dict) and value.get("answer") in ("yes", "no")
            detail = "valid" if ok else "reply does not follow the schema"
        except ValueError:
            detail = "reply is not JSON"
    caps = backend.capabilities
    caps.replies_valid = ok
    return {"ok": ok, "detail": detail, **caps.as_json()}


async def probe_backends(
    backends: list[Backend], timeout: float, *, check_output: bool = False
) -> list[dict[str, Any]]:
    """Probe each backend at once; one JSON-ready dict each, its URL and error scrubbed.
    ``check_output`` adds :func:`output_check` for each endpoint that serves its model."""
    results = await asyncio.gather(*(b.probe(timeout) for b in backends))
    checks: list[dict[str, Any] | None] = [None] * len(backends)
    if check_output:
        wanted = [
            i
            for i, r in enumerate(results)
            if r.reachable and not r.error and r.model_present is not False
        ]
        done = await asyncio.gather(
            *(output_check(backends[i], max(timeout, 30.0)) for i in wanted)
        )
        for i, check in zip(wanted, done, strict=True):
            checks[i] = check
    return [
        {
            "name": b.settings.name,
            "tier": b.settings.tier,
            "provider": b.settings.provider,
            "url": display_url(b.settings.url),
            "model": b.settings.model,
            "remote": b.settings.is_remote,
            "reachable": result.reachable,
            "model_present": result.model_present,
            "models": result.models,
            "error": scrub(result.error, endpoint_secrets(b.settings)) if result.error else None,
            **({"output_check": check} if check is not None else {}),
        }
        for b, result, check in zip(backends, results, checks, strict=True)
    ]
