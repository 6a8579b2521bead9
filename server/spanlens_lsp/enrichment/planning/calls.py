"""Call plans: the spans to enrich in one call and the tiers to try, and how routed spans
are grouped into batch calls and single calls (the grouping itself is :mod:`.batching`).

(A *job*, in spanlens, is the scheduler's: :class:`spanlens_lsp.scheduling.jobs.Job`.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spanlens_lsp.enrichment.planning.batching import BatchCandidate, plan_batches
from spanlens_lsp.enrichment.prompt.build import single_prompt_tokens
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.settings import EnrichmentSettings


@dataclass(slots=True)
class CallPlan:
    """Spans to enrich in one call (one span, or a batch) and the tiers to try."""

    sources: list[SpanSource]
    tiers: list[str]
    #: The spans must not leave this machine (secret-looking or ignored file).
    local_only: bool = False

    @property
    def is_batch(self) -> bool:
        """A batch tries its starting tier only; invalid entries go to single calls."""
        return len(self.sources) > 1


def plan_calls(
    routed: list[tuple[SpanSource, CallPlan]],
    enrichment: EnrichmentSettings,
    tier_models: dict[str, list[str]],
    batching_off: Callable[[], list[tuple[str, str]]],
    tier_contexts: Callable[[bool], dict[str, int]],
) -> tuple[list[list[CallPlan]], list[CallPlan]]:
    """Split routed plans into batches (lists of single-span plans) and single plans."""
    if not enrichment.batch or len(routed) < 2:
        return [], [plan for _, plan in routed]
    by_id = {source.span.id: plan for source, plan in routed}
    # A tier whose model keeps failing batches enriches one span a call (stats says so).
    off = set(batching_off())
    single_tiers = {
        tier
        for tier, models in tier_models.items()
        if any((tier, model) in off for model in models)
    }
    candidates = [
        BatchCandidate(source, plan.tiers[0])
        for source, plan in routed
        if plan.tiers[0] not in single_tiers
        and tier_contexts(plan.local_only)[plan.tiers[0]] >= single_prompt_tokens(source)
    ]
    batchable = {c.source.span.id for c in candidates}
    planned, leftover = plan_batches(candidates, enrichment)
    batches = [[by_id[c.source.span.id] for c in batch] for batch in planned]
    singles = [by_id[c.source.span.id] for c in leftover]
    singles += [plan for source, plan in routed if source.span.id not in batchable]
    return batches, singles
