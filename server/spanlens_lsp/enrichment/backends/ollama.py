"""Ollama: ``/api/chat`` with ``format`` = the JSON schema and ``keep_alive``; ``/api/tags``."""

from __future__ import annotations

import time
from typing import Any

from spanlens_lsp.enrichment.backends.base import (
    BackendFailure,
    CallResult,
    ChatReply,
    ChatRequest,
    FailureKind,
    ProbeResult,
)
from spanlens_lsp.enrichment.backends.capabilities import (
    LLAMA_CPP_PYTHON_BOUNDS,
    Capabilities,
    OutputForm,
)
from spanlens_lsp.enrichment.backends.http import (
    as_dict,
    body_failure,
    list_models,
    make_client,
    post_json,
    token_count,
)
from spanlens_lsp.enrichment.prompt.schema import BOUND_KEYWORDS, strip_keywords
from spanlens_lsp.settings import BackendSettings


class OllamaBackend:
    """One Ollama server and model."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings
        self._client = make_client(settings)
        #: Ollama turns ``format`` into a llama.cpp grammar; patterns are left out (its
        #: converter's regex support is not llama.cpp's), and ``num_ctx`` is per request.
        self.capabilities = Capabilities(
            form=OutputForm.JSON_SCHEMA,
            engine="ollama",
            bounds=LLAMA_CPP_PYTHON_BOUNDS,
            context_per_slot=settings.context_tokens,
            repetition_key="repeat_penalty",
            detected=True,
        )

    async def detect(self, timeout: float) -> Capabilities:
        """Ollama's capabilities are known without asking."""
        return self.capabilities

    async def count_tokens(self, text: str, timeout: float) -> int | None:
        """Ollama has no tokenizer endpoint: None (the caller estimates)."""
        return None

    async def chat(self, request: ChatRequest) -> CallResult:
        """POST /api/chat (not streamed) and type the outcome."""
        posted = await post_json(
            self._client, "/api/chat", self._payload(request), deadline=self.settings.timeout
        )
        if isinstance(posted, BackendFailure):
            return posted
        return _reply(*posted)

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        s = self.settings
        return {
            "model": s.model,
            "messages": request.messages,
            "stream": False,
            "format": strip_keywords(request.schema, BOUND_KEYWORDS - self.capabilities.bounds),
            "keep_alive": s.keep_alive,
            "options": {
                "num_ctx": s.context_tokens,
                "temperature": s.temperature,
                "num_predict": request.max_tokens,
                **({"repeat_penalty": s.repeat_penalty} if s.repeat_penalty is not None else {}),
            },
        }

    async def probe(self, timeout: float) -> ProbeResult:
        """GET /api/tags: reachable, and is the model pulled?"""
        models = await list_models(self._client, "/api/tags", "models", "name", timeout)
        if isinstance(models, ProbeResult):
            return models
        return ProbeResult(
            True, model_present=_has_model(models, self.settings.model), models=models
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _has_model(models: list[str], wanted: str) -> bool:
    # Ollama names a model without a tag as ":latest".
    names = set(models) | {m.removesuffix(":latest") for m in models}
    return wanted in names or f"{wanted}:latest" in names


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
    tokens_in = token_count(body.get("prompt_eval_count"))
    tokens_out = token_count(body.get("eval_count"))
    # Wall-clock time, queueing included: what the user waits for (total_duration is not).
    duration = elapsed
    text = as_dict(body.get("message")).get("content")
    if body.get("done_reason") == "length":
        return BackendFailure(
            FailureKind.TRUNCATED,
            "reply stopped at the token limit (done_reason=length)",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            duration_ms=duration,
        )
    if not isinstance(text, str):
        return BackendFailure(
            FailureKind.INVALID_OUTPUT,
            "reply has no message content",
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            duration_ms=duration,
        )
    return ChatReply(text, tokens_in, tokens_out, duration)
