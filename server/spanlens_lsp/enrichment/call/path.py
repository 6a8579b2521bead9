"""The call path: every structured model call goes through here, whatever it is for.

A :class:`CallRequest` is data: the chat request (messages, schema, reply bound) and a
``judge`` that says what a reply came to (a :class:`Verdict`). The path does not know what a
span or a file overview is. It owns, per endpoint and for the life of the process, what every
call must respect: the concurrency limit (``max_parallel``, never more than the server's
slots), the cool-down after a rate limit, the circuit breaker, the GPU gate (local endpoints
wait while GPU limits are exceeded), GPU sampling, and the ``attempts`` row of each call.
Endpoint health is updated here, once after every call (``update_health``).

:meth:`CallPath.call` is one call on one endpoint; :meth:`CallPath.ask_tier` calls one tier's
endpoints as the retry policy (:mod:`spanlens_lsp.enrichment.call.retry`) decides, and
:meth:`CallPath.ask` does so tier after tier. The span cascade
(:mod:`spanlens_lsp.enrichment.call.cascade`) calls :meth:`CallPath.ask_tier` itself, because it
re-fits its prompt to each tier and splits batches; a truncated reply's more room and a
batch's escalation are fields of the request, so spans and overviews are retried alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from spanlens_lsp.enrichment.backends.base import (
    Backend,
    BackendFailure,
    CallResult,
    ChatRequest,
    FailureKind,
)
from spanlens_lsp.enrichment.backends.urls import display_host
from spanlens_lsp.enrichment.call.endpoints import (
    HALF_OPEN,
    Endpoint,
    GpuProbe,
    scrub_for,
    update_health,
)
from spanlens_lsp.enrichment.call.retry import RetryPolicy, Step
from spanlens_lsp.settings import EnrichmentSettings, GpuSettings
from spanlens_lsp.store.enrichments import Attempt

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

    #: The chat call to make; None for a call that is no chat (see ``send``).
    chat: ChatRequest | None
    #: Turns the backend's reply (or typed failure) into a :class:`Verdict`; never raises.
    judge: Callable[[CallResult], Verdict[T]]
    #: The content hashes of the spans the call is about (none for a file's overview).
    span_hashes: tuple[str, ...] = ()
    #: The same request with more reply room, for a reply cut off at the token limit (None
    #: when it is at its ceiling); None for a request that cannot grow.
    roomier: Callable[[], CallRequest[T] | None] | None = None
    #: A reply cut off at the token limit ends the tier at once (a batch: split instead).
    truncated_escalates: bool = False
    #: Makes a call that is no chat on the endpoint's backend (an embedding request).
    send: Callable[[Backend], Awaitable[CallResult]] | None = None
    #: The request to send after a reply rejected as invalid output (the same one saying
    #: why: see :func:`~spanlens_lsp.enrichment.prompt.build.with_rejection`); None: resent
    #: as it is.
    revise: Callable[[Verdict[T]], CallRequest[T] | None] | None = None

    def after_rejection(self, verdict: Verdict[T] | None) -> CallRequest[T]:
        """What to send after ``verdict``: :attr:`revise`'s request when the reply was
        rejected as invalid output, else this one."""
        failure = verdict.failure if verdict is not None else None
        if self.revise is None or failure is None or verdict is None:
            return self
        if failure.kind is not FailureKind.INVALID_OUTPUT:
            return self
        return self.revise(verdict) or self

    def exchange(self, backend: Backend) -> Awaitable[CallResult]:
        """The call on ``backend``: ``send``, or the chat call."""
        if self.send is not None:
            return self.send(backend)
        if self.chat is None:
            raise ValueError("a call request needs a chat request or a send function")
        return backend.chat(self.chat)


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
    #: The endpoint that gave ``verdict``.
    endpoint: Endpoint | None = None
    #: The last failure that counts against the request (not a rate limit or a
    #: misconfiguration); None when none did.
    failure: FailureKind | None = None


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
        retry: RetryPolicy | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.settings = settings
        #: When to retry, fail over, escalate or defer (from ``settings`` unless given).
        self.retry = retry or RetryPolicy.from_settings(settings)
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

    async def ask(
        self, request: CallRequest[T], tiers: list[str], *, local_only: bool = False
    ) -> Asked[T]:
        """Call ``tiers`` in order until a reply is usable, each as :meth:`ask_tier` does."""
        asked: Asked[T] = Asked()
        for tier in tiers:
            endpoints = self.eligible(tier, local_only)
            reason = self.blocked(tier, endpoints)
            if reason:
                asked.reasons.append(reason)
                continue
            await self.detect(endpoints)
            if await self.ask_tier(tier, endpoints, request, asked) is Step.DONE:
                return asked
        return asked

    async def ask_tier(
        self, tier: str, endpoints: list[Endpoint], request: CallRequest[T], asked: Asked[T]
    ) -> Step:
        """Call one tier's ``endpoints`` as the retry policy decides (see
        :mod:`spanlens_lsp.enrichment.call.retry`): the least-busy usable endpoint, retried, then
        the next one. Returns DONE (a usable reply: ``asked.verdict``), ESCALATE (the tier is
        spent on the replies' merits) or DEFER (endpoint state stopped it); what was called,
        why and what counted against the request are added to ``asked``."""
        tries = self.retry.tier(truncated_escalates=request.truncated_escalates)
        try:
            while (endpoint := self.pick(endpoints, tries.tried)) is not None:
                tries.begin(endpoint)
                while (wait := tries.wait_before_call(endpoint, self.clock())) is not None:
                    if wait > 0:
                        await self.sleep(wait)
                    verdict = await self._asked(endpoint, tier, request, asked)
                    roomier = tries.roomier(verdict, request.roomier)
                    if roomier is not None and roomier.request is not None:
                        request = roomier.request
                        verdict = await self._asked(endpoint, tier, request, asked)
                    decision = tries.after_call(endpoint, verdict, self.clock())
                    if decision.step in (Step.DONE, Step.ESCALATE):
                        return decision.step
                    # A retry (here or on the tier's next endpoint) says why the reply failed.
                    request = request.after_rejection(verdict)
                    if decision.step is not Step.RETRY:
                        break
                    if decision.delay > 0:
                        await self.sleep(decision.delay)
            return tries.end(endpoints)
        finally:
            asked.reasons.extend(tries.problems)
            asked.failure = tries.failure or asked.failure

    async def _asked(
        self, endpoint: Endpoint, tier: str, request: CallRequest[T], asked: Asked[T]
    ) -> Verdict[T] | None:
        """:meth:`call`, counted in ``asked``."""
        verdict = await self.call(endpoint, tier, request)
        if verdict is not None:
            asked.calls += 1
            asked.verdict = verdict
            asked.endpoint = endpoint
        return verdict

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
                        reply, gpu_summary = await self._chat(endpoint, request)
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
        self, endpoint: Endpoint, request: CallRequest[Any]
    ) -> tuple[CallResult, dict[str, Any] | None]:
        """The backend's reply (and GPU summary); any exception becomes a typed failure."""
        started = time.perf_counter()
        try:
            if self._gpu is not None and not endpoint.settings.is_remote:
                # The sampler starts NVML in a worker thread and yields no summary
                # when there is no GPU.
                async with self._gpu.sampling(self._gpu_settings.sample_interval) as samples:
                    reply = await request.exchange(endpoint.backend)
                return reply, _summary_of(samples)
            return await request.exchange(endpoint.backend), None
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
