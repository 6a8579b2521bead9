"""OpenAI-compatible servers: ``/v1/chat/completions`` with ``response_format``; ``/v1/models``.

Covers llama.cpp server, llama-cpp-python, vLLM, LM Studio, a LiteLLM proxy and hosted APIs.
The structured-output form, schema bounds, context per slot, slots and tokenizer of the
endpoint are detected (see :mod:`.capabilities`); a server that refuses a ``response_format``
(whatever the status code) gets the next weaker form at once, remembered for the life of the
endpoint: a refused format is a capability, never a server fault. The API key is read from
the environment variable the config names, at call time; it is sent as a header and never
logged or stored.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlparse

import httpx

from spanlens_lsp.enrichment.backends.base import (
    BackendFailure,
    CallResult,
    ChatReply,
    ChatRequest,
    FailureKind,
    ProbeResult,
)
from spanlens_lsp.enrichment.backends.capabilities import (
    Capabilities,
    OutputForm,
    apply_engine,
    compact_json_grammar,
    refuses_response_format,
)
from spanlens_lsp.enrichment.backends.http import (
    as_dict,
    bearer_headers,
    body_failure,
    list_models,
    make_client,
    post_json,
    token_count,
)
from spanlens_lsp.enrichment.backends.slots import SlotAffinity
from spanlens_lsp.enrichment.backends.urls import url_without_credentials
from spanlens_lsp.enrichment.prompt.schema import BOUND_KEYWORDS, strip_keywords
from spanlens_lsp.settings import BackendSettings

log = logging.getLogger(__name__)


#: The engine a /v1/models `owned_by` names.
_ENGINE_OF_OWNER = {"llamacpp": "llama.cpp"}


class OpenAIBackend:
    """One OpenAI-compatible endpoint and model."""

    def __init__(self, settings: BackendSettings, compact_grammar: bool = False) -> None:
        self.settings = settings
        #: The server is llama.cpp built with llguidance (the built-in engine): replies are
        #: asked for as compact JSON (:attr:`OutputForm.COMPACT_GRAMMAR`) once it is detected.
        self._compact_grammar = compact_grammar
        self._client = make_client(settings)
        path = urlparse(settings.url).path.rstrip("/")
        self._prefix = "" if path.endswith("/v1") else "/v1"
        base = url_without_credentials(settings.url).rstrip("/")
        #: The server's root (llama.cpp's /props and /tokenize live there, not under /v1).
        self._root = base.removesuffix("/v1")
        #: What the endpoint can do; detected by :meth:`detect`, corrected by refusals.
        self.capabilities = Capabilities(context_per_slot=settings.context_tokens)
        #: Which llama.cpp slot each file's prompts go to (see :mod:`.slots`).
        self._affinity = SlotAffinity()

    async def chat(self, request: ChatRequest) -> CallResult:
        """POST /v1/chat/completions and type the outcome. A refused ``response_format`` is
        asked again at once in the next weaker form, remembered from then on."""
        headers, missing = self._headers()
        if missing:
            return BackendFailure(FailureKind.MISCONFIGURED, missing)
        while True:
            form = self.capabilities.form
            result = await self._post(request, headers, form)
            if not (
                isinstance(result, BackendFailure)
                and refuses_response_format(result.status, result.detail)
            ):
                return result
            weaker = form.next_weaker()
            if weaker is None:
                return result
            log.info(
                "backend %s refused response_format %s; using %s from now on",
                self.settings.name,
                form.value,
                weaker.value,
            )
            self.capabilities.form = weaker

    async def _post(
        self, request: ChatRequest, headers: dict[str, str], form: OutputForm
    ) -> CallResult:
        payload = self._payload(request, form)
        slot = self._pin_slot(request, payload)
        try:
            posted = await post_json(
                self._client,
                f"{self._prefix}/chat/completions",
                payload,
                headers,
                deadline=self.settings.timeout,
            )
        finally:
            if slot is not None:
                self._affinity.release(slot)
        if isinstance(posted, BackendFailure):
            return posted
        return _reply(*posted)

    def _pin_slot(self, request: ChatRequest, payload: dict[str, Any]) -> int | None:
        """llama.cpp only (other servers may refuse unknown fields): keep the prompt cached
        (``cache_prompt``) and send one file's requests to one slot (``id_slot``, when the
        slot count is known). Returns the slot pinned, to release after the call."""
        caps = self.capabilities
        if caps.engine != "llama.cpp":
            return None
        payload["cache_prompt"] = True
        if request.cache_key is None or not caps.slots:
            return None
        slot = self._affinity.acquire(request.cache_key, caps.slots)
        payload["id_slot"] = slot
        return slot

    def _payload(self, request: ChatRequest, form: OutputForm) -> dict[str, Any]:
        caps = self.capabilities
        schema = strip_keywords(request.schema, BOUND_KEYWORDS - caps.bounds)
        messages = request.messages
        if form.schema_in_prompt:
            # The server does not take the schema: the prompt carries it, or replies miss keys.
            note = "Your reply must be JSON following this schema:\n" + json.dumps(schema)
            messages = [
                *messages[:-1],
                {**messages[-1], "content": f"{messages[-1]['content']}\n\n{note}"},
            ]
        payload: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "temperature": self.settings.temperature,
            "max_tokens": request.max_tokens,
            "stream": False,
        }
        if form is OutputForm.COMPACT_GRAMMAR:
            payload["grammar"] = compact_json_grammar(schema)
        elif form is OutputForm.JSON_SCHEMA:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": schema},
            }
        elif form is OutputForm.JSON_OBJECT_SCHEMA:
            payload["response_format"] = {"type": "json_object", "schema": schema}
        elif form is OutputForm.JSON_OBJECT:
            payload["response_format"] = {"type": "json_object"}
        s = self.settings
        if caps.repetition_key == "repeat_penalty" and s.repeat_penalty is not None:
            payload["repeat_penalty"] = s.repeat_penalty
        if s.frequency_penalty is not None:
            payload["frequency_penalty"] = s.frequency_penalty
        return payload

    async def detect(self, timeout: float) -> Capabilities:
        """Learn the endpoint's engine, form, bounds, context per slot, slots and tokenizer
        (once; a server that cannot be reached is asked again next time)."""
        caps = self.capabilities
        if caps.detected:
            return caps
        headers, _ = self._headers()
        models = await self._get(f"{self._prefix}/models", headers, timeout)
        if models is None:
            return caps
        owners = {
            str(m.get("id")): str(m.get("owned_by", ""))
            for m in as_dict(models).get("data", []) or []
            if isinstance(m, dict)
        }
        owner = owners.get(self.settings.model) or next(iter(owners.values()), "")
        engine = self.settings.engine
        props: Any = None
        if engine in (None, "llama.cpp"):
            props = await self._get(f"{self._root}/props", headers, timeout)
            if props is None and "llama.cpp" in (engine, _ENGINE_OF_OWNER.get(owner)):
                return caps  # llama.cpp busy or gone: its slots and context are asked again
        if engine is None:
            if _ENGINE_OF_OWNER.get(owner) == "llama.cpp" or (
                isinstance(props, dict) and "total_slots" in props
            ):
                engine = "llama.cpp"
            else:
                counts = await self._tokenize_path("/extras/tokenize/count", headers, timeout)
                if counts is None:
                    # No answer in time (a busy server, one completion at a time): a guess now
                    # would be remembered for good, so this endpoint is asked again next time.
                    return caps
                engine = "llama-cpp-python" if counts else "openai-compatible"
        apply_engine(caps, engine)
        if engine == "llama.cpp" and self._compact_grammar:
            caps.form = OutputForm.COMPACT_GRAMMAR
        info = as_dict(props)
        if engine == "llama.cpp" and info:
            caps.slots = token_count(info.get("total_slots")) or None
            n_ctx = token_count(as_dict(info.get("default_generation_settings")).get("n_ctx"))
            if n_ctx:
                caps.context_per_slot = min(self.settings.context_tokens, n_ctx)
        caps.detected = True
        return caps

    async def count_tokens(self, text: str, timeout: float) -> int | None:
        """Tokens of ``text`` by the server's own tokenizer; None when it has none or fails."""
        path = self.capabilities.tokenizer
        if path is None:
            return None
        headers, _ = self._headers()
        if path == "/tokenize":
            body: dict[str, Any] = {"content": text}
        else:
            body = {"input": text, "model": self.settings.model}
        try:
            response = await self._client.post(
                f"{self._root}{path}", json=body, headers=headers, timeout=timeout
            )
            data = as_dict(response.json()) if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return None
        if "count" in data:
            return token_count(data["count"]) or None
        tokens = data.get("tokens")
        return len(tokens) if isinstance(tokens, list) else None

    async def _tokenize_path(
        self, path: str, headers: dict[str, str], timeout: float
    ) -> bool | None:
        """Whether ``path`` counts tokens; None when the server did not answer in time."""
        try:
            response = await self._client.post(
                f"{self._root}{path}", json={"input": "x"}, headers=headers, timeout=timeout
            )
            return response.status_code == 200 and "count" in as_dict(response.json())
        except httpx.TransportError:
            return None
        except (httpx.HTTPError, ValueError):
            return False

    async def _get(self, path: str, headers: dict[str, str], timeout: float) -> Any:
        try:
            response = await self._client.get(path, headers=headers, timeout=timeout)
            return response.json() if response.status_code == 200 else {}
        except ValueError:
            return {}
        except httpx.HTTPError:
            return None

    def _headers(self) -> tuple[dict[str, str], str | None]:
        return bearer_headers(self.settings.api_key_env)

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
