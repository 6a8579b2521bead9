"""Batching: small related spans share one model call.

A batch holds at least two pending spans of one file and one kind that start at the same tier,
each within ``batch_window_lines`` of the batch's first span, together under
``batch_token_budget`` tokens of code and at most ``batch_max_spans`` spans. The reply holds one
entry per span, each validated on its own; the engine sends spans whose entry is missing or
invalid through single calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from spanlens.config import EnrichmentSettings
from spanlens.enrichment.prompts import SpanSource, estimate_tokens


@dataclass(frozen=True, slots=True)
class BatchCandidate:
    """A span that may join a batch: its source and the tier its route starts at."""

    source: SpanSource
    start_tier: str

    @property
    def tokens(self) -> int:
        """Code tokens the span adds to a batch prompt."""
        facts_tokens = self.source.span.facts.get("tokens")
        if isinstance(facts_tokens, int) and facts_tokens > 0:
            return facts_tokens
        return estimate_tokens(self.source.code)


def plan_batches(
    candidates: list[BatchCandidate], settings: EnrichmentSettings
) -> tuple[list[list[BatchCandidate]], list[BatchCandidate]]:
    """Split ``candidates`` into batches (two spans or more) and the spans left single."""
    groups: dict[tuple[str, str, str], list[BatchCandidate]] = {}
    for candidate in candidates:
        span = candidate.source.span
        groups.setdefault((span.path, span.kind, candidate.start_tier), []).append(candidate)
    batches: list[list[BatchCandidate]] = []
    singles: list[BatchCandidate] = []
    for members in groups.values():
        members.sort(key=lambda c: c.source.span.start_line)
        for batch in _greedy_batches(members, settings):
            if len(batch) >= 2:
                batches.append(batch)
            else:
                singles.extend(batch)
    return batches, singles


def _greedy_batches(
    members: list[BatchCandidate], settings: EnrichmentSettings
) -> list[list[BatchCandidate]]:
    batches: list[list[BatchCandidate]] = []
    current: list[BatchCandidate] = []
    tokens = 0
    for candidate in members:
        if candidate.tokens > settings.batch_token_budget // 2:
            batches.append([candidate])  # too big to share a call usefully
            continue
        if current and not _fits(current, candidate, tokens, settings):
            batches.append(current)
            current, tokens = [], 0
        current.append(candidate)
        tokens += candidate.tokens
    if current:
        batches.append(current)
    return batches


def _fits(
    current: list[BatchCandidate],
    candidate: BatchCandidate,
    tokens: int,
    settings: EnrichmentSettings,
) -> bool:
    first = current[0].source.span
    return (
        len(current) < settings.batch_max_spans
        and candidate.source.span.start_line - first.start_line <= settings.batch_window_lines
        and tokens + candidate.tokens <= settings.batch_token_budget
    )
