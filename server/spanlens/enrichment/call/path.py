"""The call path: every structured model call goes through here, whatever it is for.

A :class:`CallRequest` is data: the chat request (messages, schema, reply bound) and a
``judge`` that says what a reply came to (a :class:`Verdict`). The path does not know what a
span or a file overview is. It owns, per endpoint and for the life of the process, what every
call must respect: the concurrency limit (``max_parallel``, never more than the server's
slots), the cool-down after a rate limit, the circuit breaker, the GPU gate (local endpoints
wait while GPU limits are exceeded), GPU sampling, and the ``attempts`` row of each call.

:meth:`CallPath.call` is one call on one endpoint; :meth:`CallPath.ask` is the whole policy for
a request that does not change between tries (retries with bounded exponential backoff and
jitter, failover to the tier's next endpoint, escalation to the next tier). The span cascade
(:mod:`spanlens.enrichment.call.cascade`) keeps its own loop on top of :meth:`CallPath.call`,
because it re-fits its prompt per tier, grows the reply room of a truncated reply and splits
batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from spanlens.enrichment.backends.base import BackendFailure, CallResult, ChatRequest, FailureKind
from spanlens.enrichment.backends.urls import display_host
from spanlens.enrichment.call.endpoints import (
    HALF_OPEN,
    Endpoint,
    GpuProbe,
    scrub_for,
    update_health,
)
from spanlens.settings import EnrichmentSettings, GpuSettings
from spanlens.store.enrichments import Attempt

log = logging.getLogger(__name__)

#: How a tier held back by GPU limits is described (a span's deferral is then of kind GPU).
GPU_BUSY = "GPU busy"

T = TypeVar("T")

Recorder = Callable[[Attempt], Awaitable[None]]
Sleeper = Callable[[float], Awaitable[None]]
CostFunction = Callable[[int, int, float, float], float]


@dataclass(slots=True)
class Verdict(Generic[T]):
    """What one reply came to: the caller's value, and what the path and the attempts row
    need to know about it."""

    #: Whatever the judge made of the reply (validated spans, an overview, ...).
    value: T
    #: Why the reply is not usable; None when it is. Its kind drives health and retries.
    failure: BackendFailure | None
    #: ``ok``, ``partial`` (some of several parts usable) or ``failed``.
    outcome: str = "ok"
    failure_type: str | None = None
    #: One line (or one per rejected part) for the attempts row; credentials are scrubbed.
    detail: str | None = None
    #: Spans the call enriched (0 for a call that enriches no span).
    enriched: int = 0


@dataclass(frozen=True, slots=True)
class CallRequest(Generic[T]):
    """One structured call: what to send and how to judge the reply."""

    chat: ChatRequest
    #: Turns the backend's reply (or typed failure) into a :class:`Verdict`; never raises.
    judge: Callable[[CallResult], Verdict[T]]
    #: The content hashes of the spans the call is about (none for a file's overview).
    span_hashes: tuple[str, ...] = ()


@dataclass(slots=True)
class Asked(Generic[T]):
    """What :meth:`CallPath.ask` came to."""

    #: The last verdict (usable when its failure is None); None when no call was made.
    verdict: Verdict[T] | None = None
    #: Calls made.
    calls: int = 0
    #: Why nothing usable came back when that was no reply's fault (no endpoint, an open
    #: breaker, GPU limits, misconfiguration).
    reasons: list[str] = field(default_factory=list)


class CallPath:
    """Every model call of one process; see the module docstring."""

    def __init__(
        self,
        endpoints: dict[str, list[Endpoint]],
        settings: EnrichmentSettings,
        record: Recorder,
        *,
        gpu: GpuProbe | None = None,
        gpu_settings: GpuSettings | None = None,
        cost: CostFunction | None = None,
        sleep: Sleeper = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = endpoints
        self.settings = settings
        self._record = record
        self._gpu = gpu
        self._gpu_settings = gpu_settings or GpuSettings()
        self._cost = cost or (lambda ti, to, pi, po: (ti * pi + to * po) / 1_000_000)
        self.sleep = sleep
        self.clock = clock
        #: Set by :meth:`halt`: raised by every call from then on.
        self._halted: BaseException | None = None

    def halt(self, reason: BaseException | None) -> None:
        """Make no model call any more: every later call raises ``reason`` instead (a store
        write failed, so nothing a call returns could be recorded); None lifts the halt."""
        self._halted = reason

    def all_endpoints(self) -> list[Endpoint]:
        """Every endpoint, tier by tier."""
        return [ep for tier in self.endpoints.values() for ep in tier]

    def eligible(self, tier: str, local_only: bool) -> list[Endpoint]:
        """A tier's endpoints that may receive a request (remote ones only when allowed)."""
        endpoints = self.endpoints.get(tier, [])
        if local_only:
            return [ep for ep in endpoints if not ep.settings.is_remote]
        return list(endpoints)

    def blocked(self, tier: str, endpoints: list[Endpoint]) -> str | None:
        """Why no call may go to ``endpoints`` now (none allowed, all cooling down or with an
        open breaker, GPU limits exceeded), or None."""
        if not endpoints:
            return f"no backend of tier {tier} may receive this file"
        now = self.clock()
        if not any(ep.usable(now) for ep in endpoints):
            return "; ".join(
                f"backend {ep.settings.name} {ep.blocked_reason(now)}" for ep in endpoints
            )
        if self._gpu is not None and all(not ep.settings.is_remote for ep in endpoints):
            limits = self._gpu_settings
            if (limits.min_free_vram_mb or limits.max_temperature_c) and self._gpu.available:
                why = self._gpu.limits_exceeded(limits.min_free_vram_mb, limits.max_temperature_c)
                if why:
                    return f"{GPU_BUSY}: {why}"
        return None

    async def detect(self, endpoints: list[Endpoint]) -> None:
        """Learn each endpoint's capabilities once (slots, context, output form)."""
        for endpoint in endpoints:
            await endpoint.detect(min(5.0, endpoint.settings.timeout))

    def pick(self, endpoints: list[Endpoint], tried: set[int]) -> Endpoint | None:
        """The least-busy usable endpoint not yet tried for this request."""
        now = self.clock()
        candidates = [ep for ep in endpoints if id(ep) not in tried and ep.usable(now)]
        if not candidates:
            return None
        return min(candidates, key=lambda ep: (ep.load, ep.calls))

    def backoff(self, attempt_number: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retrying; None when a Retry-After is longer than we wait."""
        base = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt_number)
        delay = base * (0.5 + random.random() / 2)
        if retry_after is not None:
            if retry_after > self.settings.backoff_max:
                return None
            delay = max(delay, retry_after)
        return delay

    async def wait_for_cooldown(self, endpoint: Endpoint) -> bool:
        """Wait out a short cooldown; False when it is longer than we are willing to wait."""
        remaining = endpoint.cooldown_until - self.clock()
        if remaining <= 0:
            return True
        if remaining > self.settings.backoff_max:
            return False
        await self.sleep(remaining)
        return True

    async def ask(
        self, request: CallRequest[T], tiers: list[str], *, local_only: bool = False
    ) -> Asked[T]:
        """Call ``tiers`` in order until a reply is usable: within a tier, the least-busy
        healthy endpoint, retried on transient failures, then the next endpoint; invalid or
        truncated replies (``max_invalid_per_tier`` of them) and context overflows escalate."""
        asked: Asked[T] = Asked()
        for tier in tiers:
            endpoints = self.eligible(tier, local_only)
            reason = self.blocked(tier, endpoints)
            if reason:
                asked.reasons.append(reason)
                continue
            await self.detect(endpoints)
            if await self._ask_tier(tier, endpoints, request, asked):
                return asked
        return asked

    async def _ask_tier(
        self, tier: str, endpoints: list[Endpoint], request: CallRequest[T], asked: Asked[T]
    ) -> bool:
        """True when a usable reply came back; False when the tier is spent."""
        invalid = 0
        tried: set[int] = set()
        while (endpoint := self.pick(endpoints, tried)) is not None:
            tried.add(id(endpoint))
            name = endpoint.settings.name
            for attempt_number in range(self.settings.retries + 1):
                if not await self.wait_for_cooldown(endpoint):
                    asked.reasons.append(f"backend {name} rate limited")
                    break
                verdict = await self.call(endpoint, tier, request)
                if verdict is None:
                    asked.reasons.append(f"backend {name} {endpoint.blocked_reason(self.clock())}")
                    break
                asked.calls += 1
                asked.verdict = verdict
                failure = verdict.failure
                if failure is None:
                    return True
                if failure.kind is FailureKind.MISCONFIGURED:
                    asked.reasons.append(endpoint.misconfigured or failure.kind.value)
                    break
                if failure.kind in (FailureKind.INVALID_OUTPUT, FailureKind.TRUNCATED):
                    invalid += 1
                    if invalid >= self.settings.max_invalid_per_tier:
                        return False
                if failure.kind is FailureKind.CONTEXT_OVERFLOW:
                    return False
                if not failure.kind.retryable or attempt_number == self.settings.retries:
                    break
                if failure.kind is FailureKind.INVALID_OUTPUT:
                    continue  # the endpoint is fine; ask again at once
                delay = self.backoff(attempt_number, failure.retry_after)
                if delay is None:
                    break  # the endpoint cools down (see update_health); try the next one
                await self.sleep(delay)
        return False

    async def call(
        self, endpoint: Endpoint, tier: str, request: CallRequest[T]
    ) -> Verdict[T] | None:
        """One recorded model call; None when the endpoint may not be called any more (a
        cooldown or an open breaker that began while this call waited for a slot)."""
        if self._halted is not None:
            raise self._halted
        endpoint.in_flight += 1
        started_at = time.time()
        gpu_summary: dict[str, Any] | None = None
        trial = settled = False
        counted = True  # in_flight still counts this call
        try:
            try:
                async with endpoint.slots:
                    try:
                        now = self.clock()
                        if now < endpoint.cooldown_until:
                            return None
                        trial = endpoint.breaker.state(now) == HALF_OPEN
                        if not endpoint.breaker.claim(now):
                            return None
                        if self._halted is not None:
                            raise self._halted
                        endpoint.calls += 1
                        reply, gpu_summary = await self._chat(endpoint, request.chat)
                    finally:
                        endpoint.in_flight -= 1
                        counted = False
                    verdict = request.judge(reply)
                    update_health(
                        endpoint, verdict.failure, self.clock(), self.settings.backoff_base
                    )
                    settled = True
                    # The slot is held until the attempt is recorded: a write that waits for
                    # the lock (another process holds it) holds back this endpoint's next
                    # call, so a write that then fails stops the run before another call.
                    await self._record(
                        self._attempt(
                            endpoint, tier, request, reply, verdict, started_at, gpu_summary
                        )
                    )
            finally:
                if counted:
                    endpoint.in_flight -= 1
            return verdict
        finally:
            if trial and not settled:
                # Cancelled (or broken) mid-call: the half-open trial must not stay claimed.
                endpoint.breaker.release()

    def _attempt(
        self,
        endpoint: Endpoint,
        tier: str,
        request: CallRequest[T],
        reply: CallResult,
        verdict: Verdict[T],
        started_at: float,
        gpu: dict[str, Any] | None,
    ) -> Attempt:
        s = endpoint.settings
        return Attempt(
            started_at=started_at,
            span_hashes=list(request.span_hashes),
            tier=tier,
            backend=s.name,
            host=display_host(s.url),
            model=s.model,
            outcome=verdict.outcome,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            duration_ms=round(reply.duration_ms, 3),
            failure_type=verdict.failure_type,
            detail=_scrubbed(endpoint, verdict.detail),
            gpu=gpu,
            cost=self._cost(reply.tokens_in, reply.tokens_out, s.price_in, s.price_out),
            enriched=verdict.enriched,
        )

    async def _chat(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> tuple[CallResult, dict[str, Any] | None]:
        """The backend's reply (and GPU summary); any exception becomes a typed failure."""
        started = time.perf_counter()
        try:
            if self._gpu is not None and not endpoint.settings.is_remote:
                # The sampler starts NVML in a worker thread and yields no summary
                # when there is no GPU.
                async with self._gpu.sampling(self._gpu_settings.sample_interval) as samples:
                    reply = await endpoint.backend.chat(request)
                return reply, _summary_of(samples)
            return await endpoint.backend.chat(request), None
        except Exception as exc:
            detail = scrub_for(endpoint, f"{type(exc).__name__}: {exc}")[:300]
            log.warning(
                "backend %s (%s) failed unexpectedly: %s",
                endpoint.settings.name,
                endpoint.display_url,
                detail,
            )
            elapsed = (time.perf_counter() - started) * 1000
            return BackendFailure(FailureKind.BACKEND_ERROR, detail, duration_ms=elapsed), None


def _scrubbed(endpoint: Endpoint, detail: str | None) -> str | None:
    """``detail`` without credentials, each of its lines kept on its own line."""
    if not detail:
        return None
    return "\n".join(scrub_for(endpoint, line) for line in detail.splitlines())


def _summary_of(samples: Any) -> dict[str, Any] | None:
    """The GPU summary a sampling block produced (an object with ``summary()``, or a dict)."""
    summary = getattr(samples, "summary", None)
    if callable(summary):
        with contextlib.suppress(Exception):
            value = summary()
            return value if isinstance(value, dict) and value else None
        return None
    if isinstance(summary, dict):
        return summary or None
    return samples if isinstance(samples, dict) and samples else None
