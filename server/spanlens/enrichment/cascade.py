"""The cascade: call a job's tiers in order until a reply validates.

Within a tier, the least-busy healthy endpoint is called; transport failures are retried with
bounded exponential backoff and jitter (a 429's Retry-After is honoured, or the endpoint is
cooled down and the next one tried), then the call fails over to the tier's next endpoint,
then escalates to the next tier. Invalid replies are retried too, but
``max_invalid_per_tier`` of them escalate early; a truncated reply or a context overflow moves
on at once. Each endpoint has one circuit breaker and one concurrency limit for the life of
the process; the breaker counts endpoint health only (refused, timeouts, 5xx, dropped
connections), never the model's output. A job that a transient endpoint state (a rate
limit's cool-down, an open breaker, GPU limits) kept from running its tiers is deferred, not
failed: a 429 is never the span's failure. Every call is recorded through the ``record``
callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from spanlens.config import EnrichmentSettings, GpuSettings
from spanlens.enrichment.backends import (
    BackendFailure,
    ChatReply,
    ChatRequest,
    FailureKind,
)
from spanlens.enrichment.endpoints import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    Endpoint,
    GpuProbe,
    _scrub,
    update_health,
)
from spanlens.enrichment.jobs import (
    Job,
    JobResult,
    _Call,
    _roomier_after,
    attempt_row,
    judge_reply,
    land_call,
)
from spanlens.enrichment.prompts import (
    TEMPLATE_TOKENS_PER_MESSAGE,
    Prompt,
    SpanSource,
    build_prompt,
    prompt_text,
)
from spanlens.states import DeferralKind
from spanlens.store.enrichments import Attempt

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "Breaker",
    "Cascade",
    "Endpoint",
    "GpuProbe",
    "Job",
    "JobResult",
]

log = logging.getLogger(__name__)

#: How a tier held back by GPU limits is described (the job's deferral is then of kind GPU).
GPU_BUSY = "GPU busy"


# What running one tier of a job came to (see Cascade._run_tier).
_DONE = "done"
_ESCALATE = "escalate"
_UNAVAILABLE = "unavailable"


Recorder = Callable[[Attempt], Awaitable[None]]
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
        #: Set by :meth:`halt`: raised by every call from then on.
        self._halted: BaseException | None = None

    def halt(self, reason: BaseException | None) -> None:
        """Make no model call any more: every later call raises ``reason`` instead (a store
        write failed, so nothing a call returns could be recorded); None lifts the halt."""
        self._halted = reason

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
                contexts[tier] = min(ep.context_tokens for ep in endpoints)
        return contexts

    async def run(self, job: Job) -> JobResult:
        """Try the job's tiers in order until every span landed or all tiers are spent.

        A tier skipped or cut short by a transient endpoint state (a rate limit's cool-down,
        an open breaker, GPU limits) defers the job instead of failing it: the span is not to
        blame, and a later try may land it.
        """
        result = JobResult()
        reasons: list[str] = []
        gpu_busy = False
        for tier in job.tiers:
            endpoints = self.eligible(tier, job.local_only)
            reason = self._tier_blocked(tier, endpoints)
            if reason:
                reasons.append(reason)
                result.transient = result.transient or bool(endpoints)
                gpu_busy = gpu_busy or reason.startswith(GPU_BUSY)
                continue
            for endpoint in endpoints:
                await endpoint.detect(min(5.0, endpoint.settings.timeout))
            context = min(ep.context_tokens for ep in endpoints)
            prompt = await self._fitted_prompt(job.sources, context, endpoints)
            if prompt is not None and job.is_batch and prompt.excerpted:
                reasons.append("batch does not fit the context")
                break
            if prompt is None:
                # Even the smallest excerpt would overflow the context: refused before
                # sending (a call could only fail), and the next tier may have more room.
                if job.is_batch:
                    reasons.append("batch does not fit the context")
                    break
                result.attempted = True
                result.failure = FailureKind.CONTEXT_OVERFLOW
                continue
            verdict = await self._run_tier(tier, endpoints, prompt, job, result)
            if verdict == _UNAVAILABLE:
                result.transient = True
            if verdict == _DONE or job.is_batch:
                break
        if not result.landed and (result.transient or not result.attempted):
            problems = result.endpoint_problems or reasons
            if problems:
                result.deferred_reason = problems[-1] if result.transient else problems[0]
                if gpu_busy and result.deferred_reason.startswith(GPU_BUSY):
                    result.deferred_kind = DeferralKind.GPU
            elif result.transient:
                result.deferred_reason = "backends paused"
        return result

    async def _fitted_prompt(
        self, sources: list[SpanSource], context: int, endpoints: list[Endpoint]
    ) -> Prompt | None:
        """The prompt fitted to ``context``, measured with a server tokenizer when one of the
        tier's endpoints has one (the estimate recalibrated when it was off); None when even
        its smallest form does not fit."""
        prompt = build_prompt(sources, context)
        counter = next(
            (
                ep.backend
                for ep in endpoints
                if ep.capabilities is not None and ep.capabilities.tokenizer
            ),
            None,
        )
        if counter is None:
            return prompt if prompt.tokens + prompt.max_tokens <= context else None
        timeout = min(5.0, counter.settings.timeout)
        for _ in range(2):
            counted = await counter.count_tokens(prompt_text(prompt), timeout)  # type: ignore[attr-defined]
            if not counted:
                return prompt
            counted += TEMPLATE_TOKENS_PER_MESSAGE * len(prompt.messages)
            if counted + prompt.max_tokens <= context:
                return prompt
            ratio = max(1.0, counted / max(1, prompt.tokens)) * 1.05
            prompt = build_prompt(sources, context, ratio)
        return None

    def _tier_blocked(self, tier: str, endpoints: list[Endpoint]) -> str | None:
        if not endpoints:
            return f"no backend of tier {tier} may receive this file"
        now = self._clock()
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

    async def _run_tier(
        self, tier: str, endpoints: list[Endpoint], prompt: Prompt, job: Job, result: JobResult
    ) -> str:
        """_DONE (something landed), _ESCALATE (the tier is spent on the span's merits), or
        _UNAVAILABLE (a transient endpoint state stopped it: not the span's fault)."""
        invalid = 0
        grew = False
        tried: set[int] = set()
        interrupted = False
        while True:
            endpoint = self._pick(endpoints, tried)
            if endpoint is None:
                untried = any(id(ep) not in tried for ep in endpoints)
                return _UNAVAILABLE if interrupted or untried else _ESCALATE
            tried.add(id(endpoint))
            for attempt_number in range(self.settings.retries + 1):
                if not await self._wait_for_cooldown(endpoint):
                    interrupted = True
                    result.endpoint_problems.append(
                        f"backend {endpoint.settings.name} rate limited"
                    )
                    break
                call = await self._call(endpoint, tier, prompt, job)
                roomier = None if grew or job.is_batch else _roomier_after(call, prompt)
                if roomier is not None:
                    # The reply ran out of room, not out of sense: once, with twice the room.
                    prompt, grew = roomier, True
                    call = await self._call(endpoint, tier, prompt, job)
                if call is None:  # the endpoint cooled down or its breaker opened meanwhile
                    interrupted = True
                    result.endpoint_problems.append(
                        f"backend {endpoint.settings.name} {endpoint.blocked_reason(self._clock())}"
                    )
                    break
                failure = call.failure
                if failure is not None and failure.kind is FailureKind.MISCONFIGURED:
                    # Not the span's fault: fail over without counting it against the span.
                    interrupted = True
                    result.endpoint_problems.append(endpoint.misconfigured or failure.kind.value)
                    break
                if land_call(call, endpoint, tier, result):
                    return _DONE
                assert failure is not None
                if failure.kind is FailureKind.RATE_LIMITED:
                    # The endpoint's state, not the span's failure.
                    if attempt_number == self.settings.retries:
                        interrupted = True
                        result.endpoint_problems.append(
                            f"backend {endpoint.settings.name} rate limited"
                        )
                        break
                else:
                    result.attempted = True
                    result.failure = failure.kind
                if failure.kind in (FailureKind.INVALID_OUTPUT, FailureKind.TRUNCATED):
                    invalid += 1
                    # A batch cut off at the token limit is too big for one reply: split it
                    # at once. A garbled one is asked again first, like a single span:
                    # splitting costs a call per span.
                    too_long = job.is_batch and failure.kind is FailureKind.TRUNCATED
                    if too_long or invalid >= self.settings.max_invalid_per_tier:
                        return _ESCALATE
                if failure.kind is FailureKind.CONTEXT_OVERFLOW:
                    return _ESCALATE
                if not failure.kind.retryable or attempt_number == self.settings.retries:
                    break
                if failure.kind is FailureKind.INVALID_OUTPUT:
                    continue  # the endpoint is fine; ask again at once
                delay = self._backoff(attempt_number, failure.retry_after)
                if delay is None:
                    # The endpoint cools down (see update_health); try the next one.
                    interrupted = interrupted or failure.kind is FailureKind.RATE_LIMITED
                    break
                await self._sleep(delay)

    async def _wait_for_cooldown(self, endpoint: Endpoint) -> bool:
        """Wait out a short cooldown; False when it is longer than we are willing to wait."""
        remaining = endpoint.cooldown_until - self._clock()
        if remaining <= 0:
            return True
        if remaining > self.settings.backoff_max:
            return False
        await self._sleep(remaining)
        return True

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

    async def _call(self, endpoint: Endpoint, tier: str, prompt: Prompt, job: Job) -> _Call | None:
        """One recorded model call; None when the endpoint may not be called any more (a
        cooldown or an open breaker that began while this call waited for a slot)."""
        if self._halted is not None:
            raise self._halted
        request = ChatRequest(
            prompt.messages, prompt.schema, prompt.max_tokens, prompt.schema_name, prompt.cache_key
        )
        endpoint.in_flight += 1
        started_at = time.time()
        gpu_summary: dict[str, Any] | None = None
        trial = settled = False
        counted = True  # in_flight still counts this call
        try:
            try:
                async with endpoint.slots:
                    try:
                        now = self._clock()
                        if now < endpoint.cooldown_until:
                            return None
                        trial = endpoint.breaker.state(now) == HALF_OPEN
                        if not endpoint.breaker.claim(now):
                            return None
                        if self._halted is not None:
                            raise self._halted
                        endpoint.calls += 1
                        reply, gpu_summary = await self._chat(endpoint, request)
                    finally:
                        endpoint.in_flight -= 1
                        counted = False
                    call = judge_reply(reply, prompt)
                    update_health(endpoint, call.failure, self._clock(), self.settings.backoff_base)
                    settled = True
                    attempt = attempt_row(
                        endpoint, tier, job, reply, call, started_at, gpu_summary, self._cost
                    )
                    # The slot is held until the attempt is recorded: a write that waits for
                    # the lock (another process holds it) holds back this endpoint's next
                    # call, so a write that then fails stops the run before another call.
                    await self._record(attempt)
            finally:
                if counted:
                    endpoint.in_flight -= 1
            return call
        finally:
            if trial and not settled:
                # Cancelled (or broken) mid-call: the half-open trial must not stay claimed.
                endpoint.breaker.release()

    async def _chat(
        self, endpoint: Endpoint, request: ChatRequest
    ) -> tuple[ChatReply | BackendFailure, dict[str, Any] | None]:
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
            detail = _scrub(endpoint, f"{type(exc).__name__}: {exc}")[:300]
            log.warning(
                "backend %s (%s) failed unexpectedly: %s",
                endpoint.settings.name,
                endpoint.display_url,
                detail,
            )
            elapsed = (time.perf_counter() - started) * 1000
            return BackendFailure(FailureKind.BACKEND_ERROR, detail, duration_ms=elapsed), None


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
