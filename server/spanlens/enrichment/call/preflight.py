"""The enrich pre-flight: is a backend reachable and serving its model, and what to fix if not."""

from __future__ import annotations

import asyncio
from typing import Any

from spanlens.enrichment.backends import create_backend, probe_backends, provider_for
from spanlens.settings import Settings

PREFLIGHT_TIMEOUT = 2.0


CONFIG_EXAMPLE = """\
  # spanlens.toml at the workspace root
  [[backends]]
  name = "local"
  tier = "small"
  provider = "ollama"            # or "openai" for llama.cpp, vLLM, LM Studio, LiteLLM
  url = "http://127.0.0.1:11434"
  model = "qwen2.5-coder:7b"

or set SPANLENS_BACKENDS='[{"name": "local", "tier": "small", "provider": "ollama", \
"url": "http://127.0.0.1:11434", "model": "qwen2.5-coder:7b"}]'"""


async def preflight(
    settings: Settings, timeout: float = PREFLIGHT_TIMEOUT, check_output: bool = False
) -> list[dict[str, Any]]:
    """Probe every configured backend (nothing is opened or written); one dict per backend.
    ``check_output`` also makes doctor's tiny structured-output request to each."""
    backends = [create_backend(b, settings.local) for b in settings.backends]
    try:
        return await probe_backends(backends, timeout, check_output=check_output)
    finally:
        await asyncio.gather(*(b.aclose() for b in backends), return_exceptions=True)


def refusal_message(probes: list[dict[str, Any]]) -> str:
    """Why `spanlens enrich` will not run: what was tried, and how to configure a backend."""
    if not probes:
        tried = "no backend is configured"
    else:
        tried = "tried " + "; ".join(
            f"{p['name']} ({p['provider']}, tier {p['tier']}) at {p['url']}: "
            f"{_short_error(p['error'])}"
            for p in probes
        )
    return (
        f"no model backend is reachable ({tried}). Nothing was enriched or written. "
        "Start one (for Ollama: `ollama serve` then `ollama pull qwen2.5-coder:7b`) or point "
        f"spanlens at one:\n{CONFIG_EXAMPLE}"
    )


def serves_model(probe: dict[str, Any]) -> bool:
    """Whether a probed backend answered, without error, and serves its model."""
    return bool(probe["reachable"]) and not probe["error"] and probe["model_present"] is not False


def unusable_message(probes: list[dict[str, Any]]) -> str:
    """Why `spanlens enrich` will not run although a backend answers: one line per backend
    with its fix."""
    lines = [fix_for(p) for p in probes]
    return "no model backend can serve its model; nothing was enriched or written:\n" + "\n".join(
        f"  - {line}" for line in lines
    )


def fix_for(probe: dict[str, Any]) -> str:
    """One backend's problem and how to fix it (for a backend that does not serve)."""
    where = f"backend {probe['name']} ({probe['provider']}) at {probe['url']}"
    if not probe["reachable"]:
        start = provider_for(probe["provider"]).start_fix()
        return f"{where} is unreachable — {start} or correct backends.url"
    error = probe["error"]
    if error:
        if "api_key_env" in error:
            return f"{where}: {error} — export it before running spanlens"
        if "api key" in error.lower():
            return f"{where}: {error} — set a valid key in the variable named by api_key_env"
        return f"{where}: {error} — check the server and backends.url"
    fix = provider_for(probe["provider"]).model_fix(probe["model"])
    if probe["provider"] == "ollama":
        fix += " or set backends.model"
    return f"{where} does not serve model {probe['model']} — {fix}"


def _short_error(error: str | None) -> str:
    if not error:
        return "no answer"
    lowered = error.lower()
    if "connect" in lowered:
        return "connection refused"
    if "timeout" in lowered:
        return "timed out"
    return error[:80]
