"""The enrich pre-flight and doctor's probe: is each endpoint reachable and serving its model,
and what to fix if not.

The probes go through the endpoints the command built once (their HTTP clients and health),
never through clients of their own: an endpoint whose breaker is open or that cools down is
reported as it is, without a new connection; an unreachable one counts toward its breaker as
a span call's connection failure would; doctor's structured-output question is one call of
the :class:`~spanlens_lsp.enrichment.call.path.CallPath` (slot, breaker, GPU gate, attempt record).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from spanlens_lsp.enrichment.backends import provider_for
from spanlens_lsp.enrichment.backends.base import (
    BackendFailure,
    CallResult,
    ChatRequest,
    FailureKind,
    ProbeResult,
)
from spanlens_lsp.enrichment.call.endpoints import Endpoint, identity_of, scrub_for, update_health
from spanlens_lsp.enrichment.call.path import CallPath, CallRequest, Verdict

PREFLIGHT_TIMEOUT = 2.0

#: What an endpoint's last failure says about reaching it: no answer at all (or none yet).
UNREACHABLE = (
    FailureKind.CONNECTION_REFUSED,
    FailureKind.TIMEOUT,
    FailureKind.CONNECTION_LOST,
    None,
)

#: Doctor's tiny structured-output request: one enum answer, a few tokens.
CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["answer"],
    "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
}
CHECK_MESSAGES = [
    {"role": "user", "content": 'Is 2 greater than 1? Reply with JSON: {"answer": "yes"} or no.'}
]


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
    calls: CallPath, timeout: float = PREFLIGHT_TIMEOUT, check_output: bool = False
) -> list[dict[str, Any]]:
    """Probe every endpoint of ``calls`` at once (nothing is written); one JSON-ready dict per
    endpoint, its URL and error scrubbed. ``check_output`` also asks each endpoint that serves
    its model doctor's tiny structured-output question (``output_check``)."""
    probes = (probe_endpoint(calls, ep, timeout, check_output) for ep in calls.all_endpoints())
    return list(await asyncio.gather(*probes))


async def probe_endpoint(
    calls: CallPath, endpoint: Endpoint, timeout: float, check_output: bool = False
) -> dict[str, Any]:
    """One endpoint's probe through its own client, respecting and recording its health."""
    now = calls.clock()
    if endpoint.usable(now):
        result = await endpoint.backend.probe(timeout)
        if not result.reachable:
            kind = FailureKind.TIMEOUT if "Timeout" in (result.error or "") else None
            failure = BackendFailure(kind or FailureKind.CONNECTION_REFUSED, result.error or "")
            update_health(endpoint, failure, calls.clock(), calls.settings.backoff_base)
    else:
        # Its breaker is open or it cools down: what the span calls know, without a new
        # connection that would only hammer it.
        why = endpoint.blocked_reason(now)
        if endpoint.last_error:
            why += f"; last error {endpoint.last_error}"
        result = ProbeResult(endpoint.last_failure not in UNREACHABLE, error=why)
    check = None
    if check_output and result.reachable and not result.error and result.model_present is not False:
        check = await output_check(calls, endpoint, max(timeout, 30.0))
    return {
        **identity_of(endpoint),
        "reachable": result.reachable,
        "model_present": result.model_present,
        "models": result.models,
        "error": scrub_for(endpoint, result.error) if result.error else None,
        **({"output_check": check} if check is not None else {}),
    }


async def output_check(calls: CallPath, endpoint: Endpoint, timeout: float) -> dict[str, Any]:
    """Detect the endpoint's capabilities, then ask one tiny structured-output question
    through the call path: the form found, the context per slot, and whether the reply came
    back valid JSON."""
    await endpoint.detect(timeout)
    request: CallRequest[bool] = CallRequest(
        ChatRequest(CHECK_MESSAGES, CHECK_SCHEMA, 16, "spanlens_check"), judge_check
    )
    verdict = await calls.call(endpoint, endpoint.settings.tier, request)
    if verdict is None:
        ok, detail = False, endpoint.blocked_reason(calls.clock())
    else:
        ok, detail = verdict.value, verdict.detail or "valid"
    caps = endpoint.capabilities
    caps.replies_valid = ok
    return {"ok": ok, "detail": detail, **caps.as_json()}


def judge_check(reply: CallResult) -> Verdict[bool]:
    """Whether doctor's question came back as JSON that follows its schema."""
    if isinstance(reply, BackendFailure):
        return Verdict(False, reply, "failed", reply.kind.value, reply.kind.value)
    try:
        value = json.loads(reply.text)
    except ValueError:
        detail = "reply is not JSON"
    else:
        if isinstance(value, dict) and value.get("answer") in ("yes", "no"):
            return Verdict(True, None)
        detail = "reply does not follow the schema"
    failure = BackendFailure(FailureKind.INVALID_OUTPUT, detail)
    return Verdict(False, failure, "failed", FailureKind.INVALID_OUTPUT.value, detail)


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
