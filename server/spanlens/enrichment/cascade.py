"""The cascade: call a job's tiers in order until a reply validates.

Within a tier, the least-busy healthy endpoint is called; transport failures are retried with
bounded exponential backoff and jitter (a 429's Retry-After is honoured, or the endpoint is
cooled down and the next one tried), then the call fails over to the tier's next endpoint,
then escalates to the next tier. Invalid replies are retried too, but
``max_invalid_per_tier`` of them escalate early; a truncated reply or a context overflow moves
on at once. Each endpoint has one circuit breaker and one concurrency limit for the life of
the process. Every call is recorded through the ``record`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from spanlens.config import BackendSettings, EnrichmentSettings, GpuSettings
from spanlens.enrichment.backends import (
    Backend,
    BackendFailure,
    ChatReply,
    ChatRequest,
    FailureKind,
)
from spanlens.enrichment.prompts import Prompt, SpanSource, build_prompt
from spanlens.enrichment.validation import Validated, validate_batch_reply, validate_reply
from spanlens.store.enrichments import Attempt

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class GpuProbe(Protocol):
    """The part of :class:`spanlens.telemetry.gpu.GpuSampler` the cascade uses."""

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

    @property
    def settings(self) -> BackendSettings:
        """The endpoint's configuration."""
        return self.backend.settings

    @property
    def load(self) -> float:
        """Calls running or queued, relative to the endpoint's parallelism."""
        return self.in_flight / max(1, self.settings.max_parallel)

    def usable(self, now: float) -> bool:
        """Not cooling down after a 429 and its breaker lets calls through."""
        return now >= self.cooldown_until and self.breaker.can_call(now)


@dataclass(slots=True)
class Job:
    """Spans to enrich in one call (one span, or a batch) and the tiers to try."""

    sources: list[SpanSource]
    tiers: list[str]
    #: The spans must not leave this machine (secret-looking or ignored file).
    local_only: bool = False

    @property
    def is_batch(self) -> bool:
        """A batch tries its starting tier only; invalid entries go to single calls."""
        return len(self.sources) > 1


@dataclass(slots=True)
class Landing:
    """A validated enrichment for one span and the call that produced it."""

    data: dict[str, Any]
    tier: str
    backend: str
    host: str
    model: str
    tokens_in: int
    tokens_out: int
    duration_ms: float


@dataclass(slots=True)
class JobResult:
    """What a job produced: valid enrichments by span id, and why the rest did not land."""

    landed: dict[int, Landing] = field(default_factory=dict)
    #: The last failure seen; None with ``attempted`` False means nothing was tried.
    failure: FailureKind | None = None
    attempted: bool = False
    #: Why nothing was tried (GPU limits, every breaker open), for the deferred outcome.
    deferred_reason: str | None = None


@dataclass(slots=True)
class _Call:
    """One call's outcome inside the cascade."""

    results: dict[int, Validated]
    failure: BackendFailure | None
    reply: ChatReply | BackendFailure


Recorder = Callable[[Attempt], None]
Sleeper = Callable[[float], Awaitable[None]]


class Cascade:
    """Runs jobs over the configured endpoints; see the module docstring."""

    def __init__(
        self,
        endpoints: dict[str, list[Endpoint]],
        settings: EnrichmentSettings,
        record: Recorder,
        *,
        gpu: GpuProbe | None = None,
        gpu_settings: GpuSettings | None = None,
        cost: Callable[[int, int, float, float], float] | None = None,
        sleep: Sleeper = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = endpoints
        self.settings = settings
        self._record = record
        self._gpu = gpu
        self._gpu_settings = gpu_settings or GpuSettings()
        self._cost = cost or (lambda ti, to, pi, po: (ti * pi + to * po) / 1_000_000)
        self._sleep = sleep
        self._clock = clock

    def eligible(self, tier: str, local_only: bool) -> list[Endpoint]:
        """A tier's endpoints that may receive a job (remote ones only when allowed)."""
        endpoints = self.endpoints.get(tier, [])
        if local_only:
            return [ep for ep in endpoints if not ep.settings.is_remote]
        return list(endpoints)

    def tier_contexts(self, local_only: bool) -> dict[str, int]:
        """Usable tiers in escalation order, each with its smallest context window."""
        contexts: dict[str, int] = {}
        for tier in self.settings.tiers:
            endpoints = self.eligible(tier, local_only)
            if endpoints:
                contexts[tier] = min(ep.settings.context_tokens for ep in endpoints)
        return contexts

    async def run(self, job: Job) -> JobResult:
        """Try the job's tiers in order until every span landed or all tiers are spent."""
        result = JobResult()
        reasons: list[str] = []
        for tier in job.tiers:
            endpoints = self.eligible(tier, job.local_only)
            reason = self._tier_blocked(tier, endpoints)
            if reason:
                reasons.append(reason)
                continue
            context = min(ep.settings.context_tokens for ep in endpoints)
            prompt = build_prompt(job.sources, context)
            if job.is_batch and prompt.excerpted:
                reasons.append("batch does not fit the context")
                break
            done = await self._run_tier(tier, endpoints, prompt, job, result)
            if done or job.is_batch:
                break
        if not result.attempted and reasons:
            result.deferred_reason = reasons[0]
        return result

    def _tier_blocked(self, tier: str, endpoints: list[Endpoint]) -> str | None:
        if not endpoints:
            return f"no backend of tier {tier} may receive this file"
        now = self._clock()
        if not any(ep.usable(now) for ep in endpoints):
            return f"all backends of tier {tier} unavailable (circuit open or rate limited)"
        if self._gpu is not None and all(not ep.settings.is_remote for ep in endpoints):
            limits = self._gpu_settings
            if (limits.min_free_vram_mb or limits.max_temperature_c) and self._gpu.available:
                why = self._gpu.limits_exceeded(limits.min_free_vram_mb, limits.max_temperature_c)
                if why:
                    return f"GPU busy: {why}"
        return None

    async def _run_tier(
        self, tier: str, endpoints: list[Endpoint], prompt: Prompt, job: Job, result: JobResult
    ) -> bool:
        """True when the job is finished (something landed), False to escalate."""
        invalid = 0
        tried: set[int] = set()
        while True:
            endpoint = self._pick(endpoints, tried)
            if endpoint is None:
                return False
            tried.add(id(endpoint))
            for attempt_number in range(self.settings.retries + 1):
                if not endpoint.breaker.claim(self._clock()):
                    break
                call = await self._call(endpoint, tier, prompt, job)
                result.attempted = True
                landed = self._land(call, endpoint, tier, result)
                if landed:
                    return True
                failure = call.failure
                assert failure is not None
                result.failure = failure.kind
                if failure.kind in (FailureKind.INVALID_OUTPUT, FailureKind.TRUNCATED):
                    invalid += 1
                    if job.is_batch or invalid >= self.settings.max_invalid_per_tier:
                        return False
                if failure.kind is FailureKind.CONTEXT_OVERFLOW:
                    return False
                if not failure.kind.retryable or attempt_number == self.settings.retries:
                    break
                if failure.kind is FailureKind.INVALID_OUTPUT:
                    continue  # the endpoint is fine; ask again at once
                delay = self._backoff(attempt_number, failure.retry_after)
                if delay is None:
                    endpoint.cooldown_until = self._clock() + (failure.retry_after or 0.0)
                    break
                await self._sleep(delay)

    def _pick(self, endpoints: list[Endpoint], tried: set[int]) -> Endpoint | None:
        """The least-busy usable endpoint not yet tried for this job."""
        now = self._clock()
        candidates = [ep for ep in endpoints if id(ep) not in tried and ep.usable(now)]
        if not candidates:
            return None
        return min(candidates, key=lambda ep: (ep.load, ep.calls))

    def _backoff(self, attempt_number: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retrying; None when a Retry-After is longer than we wait."""
        base = min(self.settings.backoff_max, self.settings.backoff_base * 2**attempt_number)
        delay = base * (0.5 + random.random() / 2)
        if retry_after is not None:
            if retry_after > self.settings.backoff_max:
                return None
            delay = max(delay, retry_after)
        return delay

    async def _call(self, endpoint: Endpoint, tier: str, prompt: Prompt, job: Job) -> _Call:
        request = ChatRequest(prompt.messages, prompt.schema, prompt.max_tokens, prompt.schema_name)
        endpoint.in_flight += 1
        started_at = time.time()
        gpu_summary: dict[str, Any] | None = None
        try:
            async with endpoint.slots:
                endpoint.calls += 1
                if self._gpu is not None and not endpoint.settings.is_remote:
                    # The sampler starts NVML in a worker thread and yields no summary
                    # when there is no GPU.
                    async with self._gpu.sampling(self._gpu_settings.sample_interval) as samples:
                        reply = await endpoint.backend.chat(request)
                    gpu_summary = _summary_of(samples)
                else:
                    reply = await endpoint.backend.chat(request)
        finally:
            endpoint.in_flight -= 1
        call = self._judge(reply, prompt)
        self._update_health(endpoint, call.failure)
        self._record(self._attempt(endpoint, tier, job, reply, call, started_at, gpu_summary))
        return call

    def _judge(self, reply: ChatReply | BackendFailure, prompt: Prompt) -> _Call:
        if isinstance(reply, BackendFailure):
            return _Call({}, reply, reply)
        if prompt.is_batch:
            results = validate_batch_reply(reply.text, prompt.contexts)
        else:
            results = {prompt.contexts[0].span_id: validate_reply(reply.text, prompt.contexts[0])}
        if any(r.ok for r in results.values()):
            return _Call(results, None, reply)
        detail = "; ".join(r.describe() for r in results.values())[:300]
        return _Call(
            results,
            BackendFailure(
                FailureKind.INVALID_OUTPUT,
                detail,
                tokens_in=reply.tokens_in,
                tokens_out=reply.tokens_out,
                duration_ms=reply.duration_ms,
            ),
            reply,
        )

    def _update_health(self, endpoint: Endpoint, failure: BackendFailure | None) -> None:
        if failure is None:
            endpoint.breaker.success()
            endpoint.last_error = None
            endpoint.last_failure = None
            return
        endpoint.last_error = f"{failure.kind.value}: {failure.detail}"[:300]
        endpoint.last_failure = failure.kind
        log.debug("%s (%s): %s", endpoint.settings.name, endpoint.settings.url, endpoint.last_error)
        if failure.kind.hurts_endpoint:
            was_open = endpoint.breaker.opened_at is not None
            endpoint.breaker.failure(self._clock())
            if endpoint.breaker.opened_at is not None and not was_open:
                log.warning(
                    "backend %s (%s) failing (%s); pausing it for %.0fs",
                    endpoint.settings.name,
                    endpoint.settings.url,
                    failure.kind.value,
                    endpoint.breaker.reset_after,
                )
        elif failure.kind is FailureKind.RATE_LIMITED:
            endpoint.breaker.release()
        else:
            # It answered: the endpoint is healthy even if the model's reply was not.
            endpoint.breaker.success()

    def _land(self, call: _Call, endpoint: Endpoint, tier: str, result: JobResult) -> bool:
        """Collect the call's valid enrichments; its tokens and time are split over them."""
        valid = {
            span_id: v.data
            for span_id, v in call.results.items()
            if v.ok and v.data is not None and span_id not in result.landed
        }
        if not valid:
            return False
        s = endpoint.settings
        share = len(valid)
        reply = call.reply
        for span_id, data in valid.items():
            result.landed[span_id] = Landing(
                data,
                tier,
                s.name,
                _host(s.url),
                s.model,
                reply.tokens_in // share,
                reply.tokens_out // share,
                reply.duration_ms / share,
            )
        return True

    def _attempt(
        self,
        endpoint: Endpoint,
        tier: str,
        job: Job,
        reply: ChatReply | BackendFailure,
        call: _Call,
        started_at: float,
        gpu: dict[str, Any] | None,
    ) -> Attempt:
        s = endpoint.settings
        enriched = sum(1 for r in call.results.values() if r.ok)
        failure = call.failure
        if enriched == len(job.sources):
            outcome = "ok"
        elif enriched:
            outcome = "partial"
        else:
            outcome = "failed"
        return Attempt(
            started_at=started_at,
            span_hashes=[source.span.content_hash for source in job.sources],
            tier=tier,
            backend=s.name,
            host=_host(s.url),
            model=s.model,
            outcome=outcome,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            duration_ms=round(reply.duration_ms, 3),
            failure_type=failure.kind.value if failure else _partial_note(call),
            detail=(failure.detail if failure else None),
            gpu=gpu,
            cost=self._cost(reply.tokens_in, reply.tokens_out, s.price_in, s.price_out),
            enriched=enriched,
        )


def _partial_note(call: _Call) -> str | None:
    bad = sum(1 for r in call.results.values() if not r.ok)
    return FailureKind.INVALID_OUTPUT.value if bad else None


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


def _host(url: str) -> str:
    parsed = urlparse(url)
    return parsed.netloc or url
