"""Endpoints: one backend with its breaker, concurrency limit, cool-down and health."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from spanlens_lsp.enrichment.backends import create_backend, provider_for
from spanlens_lsp.enrichment.backends.base import Backend, BackendFailure, FailureKind
from spanlens_lsp.enrichment.backends.capabilities import Capabilities
from spanlens_lsp.enrichment.backends.urls import display_url, endpoint_secrets, scrub
from spanlens_lsp.settings import BackendSettings, Settings

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class GpuProbe(Protocol):
    """The part of :class:`spanlens_lsp.telemetry.gpu.GpuSampler` the cascade uses."""

    @property
    def available(self) -> bool:
        """Whether a GPU can be sampled."""
        ...

    def sampling(self, interval: float) -> AbstractAsyncContextManager[Any]:
        """Sample while the block runs; the value gives the summary for the attempt row."""
        ...

    def limits_exceeded(self, min_free_vram_mb: int, max_temperature_c: int) -> str | None:
        """Why local work should wait now (VRAM, temperature), or None."""
        ...


@dataclass(slots=True)
class Breaker:
    """A circuit breaker: open after ``threshold`` consecutive endpoint failures; after
    ``reset_after`` seconds one trial call is let through (half-open); its success closes the
    breaker, its failure opens it again."""

    threshold: int
    reset_after: float
    failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False

    def state(self, now: float) -> str:
        """closed, open, or half-open (the reset time has passed)."""
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if now - self.opened_at >= self.reset_after else OPEN

    def can_call(self, now: float) -> bool:
        """Whether a call would be let through now (without claiming the trial)."""
        state = self.state(now)
        return state == CLOSED or (state == HALF_OPEN and not self.trial_in_flight)

    def claim(self, now: float) -> bool:
        """Let one call through if the state allows; a half-open breaker allows one at a time."""
        if not self.can_call(now):
            return False
        if self.state(now) == HALF_OPEN:
            self.trial_in_flight = True
        return True

    def success(self) -> None:
        """A call reached a healthy endpoint: close."""
        self.failures = 0
        self.opened_at = None
        self.trial_in_flight = False

    def failure(self, now: float) -> None:
        """An endpoint failure: count it; open at the threshold or after a failed trial."""
        self.failures += 1
        if self.trial_in_flight or self.failures >= self.threshold:
            self.opened_at = now
        self.trial_in_flight = False

    def trip(self, now: float) -> None:
        """Open at once (the endpoint is misconfigured); a trial after ``reset_after`` tells
        whether it was fixed."""
        self.failures = max(self.failures + 1, self.threshold)
        self.opened_at = now
        self.trial_in_flight = False

    def release(self) -> None:
        """A claimed call ended without saying anything about health (e.g. invalid output)."""
        self.trial_in_flight = False


@dataclass(slots=True)
class Endpoint:
    """One backend with its breaker, concurrency limit and recent history."""

    backend: Backend
    breaker: Breaker
    slots: asyncio.Semaphore
    in_flight: int = 0
    calls: int = 0
    cooldown_until: float = 0.0
    last_error: str | None = None
    last_failure: FailureKind | None = None
    #: What is wrong with the endpoint's configuration (key, model, URL), with the fix; set
    #: by a MISCONFIGURED failure, cleared by the next call it answers.
    misconfigured: str | None = None

    @property
    def settings(self) -> BackendSettings:
        """The endpoint's configuration."""
        return self.backend.settings

    @property
    def capabilities(self) -> Capabilities:
        """What the backend detected about the endpoint (defaults until detection ran)."""
        return self.backend.capabilities

    @property
    def parallel(self) -> int:
        """Calls the endpoint takes at once: ``max_parallel``, never more than its slots."""
        slots = self.capabilities.slots or None
        return max(1, min(self.settings.max_parallel, slots or self.settings.max_parallel))

    @property
    def context_tokens(self) -> int:
        """Context one request may use: the configured window, or less when the server's
        context per slot is smaller (llama.cpp splits its context across its slots)."""
        per_slot = self.capabilities.context_per_slot
        return min(self.settings.context_tokens, per_slot or self.settings.context_tokens)

    async def detect(self, timeout: float) -> None:
        """Learn the endpoint's capabilities once; the concurrency limit follows its slots."""
        if self.capabilities.detected:
            return
        await self.backend.detect(timeout)
        if self.parallel < self.settings.max_parallel and self.in_flight == 0:
            self.slots = asyncio.Semaphore(self.parallel)

    @property
    def load(self) -> float:
        """Calls running or queued, relative to the endpoint's parallelism."""
        return self.in_flight / self.parallel

    @property
    def display_url(self) -> str:
        """The endpoint's URL without credentials: the only form logged, stored or shown."""
        return display_url(self.settings.url)

    def usable(self, now: float) -> bool:
        """Not cooling down after a 429 and its breaker lets calls through."""
        return now >= self.cooldown_until and self.breaker.can_call(now)

    def blocked_for(self, now: float) -> float:
        """Seconds until the endpoint takes calls again (0 when it does now, or when only a
        half-open trial in flight holds it back)."""
        wait = max(0.0, self.cooldown_until - now)
        opened = self.breaker.opened_at
        if opened is not None:
            wait = max(wait, opened + self.breaker.reset_after - now)
        return wait

    def blocked_reason(self, now: float) -> str:
        """Why the endpoint takes no calls now, in a few words ("rate limited", ...)."""
        if self.misconfigured and self.breaker.opened_at is not None:
            return "misconfigured"
        if now < self.cooldown_until:
            return "rate limited"
        state = self.breaker.state(now)
        if state == OPEN:
            why = self.last_failure.value if self.last_failure else "failing"
            return f"circuit open ({why})"
        if state == HALF_OPEN:
            return "trial call in flight"
        return "busy"


def misconfiguration_message(endpoint: Endpoint, failure: BackendFailure) -> str:
    """One line for the user: what is wrong with the endpoint's configuration, and the fix."""
    s = endpoint.settings
    where = f"backend {s.name} ({endpoint.display_url})"
    if failure.status in (401, 403):
        env = s.api_key_env or "api_key_env"
        return (
            f"{where} refused the API key (HTTP {failure.status}) — set a valid key in the "
            f"environment variable {env}"
        )
    if failure.status == 404:
        fix = provider_for(s.provider).model_fix(s.model)
        if s.provider != "ollama":
            fix += ", or correct backends.url"
        return f"{where} does not serve model {s.model} (HTTP 404) — {fix}"
    return f"{where}: {failure.detail} — set it, or remove api_key_env from the backend"


def update_health(
    endpoint: Endpoint, failure: BackendFailure | None, now: float, backoff_base: float
) -> None:
    """The endpoint's breaker, cool-down and last error after one call."""
    if failure is None:
        endpoint.breaker.success()
        endpoint.last_error = None
        endpoint.last_failure = None
        endpoint.misconfigured = None
        return
    name, url = endpoint.settings.name, endpoint.display_url
    endpoint.last_error = scrub_for(endpoint, f"{failure.kind.value}: {failure.detail}")[:300]
    endpoint.last_failure = failure.kind
    log.debug("%s (%s): %s", name, url, endpoint.last_error)
    if failure.retry_after is not None or failure.kind is FailureKind.RATE_LIMITED:
        # Every job stops calling it, not just the one that was told to wait.
        pause = failure.retry_after if failure.retry_after is not None else backoff_base
        endpoint.cooldown_until = max(endpoint.cooldown_until, now + pause)
    if failure.kind is FailureKind.MISCONFIGURED:
        endpoint.misconfigured = scrub_for(endpoint, misconfiguration_message(endpoint, failure))
        if endpoint.breaker.opened_at is None:
            log.warning(
                "backend %s (%s) misconfigured; pausing it for %.0fs: %s",
                name,
                url,
                endpoint.breaker.reset_after,
                endpoint.misconfigured,
            )
        endpoint.breaker.trip(now)
    elif failure.kind.hurts_endpoint:
        was_open = endpoint.breaker.opened_at is not None
        endpoint.breaker.failure(now)
        if endpoint.breaker.opened_at is not None and not was_open:
            log.warning(
                "backend %s (%s) failing (%s); pausing it for %.0fs",
                name,
                url,
                failure.kind.value,
                endpoint.breaker.reset_after,
            )
    elif failure.kind is FailureKind.RATE_LIMITED:
        endpoint.breaker.release()
    else:
        # It answered: the endpoint is healthy even if the model's reply was not.
        endpoint.breaker.success()
        endpoint.misconfigured = None


def scrub_for(endpoint: Endpoint, text: str) -> str:
    """``text`` without the endpoint's credentials (key, URL user and password)."""
    return scrub(text, endpoint_secrets(endpoint.settings))


def build_endpoints(settings: Settings) -> dict[str, list[Endpoint]]:
    """One endpoint (backend client, breaker, concurrency limit) per configured backend."""
    enrichment = settings.enrichment
    endpoints: dict[str, list[Endpoint]] = {}
    for backend in settings.backends:
        endpoints.setdefault(backend.tier, []).append(
            Endpoint(
                create_backend(backend, settings.local),
                Breaker(enrichment.breaker_threshold, enrichment.breaker_reset),
                asyncio.Semaphore(max(1, backend.max_parallel)),
            )
        )
    return endpoints


async def close_endpoints(endpoints: list[Endpoint]) -> None:
    """Close every endpoint's HTTP client (closing one twice is harmless)."""
    await asyncio.gather(*(ep.backend.aclose() for ep in endpoints), return_exceptions=True)


def stall_of(endpoints: list[Endpoint], now: float) -> tuple[float, str]:
    """Why work waits now and for how long: (seconds until some endpoint takes calls
    again, "<backend> <reason>"). (0, "") when an endpoint takes calls now."""
    if not endpoints or any(ep.usable(now) for ep in endpoints):
        return 0.0, ""
    soonest = min(endpoints, key=lambda ep: ep.blocked_for(now))
    reason = f"{soonest.settings.name} {soonest.blocked_reason(now)}"
    if soonest.misconfigured:
        reason = soonest.misconfigured
    return soonest.blocked_for(now), reason


def all_misconfigured(endpoints: list[Endpoint]) -> bool:
    """Whether every endpoint is known to be misconfigured (waiting cannot help)."""
    return bool(endpoints) and all(ep.misconfigured for ep in endpoints)


def identity_of(endpoint: Endpoint) -> dict[str, Any]:
    """Which endpoint a report is about: name, tier, provider, url (without credentials),
    model and whether it is remote."""
    s = endpoint.settings
    return {
        "name": s.name,
        "tier": s.tier,
        "provider": s.provider,
        "url": endpoint.display_url,
        "model": s.model,
        "remote": s.is_remote,
    }


def health_of(endpoints: list[Endpoint]) -> dict[str, Any]:
    """Per endpoint: tier, url (without credentials), model, breaker state, last error and
    ``misconfigured`` (what to fix, or None); and ``unreachable``.

    ``unreachable`` is True when every endpoint's last call was refused a connection;
    ``misconfigured`` lists one message per misconfigured endpoint, for one editor notice.
    """
    now = time.monotonic()
    entries = []
    for endpoint in endpoints:
        entries.append(
            {
                **identity_of(endpoint),
                "breaker": endpoint.breaker.state(now),
                "in_flight": endpoint.in_flight,
                "calls": endpoint.calls,
                "last_error": endpoint.last_error,
                "misconfigured": endpoint.misconfigured,
                "cooldown_s": round(max(0.0, endpoint.cooldown_until - now), 3),
            }
        )
    unreachable = bool(endpoints) and all(
        ep.last_failure is FailureKind.CONNECTION_REFUSED for ep in endpoints
    )
    misconfigured = [ep.misconfigured for ep in endpoints if ep.misconfigured]
    return {"endpoints": entries, "unreachable": unreachable, "misconfigured": misconfigured}
