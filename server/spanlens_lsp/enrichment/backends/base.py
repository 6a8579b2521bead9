"""What every backend speaks: requests, replies, typed failures and the Backend protocol."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from spanlens_lsp.enrichment.backends.capabilities import Capabilities
from spanlens_lsp.settings import BackendSettings


class FailureKind(str, enum.Enum):
    """Why a call produced no usable reply. The value is the short text users see."""

    CONNECTION_REFUSED = "connection refused"
    TIMEOUT = "model timeout"
    CONNECTION_LOST = "connection lost"
    RATE_LIMITED = "rate limited"
    SERVER_ERROR = "server error"
    CLIENT_ERROR = "request rejected"
    INVALID_OUTPUT = "invalid output"
    TRUNCATED = "truncated output"
    CONTEXT_OVERFLOW = "context overflow"
    #: The endpoint cannot serve any span as configured (key refused or unset, no such
    #: model or path): an endpoint problem, never a span's.
    MISCONFIGURED = "backend misconfigured"
    #: The backend client itself failed in a way no other kind describes (a bug, or a reply
    #: it could not handle).
    BACKEND_ERROR = "backend error"

    @property
    def hurts_endpoint(self) -> bool:
        """Whether this failure says the endpoint is unhealthy (counts toward its breaker)."""
        return self in _ENDPOINT_FAILURES

    @property
    def retryable(self) -> bool:
        """Whether calling the same endpoint again may succeed."""
        return self in _RETRYABLE


_ENDPOINT_FAILURES = frozenset(
    {
        FailureKind.CONNECTION_REFUSED,
        FailureKind.TIMEOUT,
        FailureKind.CONNECTION_LOST,
        FailureKind.SERVER_ERROR,
        FailureKind.BACKEND_ERROR,
    }
)
_RETRYABLE = frozenset(
    {
        FailureKind.TIMEOUT,
        FailureKind.CONNECTION_LOST,
        FailureKind.RATE_LIMITED,
        FailureKind.SERVER_ERROR,
        FailureKind.INVALID_OUTPUT,
    }
)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One structured-output chat call."""

    messages: list[dict[str, str]]
    #: The JSON schema the reply must follow (already stripped for the wire).
    schema: dict[str, Any]
    #: Upper bound on reply tokens.
    max_tokens: int
    #: Schema name for OpenAI's ``response_format``.
    schema_name: str = "enrichment"
    #: What requests sharing a long prompt prefix have in common (the file's path): an engine
    #: with a prompt cache per slot gets them on one slot. None: no affinity.
    cache_key: str | None = None


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A completed reply: the model's text and what it cost."""

    text: str
    tokens_in: int
    tokens_out: int
    duration_ms: float


@dataclass(frozen=True, slots=True)
class BackendFailure:
    """A typed failure of one call. ``detail`` is for logs; ``kind.value`` is for users."""

    kind: FailureKind
    detail: str
    #: Seconds the server asked us to wait (HTTP 429 Retry-After), if it said.
    retry_after: float | None = None
    status: int | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    duration_ms: float = 0.0


CallResult = ChatReply | BackendFailure


@dataclass(slots=True)
class ProbeResult:
    """What `spanlens doctor` and the enrich pre-flight learn about one endpoint."""

    reachable: bool
    model_present: bool | None = None
    models: list[str] = field(default_factory=list)
    error: str | None = None


class Backend(Protocol):
    """One model endpoint of one provider."""

    settings: BackendSettings

    @property
    def capabilities(self) -> Capabilities:
        """What is known about the endpoint: defaults until :meth:`detect` ran."""
        ...

    async def detect(self, timeout: float) -> Capabilities:
        """Learn the endpoint's output form, slots, context per slot and tokenizer (once it
        answers; a failed probe leaves the defaults)."""
        ...

    async def count_tokens(self, text: str, timeout: float) -> int | None:
        """``text``'s tokens by the server's tokenizer; None when it has none or fails."""
        ...

    async def chat(self, request: ChatRequest) -> CallResult:
        """Run one chat call; never raises for network or model problems."""
        ...

    async def probe(self, timeout: float) -> ProbeResult:
        """Is the endpoint reachable, and does it serve the configured model?"""
        ...

    async def aclose(self) -> None:
        """Close the HTTP client."""
        ...
