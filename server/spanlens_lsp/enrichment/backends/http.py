"""HTTP shared by the providers: the client, and the failures of transports, statuses, bodies."""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import time
from typing import Any

import httpx

from spanlens_lsp.enrichment.backends.base import BackendFailure, FailureKind, ProbeResult
from spanlens_lsp.enrichment.backends.urls import url_without_credentials
from spanlens_lsp.settings import BackendSettings


def make_client(settings: BackendSettings) -> httpx.AsyncClient:
    """The long-lived client of one endpoint, sized to its parallelism."""
    limits = httpx.Limits(
        max_connections=max(1, settings.max_parallel) + 2,
        max_keepalive_connections=max(1, settings.max_parallel),
    )
    timeout = httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout))
    base_url = url_without_credentials(settings.url).rstrip("/")
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)


def bearer_headers(api_key_env: str | None) -> tuple[dict[str, str], str | None]:
    """The ``Authorization: Bearer`` header with the key read now from the variable
    ``api_key_env`` names; and what is wrong when that variable is unset (else None)."""
    if not api_key_env:
        return {}, None
    key = os.environ.get(api_key_env)
    if not key:
        return {}, f"environment variable {api_key_env} (api_key_env) is not set"
    return {"Authorization": f"Bearer {key}"}, None


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
    if mentions_unparsed_output(body):
        # llama.cpp answers 500 when the model's text fails its own output parser: the
        # model's fault on this request, not the server's (no breaker trip; asked again).
        return BackendFailure(
            FailureKind.INVALID_OUTPUT,
            f"HTTP {status}: {body}",
            status=status,
            duration_ms=elapsed,
        )
    kind = FailureKind.SERVER_ERROR if status >= 500 else FailureKind.CLIENT_ERROR
    return BackendFailure(kind, f"HTTP {status}: {body}", status=status, duration_ms=elapsed)


def body_failure(body: Any, elapsed_ms: float) -> BackendFailure | None:
    """The failure a 200 reply carries (not a JSON object, or an ``error`` field), if any."""
    if not isinstance(body, dict):
        return BackendFailure(FailureKind.INVALID_OUTPUT, "response is not a JSON object")
    if body.get("error"):
        error = str(body["error"])
        if mentions_context_overflow(error):
            kind = FailureKind.CONTEXT_OVERFLOW
        elif mentions_unparsed_output(error):
            kind = FailureKind.INVALID_OUTPUT
        else:
            kind = FailureKind.SERVER_ERROR
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


def mentions_context_overflow(text: str) -> bool:
    """Whether an error text says the prompt did not fit the model's context window."""
    lowered = text.lower()
    return (
        "context_length_exceeded" in lowered
        or "maximum context length" in lowered
        or "context window" in lowered
        or ("context" in lowered and ("exceed" in lowered or "too long" in lowered))
        # llama.cpp, when an embedding input is longer than its batch (HTTP 500).
        or "too large to process" in lowered
    )


def mentions_unparsed_output(text: str) -> bool:
    """Whether an error text says the engine could not parse what the model wrote: llama.cpp's
    ``llama-server`` (the built-in engine) answers HTTP 500 "The model produced output that does
    not match the expected peg-native format" when a reply breaks its chat-format parser."""
    return "model produced output that does not match" in text.lower()


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


async def post_json(
    client: httpx.AsyncClient,
    path: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    deadline: float,
    decode_in_thread: bool = False,
) -> tuple[Any, float] | BackendFailure:
    """POST ``payload`` and return (decoded JSON body, start time), or the typed failure.

    ``deadline`` bounds the whole exchange (connect, send, every read of the body): httpx's
    own timeout is per read, so a server that drips a byte a second would never time out.
    ``decode_in_thread`` decodes the body off the event loop (embedding replies: tens of
    milliseconds of JSON numbers each).
    """
    started = time.perf_counter()
    try:
        response = await asyncio.wait_for(
            client.post(path, json=payload, headers=headers), deadline
        )
        if response.status_code != 200:
            return status_failure(response, started)
        if decode_in_thread:
            return await asyncio.to_thread(response.json), started
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
