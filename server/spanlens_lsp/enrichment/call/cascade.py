"""The cascade: call a plan's tiers in order until a reply validates.

Each tier's endpoints are called through the one call path
(:meth:`~spanlens_lsp.enrichment.call.path.CallPath.ask_tier`), retried, failed over and escalated
as the one retry policy (:mod:`spanlens_lsp.enrichment.call.retry`) decides, exactly as a file
overview is; the path holds the endpoint's slot, breaker and cool-down and records the call.
The cascade adds what is particular to spans: fitting the prompt to a tier's context, judging
the reply against the spans, landing valid entries, letting a single span's truncated reply
grow its room and a truncated batch escalate (to be split). A plan that a transient endpoint
state (a rate limit's cool-down, an open breaker, GPU limits) kept from running its tiers is
deferred, not failed: a 429 is never the span's failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from spanlens_lsp.enrichment.backends.base import ChatRequest, FailureKind
from spanlens_lsp.enrichment.backends.urls import display_host
from spanlens_lsp.enrichment.call.endpoints import Endpoint
from spanlens_lsp.enrichment.call.path import GPU_BUSY, Asked, CallPath, CallRequest, Verdict
from spanlens_lsp.enrichment.call.retry import Step
from spanlens_lsp.enrichment.planning.calls import CallPlan
from spanlens_lsp.enrichment.prompt.build import (
    TEMPLATE_TOKENS_PER_MESSAGE,
    Prompt,
    build_prompt,
    prompt_text,
    with_more_reply_room,
    with_rejection,
)
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.enrichment.reply.judge import SpanCall, judge_reply
from spanlens_lsp.enrichment.reply.validate import rejection_detail
from spanlens_lsp.states import DeferralKind

log = logging.getLogger(__name__)


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
class PlanResult:
    """What a call plan produced: valid enrichments by span id, and why the rest did not land."""

    landed: dict[int, Landing] = field(default_factory=dict)
    #: The last failure seen; None with ``attempted`` False means nothing was tried.
    failure: FailureKind | None = None
    attempted: bool = False
    #: Why the plan is deferred rather than failed: nothing was tried, or a transient endpoint
    #: state (rate limit, open breaker, GPU limits) stopped it before its tiers were spent.
    deferred_reason: str | None = None
    #: What kind of state ``deferred_reason`` describes (GPU limits, or an endpoint's).
    deferred_kind: DeferralKind = DeferralKind.UNAVAILABLE
    #: The deferral is transient: waiting may let the plan run (see ``deferred_reason``).
    transient: bool = False
    #: Why endpoints could not take the plan for reasons that are not the span's fault
    #: (misconfigured, or cooling down after a rate limit).
    endpoint_problems: list[str] = field(default_factory=list)
    #: Why the last reply was rejected, by span id (the validator's reasons): the next call
    #: of the plan, in this tier or the next, says so (see ``with_rejection``).
    rejections: dict[int, list[str]] = field(default_factory=dict)


def rejections(call: SpanCall) -> dict[int, list[str]]:
    """The validator's reasons for each span of ``call`` whose reply was rejected."""
    return {span_id: r.errors for span_id, r in call.results.items() if not r.ok and r.errors}


def land_call(call: SpanCall, endpoint: Endpoint, tier: str, result: PlanResult) -> bool:
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


def _partial_note(call: SpanCall) -> str | None:
    bad = sum(1 for r in call.results.values() if not r.ok)
    return FailureKind.INVALID_OUTPUT.value if bad else None


def span_verdict(call: SpanCall, plan: CallPlan) -> Verdict[SpanCall]:
    """What the call path records of one span call (its ``attempts`` row's outcome)."""
    enriched = sum(1 for r in call.results.values() if r.ok)
    failure = call.failure
    if enriched == len(plan.sources):
        outcome = "ok"
    elif enriched:
        outcome = "partial"
    else:
        outcome = "failed"
    return Verdict(
        call,
        failure,
        outcome=outcome,
        failure_type=failure.kind.value if failure else _partial_note(call),
        detail=(
            rejection_detail(call.results, {x.span.id: x.span.name for x in plan.sources})
            if any(not r.ok for r in call.results.values())
            else (failure.detail if failure else None)
        ),
        enriched=enriched,
    )


class Cascade:
    """Runs plans over the configured endpoints; see the module docstring."""

    def __init__(self, calls: CallPath) -> None:
        #: The one call path: slots, breakers, cool-downs, GPU gate and attempt records.
        self.calls = calls

    @property
    def endpoints(self) -> dict[str, list[Endpoint]]:
        """The endpoints by tier (the call path's)."""
        return self.calls.endpoints

    def halt(self, reason: BaseException | None) -> None:
        """See :meth:`CallPath.halt`."""
        self.calls.halt(reason)

    def tier_contexts(self, local_only: bool) -> dict[str, int]:
        """Usable tiers in escalation order, each with its smallest context window."""
        contexts: dict[str, int] = {}
        for tier in self.calls.settings.tiers:
            endpoints = self.calls.eligible(tier, local_only)
            if endpoints:
                contexts[tier] = min(ep.context_tokens for ep in endpoints)
        return contexts

    async def run(self, plan: CallPlan) -> PlanResult:
        """Try the plan's tiers in order until every span landed or all tiers are spent.

        A tier skipped or cut short by a transient endpoint state (a rate limit's cool-down,
        an open breaker, GPU limits) defers the plan instead of failing it: the span is not to
        blame, and a later try may land it.
        """
        result = PlanResult()
        reasons: list[str] = []
        gpu_busy = False
        for tier in plan.tiers:
            endpoints = self.calls.eligible(tier, plan.local_only)
            reason = self.calls.blocked(tier, endpoints)
            if reason:
                reasons.append(reason)
                result.transient = result.transient or bool(endpoints)
                gpu_busy = gpu_busy or reason.startswith(GPU_BUSY)
                continue
            await self.calls.detect(endpoints)
            context = min(ep.context_tokens for ep in endpoints)
            prompt = await self._fitted_prompt(plan.sources, context, endpoints)
            if prompt is not None and plan.is_batch and prompt.excerpted:
                reasons.append("batch does not fit the context")
                break
            if prompt is None:
                # Even the smallest excerpt would overflow the context: refused before
                # sending (a call could only fail), and the next tier may have more room.
                if plan.is_batch:
                    reasons.append("batch does not fit the context")
                    break
                result.attempted = True
                result.failure = FailureKind.CONTEXT_OVERFLOW
                continue
            step = await self._run_tier(tier, endpoints, prompt, plan, result)
            if step is Step.DEFER:
                result.transient = True
            if step is Step.DONE or plan.is_batch:
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
            (ep.backend for ep in endpoints if ep.capabilities.tokenizer),
            None,
        )
        if counter is None:
            return prompt if prompt.tokens + prompt.max_tokens <= context else None
        timeout = min(5.0, counter.settings.timeout)
        for _ in range(2):
            counted = await counter.count_tokens(prompt_text(prompt), timeout)
            if not counted:
                return prompt
            counted += TEMPLATE_TOKENS_PER_MESSAGE * len(prompt.messages)
            if counted + prompt.max_tokens <= context:
                return prompt
            ratio = max(1.0, counted / max(1, prompt.tokens)) * 1.05
            prompt = build_prompt(sources, context, ratio)
        return None

    async def _run_tier(
        self,
        tier: str,
        endpoints: list[Endpoint],
        prompt: Prompt,
        plan: CallPlan,
        result: PlanResult,
    ) -> Step:
        """The plan's calls in one tier, retried as the call path's retry policy decides: DONE
        (something landed), ESCALATE (the tier is spent on the span's merits) or DEFER (a
        transient endpoint state stopped it: not the span's fault)."""
        asked: Asked[SpanCall] = Asked()
        request = self._request(with_rejection(prompt, result.rejections), plan, prompt)
        step = await self.calls.ask_tier(tier, endpoints, request, asked)
        if asked.verdict is not None:
            result.rejections = rejections(asked.verdict.value) or result.rejections
        result.endpoint_problems.extend(asked.reasons)
        if asked.failure is not None:
            result.attempted = True
            result.failure = asked.failure
        if step is Step.DONE:
            assert asked.verdict is not None and asked.endpoint is not None
            land_call(asked.verdict.value, asked.endpoint, tier, result)
        return step

    def _request(
        self, prompt: Prompt, plan: CallPlan, base: Prompt | None = None
    ) -> CallRequest[SpanCall]:
        """The call for ``prompt``; a single span's may grow its reply room once a tier, a
        batch cut off at the token limit escalates (to be split), and a reply rejected as
        invalid is asked again with why (added to ``base``, the prompt without a rejection
        line, so that lines never pile up)."""
        original = base or prompt

        def roomier() -> CallRequest[SpanCall] | None:
            grown = with_more_reply_room(prompt)
            return None if grown is None else self._request(grown, plan, base)

        def revise(verdict: Verdict[SpanCall]) -> CallRequest[SpanCall] | None:
            revised = with_rejection(original, rejections(verdict.value))
            return None if revised is original else self._request(revised, plan, original)

        return CallRequest(
            ChatRequest(
                prompt.messages,
                prompt.schema,
                prompt.max_tokens,
                prompt.schema_name,
                prompt.cache_key,
            ),
            lambda reply: span_verdict(judge_reply(reply, prompt), plan),
            tuple(source.span.content_hash for source in plan.sources),
            roomier=None if plan.is_batch else roomier,
            truncated_escalates=plan.is_batch,
            revise=revise,
        )
