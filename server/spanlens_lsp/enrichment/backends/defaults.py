"""What enriches when the user configured no backend."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from spanlens_lsp.enrichment.backends import create_backend
from spanlens_lsp.enrichment.backends.local import local_backend_settings
from spanlens_lsp.localmodel.engine import INSTALL_HINT, LOCAL_EXTRA_HINT, engine_installed
from spanlens_lsp.localmodel.paths import installed_model_path
from spanlens_lsp.settings import BackendSettings, Settings

log = logging.getLogger(__name__)

#: Seconds the Ollama probe may take: the answer of a server on this machine, or nothing.
OLLAMA_PROBE_TIMEOUT = 0.5

#: The one message of a workspace with no model at all.
FACTS_ONLY_NOTE = (
    "no model to enrich with: showing the parser's facts only. Install the built-in model: "
    + INSTALL_HINT
    + "; or start Ollama with qwen2.5-coder:7b, or configure [[backends]]"
)


async def resolve_default_backends(
    settings: Settings,
    *,
    ollama: BackendSettings | None = None,
    ollama_timeout: float = OLLAMA_PROBE_TIMEOUT,
) -> Settings:
    """``settings`` with the backends spanlens picks when the user configured none.

    Configured backends always win (and ``backends = []`` stays facts only). Otherwise, in
    order: Ollama at its default address, if it answers and serves its default model
    (probed with a short timeout, without blocking the event loop); else the built-in engine,
    if its model (``[local] model``) is installed — it is only started by the first model
    call, and enriches one span a call unless ``enrichment.batch`` is set; else no backend,
    with one note saying how to install the model. Returns a copy;
    ``settings`` is not changed. ``ollama`` replaces the default Ollama backend (tests).
    """
    if settings.backends_configured:
        return settings
    ollama = ollama or BackendSettings()
    backend = create_backend(ollama)
    try:
        probe = await backend.probe(ollama_timeout)
    finally:
        await backend.aclose()
    if probe.reachable and probe.model_present:
        return dataclasses.replace(settings, backends=[ollama])
    try:
        installed = await asyncio.to_thread(installed_model_path, settings.local.model)
    except ValueError as exc:  # an unknown [local] model
        return _facts_only(settings, f"[local] model: {exc}")
    if installed is not None and not await asyncio.to_thread(engine_installed):
        return _facts_only(
            settings, f"the built-in model is installed but not its engine: {LOCAL_EXTRA_HINT}"
        )
    if installed is not None:
        tier = settings.enrichment.tiers[0] if settings.enrichment.tiers else "small"
        # One span a call unless the user asked for batches: measured with the default model
        # (bench_quality, issue 16), 2 of 30 batched spans were stored against 27 of 47
        # single calls, and its prompt cache makes a single call's shared prefix nearly free.
        enrichment = settings.enrichment
        if not settings.batch_configured:
            enrichment = dataclasses.replace(enrichment, batch=False)
        return dataclasses.replace(
            settings, backends=[local_backend_settings(settings, tier)], enrichment=enrichment
        )
    return _facts_only(settings, FACTS_ONLY_NOTE)


def _facts_only(settings: Settings, note: str) -> Settings:
    return dataclasses.replace(settings, backends=[], notes=[*settings.notes, note])


def backend_source(settings: Settings) -> str:
    """Where the backends in force came from: ``configured`` (by the user), ``ollama`` or
    ``built-in`` (picked by :func:`resolve_default_backends`), or ``none`` (facts only,
    nothing installed: the editor can offer to set up the local model)."""
    if settings.backends_configured:
        return "configured"
    if not settings.backends:
        return "none"
    return "built-in" if settings.backends[0].provider == "local" else "ollama"
