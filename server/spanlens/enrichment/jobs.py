"""Jobs: what the cascade is asked to enrich, what one call produced, and what landed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spanlens.config import EnrichmentSettings
from spanlens.enrichment.backends import (
    BackendFailure,
    ChatReply,
    FailureKind,
    display_host,
)
from spanlens.enrichment.batching import BatchCandidate, plan_batches
from spanlens.enrichment.calls import Verdict
from spanlens.enrichment.endpoints import Endpoint
from spanlens.enrichment.prompts import (
    Prompt,
    SpanSource,
    single_prompt_tokens,
    with_more_reply_room,
)
from spanlens.enrichment.validation import (
    Validated,
    rejection_detail,
    validate_batch_reply,
    validate_reply,
)
from spanlens.states import DeferralKind

log = logging.getLogger(__name__)


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
    #: What kind of state ``deferred_reason`` describes (GPU limits, or an endpoint's).
    deferred_kind: DeferralKind = DeferralKind.UNAVAILABLE
    #: The deferral is transient: waiting may let the job run (see ``deferred_reason``).
    transient: bool = False
    #: Why endpoints could not take the job for reasons that are not the span's fault
    #: (misconfigured, or cooling down after a rate limit).
    endpoint_problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SpanCall:
    """What one call's reply came to for its spans: validated entries, and the failure when
    none validated."""

    results: dict[int, Validated]
    failure: BackendFailure | None
    reply: ChatReply | BackendFailure


def _partial_note(call: SpanCall) -> str | None:
    bad = sum(1 for r in call.results.values() if not r.ok)
    return FailureKind.INVALID_OUTPUT.value if bad else None


def judge_reply(reply: ChatReply | BackendFailure, prompt: Prompt) -> SpanCall:
    """Validate one call's reply: what it enriched, and its failure if nothing validated."""
    if isinstance(reply, BackendFailure):
        return SpanCall({}, reply, reply)
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
        return SpanCall({}, failure, reply)
    if any(r.ok for r in results.values()):
        return SpanCall(results, None, reply)
    # One line (it becomes the span's failure and the endpoint's last error); the attempt row
    # gets one line per span (see attempt_row).
    detail = "; ".join(r.describe() for r in results.values())[:300]
    return SpanCall(
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


def land_call(call: SpanCall, endpoint: Endpoint, tier: str, result: JobResult) -> bool:
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


def span_verdict(call: SpanCall, job: Job) -> Verdict[SpanCall]:
    """What the call path records of one span call (its ``attempts`` row's outcome)."""
    enriched = sum(1 for r in call.results.values() if r.ok)
    failure = call.failure
    if enriched == len(job.sources):
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
            rejection_detail(call.results, {x.span.id: x.span.name for x in job.sources})
            if any(not r.ok for r in call.results.values())
            else (failure.detail if failure else None)
        ),
        enriched=enriched,
    )


def roomier_after(call: SpanCall | None, prompt: Prompt) -> Prompt | None:
    """A prompt with more reply room when ``call`` was cut off at the token limit."""
    if call is None or call.failure is None or call.failure.kind is not FailureKind.TRUNCATED:
        return None
    return with_more_reply_room(prompt)


def plan_jobs(
    routed: list[tuple[SpanSource, Job]],
    enrichment: EnrichmentSettings,
    endpoints: dict[str, list[Endpoint]],
    batching_off: Callable[[], list[tuple[str, str]]],
    tier_contexts: Callable[[bool], dict[str, int]],
) -> tuple[list[list[Job]], list[Job]]:
    """Split routed jobs into batches (lists of single jobs) and single jobs."""
    if not enrichment.batch or len(routed) < 2:
        return [], [job for _, job in routed]
    by_id = {source.span.id: job for source, job in routed}
    # A tier whose model keeps failing batches enriches one span a call (stats says so).
    off = set(batching_off())
    single_tiers = {
        tier
        for tier, tier_endpoints in endpoints.items()
        if any((tier, ep.settings.model) in off for ep in tier_endpoints)
    }
    candidates = [
        BatchCandidate(source, job.tiers[0])
        for source, job in routed
        if job.tiers[0] not in single_tiers
        and tier_contexts(job.local_only)[job.tiers[0]] >= single_prompt_tokens(source)
    ]
    batchable = {c.source.span.id for c in candidates}
    planned, leftover = plan_batches(candidates, enrichment)
    batches = [[by_id[c.source.span.id] for c in batch] for batch in planned]
    singles = [by_id[c.source.span.id] for c in leftover]
    singles += [job for source, job in routed if source.span.id not in batchable]
    return batches, singles


def cost_function() -> Callable[[int, int, float, float], float] | None:
    try:
        from spanlens.telemetry.cost import call_cost
    except ImportError:
        return None
    return call_cost  # type: ignore[no-any-return]
