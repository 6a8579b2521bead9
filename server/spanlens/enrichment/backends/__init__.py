"""Model backends: one module per provider, each implementing :class:`Backend`.

All HTTP spanlens does lives under this package. A backend never raises for a model or network
problem: :meth:`Backend.chat` returns either a :class:`ChatReply` or a :class:`BackendFailure`
whose :class:`FailureKind` the cascade reasons about (retry, fail over, escalate, open the
breaker).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import enum
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from spanlens.config import BackendSettings
from spanlens.presentation.text import clean_text


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

    async def chat(self, request: ChatRequest) -> CallResult:
        """Run one chat call; never raises for network or model problems."""
        ...

    async def probe(self, timeout: float) -> ProbeResult:
        """Is the endpoint reachable, and does it serve the configured model?"""
        ...

    async def aclose(self) -> None:
        """Close the HTTP client."""
        ...


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
}


def provider_for(name: str) -> Provider:
    """The registry entry of provider ``name`` (config validation allows only known names)."""
    return PROVIDERS.get(name, PROVIDERS["ollama"])


def create_backend(settings: BackendSettings) -> Backend:
    """The backend for ``settings.provider``, from :data:`PROVIDERS`."""
    import importlib

    module, _, cls = provider_for(settings.provider).backend.partition(":")
    backend: Backend = getattr(importlib.import_module(module), cls)(settings)
    return backend


def make_client(settings: BackendSettings) -> httpx.AsyncClient:
    """The long-lived client of one endpoint, sized to its parallelism."""
    limits = httpx.Limits(
        max_connections=max(1, settings.max_parallel) + 2,
        max_keepalive_connections=max(1, settings.max_parallel),
    )
    timeout = httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout))
    base_url = url_without_credentials(settings.url).rstrip("/")
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)


def transport_failure(exc: Exception, started: float) -> BackendFailure:
    """Map an httpx exception to a typed failure."""
    elapsed = (time.perf_counter() - started) * 1000
    if isinstance(exc, httpx.ConnectError):
        return BackendFailure(FailureKind.CONNECTION_REFUSED, _exc_text(exc), duration_ms=elapsed)
    if isinstance(exc, httpx.TimeoutException):
        return BackendFailure(FailureKind.TIMEOUT, _exc_text(exc), duration_ms=elapsed)
    return BackendFailure(FailureKind.CONNECTION_LOST, _exc_text(exc), duration_ms=elapsed)


def status_failure(response: httpx.Response, started: float) -> BackendFailure:
    """Map an HTTP error status to a typed failure (429, context overflow, 5xx, other 4xx)."""
    elapsed = (time.perf_counter() - started) * 1000
    status = response.status_code
    body = _body_text(response)
    if status == 429:
        return BackendFailure(
            FailureKind.RATE_LIMITED,
            f"HTTP 429: {body}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            status=status,
            duration_ms=elapsed,
        )
    if status in (401, 403, 404):
        # A refused key, a model the server does not have, or a wrong URL path: no span
        # will fare better, so the endpoint is misconfigured.
        return BackendFailure(
            FailureKind.MISCONFIGURED,
            f"HTTP {status}: {body}",
            status=status,
            duration_ms=elapsed,
        )
    if status == 503 and response.headers.get("retry-after"):
        return BackendFailure(
            FailureKind.SERVER_ERROR,
            f"HTTP 503: {body}",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            status=status,
            duration_ms=elapsed,
        )
    if mentions_context_overflow(body):
        return BackendFailure(
            FailureKind.CONTEXT_OVERFLOW,
            f"HTTP {status}: {body}",
            status=status,
            duration_ms=elapsed,
        )
    kind = FailureKind.SERVER_ERROR if status >= 500 else FailureKind.CLIENT_ERROR
    return BackendFailure(kind, f"HTTP {status}: {body}", status=status, duration_ms=elapsed)


async def post_json(
    client: httpx.AsyncClient,
    path: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    deadline: float,
) -> tuple[Any, float] | BackendFailure:
    """POST ``payload`` and return (decoded JSON body, start time), or the typed failure.

    ``deadline`` bounds the whole exchange (connect, send, every read of the body): httpx's
    own timeout is per read, so a server that drips a byte a second would never time out.
    """
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(
            client.post(path, json=payload, headers=headers), deadline
        )
        if response.status_code != 200:
            return status_failure(response, started)
        return response.json(), started
    except asyncio.TimeoutError:
        elapsed = (time.perf_counter() - started) * 1000
        return BackendFailure(
            FailureKind.TIMEOUT,
            f"no complete reply within the {deadline:g} s timeout",
            duration_ms=elapsed,
        )
    except httpx.HTTPError as exc:
        return transport_failure(exc, started)
    except ValueError as exc:
        # The server answered in full; what it said is unreadable. That is the reply's
        # problem (retry, count against the span), not a sign of an unhealthy endpoint.
        return BackendFailure(
            FailureKind.INVALID_OUTPUT, f"malformed response body: {exc}"[:300], status=200
        )


async def list_models(
    client: httpx.AsyncClient,
    path: str,
    list_key: str,
    name_key: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    problem: str | None = None,
) -> list[str] | ProbeResult:
    """GET a server's model list: the names, or the ProbeResult that says what is wrong.

    ``problem`` is a configuration problem already known (an unset API key variable): it is
    reported once the server is known to be reachable.
    """
    try:
        response = await asyncio.wait_for(
            client.get(path, headers=headers, timeout=timeout), timeout
        )
    except asyncio.TimeoutError:
        return ProbeResult(False, error=f"TimeoutError: no complete answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return ProbeResult(False, error=transport_failure(exc, time.perf_counter()).detail)
    if problem:
        return ProbeResult(True, error=problem)
    if response.status_code in (401, 403):
        return ProbeResult(True, error=f"API key refused (HTTP {response.status_code})")
    if response.status_code != 200:
        return ProbeResult(True, error=f"{path} answered HTTP {response.status_code}")
    try:
        return [str(m.get(name_key, "")) for m in response.json().get(list_key, [])]
    except (ValueError, AttributeError, TypeError):
        return ProbeResult(True, error=f"{path} answered something that is not JSON")


def body_failure(body: Any, elapsed_ms: float) -> BackendFailure | None:
    """The failure a 200 reply carries (not a JSON object, or an ``error`` field), if any."""
    if not isinstance(body, dict):
        return BackendFailure(FailureKind.INVALID_OUTPUT, "response is not a JSON object")
    if body.get("error"):
        error = str(body["error"])
        kind = (
            FailureKind.CONTEXT_OVERFLOW
            if mentions_context_overflow(error)
            else FailureKind.SERVER_ERROR
        )
        return BackendFailure(kind, error[:300], duration_ms=elapsed_ms)
    return None


def token_count(value: Any) -> int:
    """A token count from a reply field; 0 for anything that is not a finite number >= 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return 0
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return int(value)
    return 0


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (so ``.get`` never fails)."""
    return value if isinstance(value, dict) else {}


def display_url(url: str) -> str:
    """``url`` as shown, logged and stored: scheme://hostname:port/path, with any
    ``user:password@`` (and query or fragment) left out."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if not host:
        return url.rsplit("@", 1)[-1] if "@" in url else url
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def display_host(url: str) -> str:
    """hostname:port of ``url`` as :func:`display_url` renders it (for the ``host`` columns)."""
    return urlsplit(display_url(url)).netloc or display_url(url)


def url_without_credentials(url: str) -> str:
    """``url`` as requests go to it: any ``user:password@`` removed, so that httpx never
    turns it into Basic auth (sent in place of the API key, and echoed back by servers)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def url_secrets(url: str) -> list[str]:
    """The credentials embedded in ``url``, in every form a server could echo: as written,
    percent-decoded, and as the base64 of a Basic ``Authorization`` header."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    found = [userinfo, unquote(userinfo)]
    if password:
        found += [password, unquote(password)]
    for pair in {userinfo, f"{unquote(user)}:{unquote(password)}"}:
        found.append(base64.b64encode(pair.encode("utf-8", "replace")).decode("ascii"))
    return found


def endpoint_secrets(settings: BackendSettings) -> list[str]:
    """Values that must never reach a log, the store or the editor: URL credentials and the
    API key (read from ``api_key_env`` now, as the backend does), also base64-encoded."""
    import os

    secrets = url_secrets(settings.url)
    if settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
        if key:
            secrets += [key, base64.b64encode(key.encode("utf-8", "replace")).decode("ascii")]
    return secrets


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every (non-trivial) secret value replaced by ``***``, and any
    ``Authorization`` header value a server echoed masked whatever it holds.

    Every server-made text (error bodies, exceptions) passes here before it is stored,
    logged or shown, so it also leaves on one line without control or bidi characters.
    """
    text = clean_text(text, one_line=True)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return _AUTH_VALUE.sub(lambda m: m.group(1) + "***", text)


#: An ``Authorization`` header value as a server may echo it (``authorization: Basic x``,
#: ``Bearer x``): a credential-looking word (a digit, ``+/=``, or a capital past its first
#: letter, so that prose like "Basic authentication" stays) after the scheme.
_AUTH_VALUE = re.compile(
    r"(?i:(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?"
    r"|\b(?:bearer|basic)\s+))"
    r"(?!\*\*\*)(?=[A-Za-z0-9._~+/=-]*?(?:[0-9+/=]|(?<=[A-Za-z0-9._~+/=-])[A-Z]))"
    r"[A-Za-z0-9._~+/=-]{3,}"
)


def mentions_context_overflow(text: str) -> bool:
    """Whether an error text says the prompt did not fit the model's context window."""
    lowered = text.lower()
    return (
        "context_length_exceeded" in lowered
        or "maximum context length" in lowered
        or "context window" in lowered
        or ("context" in lowered and ("exceed" in lowered or "too long" in lowered))
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _body_text(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:  # a broken body must not hide the status
        return ""
    return " ".join(text.split())[:300]


def _exc_text(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


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
    detect = getattr(backend, "detect", None)
    if detect is not None:
        await detect(timeout)
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
    caps = getattr(backend, "capabilities", None)
    found: dict[str, Any] = {}
    if caps is not None:
        caps.replies_valid = ok
        found = caps.as_json()
    return {"ok": ok, "detail": detail, **found}


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
