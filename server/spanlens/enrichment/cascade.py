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
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from spanlens.config import BackendSettings, EnrichmentSettings, GpuSettings
from spanlens.enrichment.backends import (
    Backend,
    BackendFailure,
    ChatReply,
    ChatRequest,
    FailureKind,
    display_host,
    display_url,
    endpoint_secrets,
    provider_for,
    scrub,
)
from spanlens.enrichment.backends.capabilities import Capabilities
from spanlens.enrichment.prompts import (
    TEMPLATE_TOKENS_PER_MESSAGE,
    Prompt,
    SpanSource,
    build_prompt,
    prompt_text,
    with_more_reply_room,
)
from spanlens.enrichment.validation import Validated, validate_batch_reply, validate_reply
from spanlens.store.enrichments import Attempt

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

# What running one tier of a job came to (see Cascade._run_tier).
_DONE = "done"
_ESCALATE = "escalate"
_UNAVAILABLE = "unavailable"


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
    def capabilities(self) -> Capabilities | None:
        """What the backend detected about the endpoint (None: a backend without detection)."""
        caps = getattr(self.backend, "capabilities", None)
        return caps if isinstance(caps, Capabilities) else None

    @property
    def parallel(self) -> int:
        """Calls the endpoint takes at once: ``max_parallel``, never more than its slots."""
        caps = self.capabilities
        slots = caps.slots if caps is not None and caps.slots else None
        return max(1, min(self.settings.max_parallel, slots or self.settings.max_parallel))

    @property
    def context_tokens(self) -> int:
        """Context one request may use: the configured window, or less when the server's
        context per slot is smaller (llama.cpp splits its context across its slots)."""
        caps = self.capabilities
        per_slot = caps.context_per_slot if caps is not None else None
        return min(self.settings.context_tokens, per_slot or self.settings.context_tokens)

    async def detect(self, timeout: float) -> None:
        """Learn the endpoint's capabilities once; the concurrency limit follows its slots."""
        caps = self.capabilities
        detect = getattr(self.backend, "detect", None)
        if caps is None or caps.detected or detect is None:
            return
        await detect(timeout)
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
    #: Why the job is deferred rather than failed: nothing was tried, or a transient endpoint
    #: state (rate limit, open breaker, GPU limits) stopped it before its tiers were spent.
    deferred_reason: str | None = None
    #: The deferral is transient: waiting may let the job run (see ``deferred_reason``).
    transient: bool = False
    #: Why endpoints could not take the job for reasons that are not the span's fault
    #: (misconfigured, or cooling down after a rate limit).
    endpoint_problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Call:
    """One call's outcome inside the cascade."""

    results: dict[int, Validated]
    failure: BackendFailure | None
    reply: ChatReply | BackendFailure


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
        for tier in job.tiers:
            endpoints = self.eligible(tier, job.local_only)
            reason = self._tier_blocked(tier, endpoints)
            if reason:
                reasons.append(reason)
                result.transient = result.transient or bool(endpoints)
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
                    return f"GPU busy: {why}"
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
                if self._land(call, endpoint, tier, result):
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
                    # The endpoint cools down (see _update_health); try the next one.
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
        request = ChatRequest(prompt.messages, prompt.schema, prompt.max_tokens, prompt.schema_name)
        endpoint.in_flight += 1
        started_at = time.time()
        gpu_summary: dict[str, Any] | None = None
        trial = settled = False
        try:
            try:
                async with endpoint.slots:
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
            call = self._judge(reply, prompt)
            self._update_health(endpoint, call.failure)
            settled = True
            attempt = self._attempt(endpoint, tier, job, reply, call, started_at, gpu_summary)
            await self._record(attempt)
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
            detail = self._scrub(endpoint, f"{type(exc).__name__}: {exc}")[:300]
            log.warning(
                "backend %s (%s) failed unexpectedly: %s",
                endpoint.settings.name,
                endpoint.display_url,
                detail,
            )
            elapsed = (time.perf_counter() - started) * 1000
            return BackendFailure(FailureKind.BACKEND_ERROR, detail, duration_ms=elapsed), None

    @staticmethod
    def _scrub(endpoint: Endpoint, text: str) -> str:
        return scrub(text, endpoint_secrets(endpoint.settings))

    def _judge(self, reply: ChatReply | BackendFailure, prompt: Prompt) -> _Call:
        if isinstance(reply, BackendFailure):
            return _Call({}, reply, reply)
        try:
            if prompt.is_batch:
                results = validate_batch_reply(reply.text, prompt.contexts)
            else:
                context = prompt.contexts[0]
                results = {context.span_id: validate_reply(reply.text, context)}
        except Exception as exc:  # a reply, however odd, is invalid output, never a crash
            log.warning("validating a reply failed: %s", type(exc).__name__)
            failure = BackendFailure(
                FailureKind.INVALID_OUTPUT,
                f"reply could not be validated ({type(exc).__name__})",
                tokens_in=reply.tokens_in,
                tokens_out=reply.tokens_out,
                duration_ms=reply.duration_ms,
            )
            return _Call({}, failure, reply)
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
            endpoint.misconfigured = None
            return
        now = self._clock()
        name, url = endpoint.settings.name, endpoint.display_url
        endpoint.last_error = self._scrub(endpoint, f"{failure.kind.value}: {failure.detail}")[:300]
        endpoint.last_failure = failure.kind
        log.debug("%s (%s): %s", name, url, endpoint.last_error)
        if failure.retry_after is not None or failure.kind is FailureKind.RATE_LIMITED:
            # Every job stops calling it, not just the one that was told to wait.
            pause = (
                failure.retry_after
                if failure.retry_after is not None
                else self.settings.backoff_base
            )
            endpoint.cooldown_until = max(endpoint.cooldown_until, now + pause)
        if failure.kind is FailureKind.MISCONFIGURED:
            endpoint.misconfigured = self._scrub(
                endpoint, misconfiguration_message(endpoint, failure)
            )
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
                display_host(s.url),
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
            host=display_host(s.url),
            model=s.model,
            outcome=outcome,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            duration_ms=round(reply.duration_ms, 3),
            failure_type=failure.kind.value if failure else _partial_note(call),
            detail=(self._scrub(endpoint, failure.detail) if failure else None),
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


def _roomier_after(call: _Call | None, prompt: Prompt) -> Prompt | None:
    """A prompt with more reply room when ``call`` was cut off at the token limit."""
    if call is None or call.failure is None or call.failure.kind is not FailureKind.TRUNCATED:
        return None
    return with_more_reply_room(prompt)
