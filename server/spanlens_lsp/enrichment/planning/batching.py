"""Batching: tiny top-level functions of one file share one model call.

A batch holds at least two pending top-level functions of one file, each at most
:data:`BATCH_MAX_LINES` lines, that start at the same tier, each within ``batch_window_lines``
of the batch's first span, together under ``batch_token_budget`` tokens of code and at most
``batch_max_spans`` spans. The reply holds one entry per span, each validated on its own; the
engine sends spans whose entry is missing or invalid through single calls.

Methods, classes and nested functions are never batched: a small model asked about several
members of one class at once describes the class for each of them (measured with
Qwen2.5-Coder-1.5B: all six methods of one class, batched, got the same class summary). Nor
is a longer function: on a local engine with one slot, tokens, not calls, are the cost, and
with stable-first prompts single calls of one file reuse their shared prefix from the prompt
cache, so a batch saves little more than a chat template per span.
"""

from __future__ import annotations

from dataclasses import dataclass

from spanlens_lsp.enrichment.prompt.excerpts import estimate_tokens
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.indexing.spans import CONTAINER_KINDS
from spanlens_lsp.settings import EnrichmentSettings

#: The longest span a batch may hold (see the module docstring).
BATCH_MAX_LINES = 20


@dataclass(frozen=True, slots=True)
class BatchCandidate:
    """A span that may join a batch: its source and the tier its route starts at."""

    source: SpanSource
    start_tier: str

    @property
    def batchable(self) -> bool:
        """A tiny top-level function: not a method, class or nested function."""
        span = self.source.span
        return (
            span.kind not in CONTAINER_KINDS
            and "." not in span.name
            and len(self.source.lines) <= BATCH_MAX_LINES
        )

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
    singles: list[BatchCandidate] = []
    for candidate in candidates:
        if not candidate.batchable:
            singles.append(candidate)
            continue
        span = candidate.source.span
        groups.setdefault((span.path, span.kind, candidate.start_tier), []).append(candidate)
    batches: list[list[BatchCandidate]] = []
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
