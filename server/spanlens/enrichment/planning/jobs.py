"""Jobs: the spans to enrich in one call and the tiers to try, and how routed spans are
grouped into batch jobs and single jobs (the grouping itself is :mod:`.batching`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spanlens.enrichment.planning.batching import BatchCandidate, plan_batches
from spanlens.enrichment.prompt.build import single_prompt_tokens
from spanlens.enrichment.prompt.source import SpanSource
from spanlens.settings import EnrichmentSettings


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


def plan_jobs(
    routed: list[tuple[SpanSource, Job]],
    enrichment: EnrichmentSettings,
    tier_models: dict[str, list[str]],
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
        for tier, models in tier_models.items()
        if any((tier, model) in off for model in models)
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
