"""OpenAI-compatible servers: ``/v1/chat/completions`` with ``response_format``; ``/v1/models``.

Covers llama.cpp server, vLLM, LM Studio, a LiteLLM proxy and hosted APIs. The reply format
asked for is ``json_schema``; a server that refuses it gets ``json_object`` from then on (the
choice is remembered for the life of the endpoint). The API key is read from the environment
variable the config names, at call time; it is sent as a header and never logged or stored.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlparse

from spanlens.config import BackendSettings
from spanlens.enrichment.backends import (
    BackendFailure,
    CallResult,
    ChatReply,
    ChatRequest,
    FailureKind,
    ProbeResult,
    as_dict,
    body_failure,
    list_models,
    make_client,
    post_json,
    token_count,
)


class OpenAIBackend:
    """One OpenAI-compatible endpoint and model."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self._client = make_client(settings)
        path = urlparse(settings.url).path.rstrip("/")
        self._prefix = "" if path.endswith("/v1") else "/v1"
        #: Set once the server refuses ``json_schema``; later calls ask for ``json_object``.
        self.json_object_only = False

    async def chat(self, request: ChatRequest) -> CallResult:
        """POST /v1/chat/completions and type the outcome."""
        headers, missing = self._headers()
        if missing:
            return BackendFailure(FailureKind.MISCONFIGURED, missing)
        json_object = self.json_object_only
        result = await self._post(request, headers, json_object)
        if (
            not json_object
            and isinstance(result, BackendFailure)
            and result.kind is FailureKind.CLIENT_ERROR
            and _refuses_json_schema(result.detail)
        ):
            self.json_object_only = True
            result = await self._post(request, headers, json_object=True)
        return result

    async def _post(
        self, request: ChatRequest, headers: dict[str, str], json_object: bool
    ) -> CallResult:
        posted = await post_json(
            self._client,
            f"{self._prefix}/chat/completions",
            self._payload(request, json_object),
            headers,
            deadline=self.settings.timeout,
        )
        if isinstance(posted, BackendFailure):
            return posted
        return _reply(*posted)

    def _payload(self, request: ChatRequest, json_object: bool) -> dict[str, Any]:
        if json_object:
            response_format: dict[str, Any] = {"type": "json_object"}
        else:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.schema},
            }
        return {
            "model": self.settings.model,
            "messages": request.messages,
            "temperature": self.settings.temperature,
            "max_tokens": request.max_tokens,
            "response_format": response_format,
            "stream": False,
        }

    def _headers(self) -> tuple[dict[str, str], str | None]:
        name = self.settings.api_key_env
        if not name:
            return {}, None
        key = os.environ.get(name)
        if not key:
            return {}, f"environment variable {name} (api_key_env) is not set"
        return {"Authorization": f"Bearer {key}"}, None

    async def probe(self, timeout: float) -> ProbeResult:
        """GET /v1/models: reachable, and is the model served?"""
        headers, missing = self._headers()
        models = await list_models(
            self._client, f"{self._prefix}/models", "data", "id", timeout, headers, missing
        )
        if isinstance(models, ProbeResult):
            return models
        return ProbeResult(True, model_present=self.settings.model in models, models=models)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _refuses_json_schema(detail: str) -> bool:
    lowered = detail.lower()
    return "response_format" in lowered or "json_schema" in lowered


def _reply(body: Any, started: float) -> CallResult:
    elapsed = (time.perf_counter() - started) * 1000
    try:
        return _parse_reply(body, elapsed)
    except Exception as exc:  # a reply must never crash the caller; see _parse_reply
        return BackendFailure(
            FailureKind.INVALID_OUTPUT,
            f"unreadable reply ({type(exc).__name__})",
            status=200,
            duration_ms=elapsed,
        )


def _parse_reply(body: Any, elapsed: float) -> CallResult:
    failure = body_failure(body, elapsed)
    if failure is not None:
        return failure
    usage = as_dict(body.get("usage"))
    tokens_in = token_count(usage.get("prompt_tokens"))
    tokens_out = token_count(usage.get("completion_tokens"))
    choices = body.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    choice = as_dict(first)
    message = as_dict(choice.get("message"))
    text = message.get("content")
    if choice.get("finish_reason") == "length":
        return BackendFailure(
            FailureKind.TRUNCATED,
            "reply stopped at the token limit (finish_reason=length)",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            duration_ms=elapsed,
        )
    if not isinstance(text, str):
        return BackendFailure(
            FailureKind.INVALID_OUTPUT,
            "reply has no message content",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            duration_ms=elapsed,
        )
    return ChatReply(text, tokens_in, tokens_out, elapsed)
