"""Vocabulary every layer shares: the enrichment version, the span state rule and the typed
outcome of enrichment.

It imports nothing from spanlens, so the store, enrichment, scheduling, docgen and the editor
edges can all use it without an import pointing up. The same rule in SQL lives in
:mod:`spanlens_lsp.store.states`; the two are tested against each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# The version of what an enrichment means: bump either number and older ones become stale.
# It lives here, not in enrichment/, because it is part of the state rule below (fresh means
# "enriched at this version"): the store, presentation and every layer above ask for it.

#: Version of the enrichment JSON schema (:mod:`spanlens_lsp.enrichment.prompt.schema`).
SCHEMA_VERSION = 5
#: Version of the prompts that produce it (:mod:`spanlens_lsp.enrichment.prompt.build`).
PROMPT_VERSION = 7
#: What the store keys enrichments by, with the content hash.
ENRICHMENT_VERSION = f"s{SCHEMA_VERSION}.p{PROMPT_VERSION}"


class _Word(str, Enum):
    """A str enum that prints as its value (``str()``, f-strings, JSON) on every Python."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class SpanState(_Word):
    """What the user is shown about a span."""

    FRESH = "fresh"  # an enrichment exists for its hash at the current schema version
    STALE = "stale"  # not fresh, but an earlier enrichment describes a previous version
    PENDING = "pending"  # waiting for a model (perhaps after failures under the limit)
    FAILED = "failed"  # max_failures reached for this hash: shown failed until retried
    FACTS_ONLY = "facts_only"  # not fresh and no model configured


def failed_for_good(failures: int, max_failures: int) -> bool:
    """Whether a hash with ``failures`` failed attempts is shown failed (no more retries)."""
    return failures >= max_failures


def span_state(
    *,
    fresh: bool,
    failures: int,
    max_failures: int,
    has_previous: bool,
    models_configured: bool = True,
) -> SpanState:
    """The one state rule: fresh > (facts only) > failed > stale > pending."""
    if fresh:
        return SpanState.FRESH
    if not models_configured:
        return SpanState.FACTS_ONLY
    if failed_for_good(failures, max_failures):
        return SpanState.FAILED
    return SpanState.STALE if has_previous else SpanState.PENDING


def is_settled(state: SpanState | str) -> bool:
    """Whether nothing more will happen to the span without a change: fresh or failed."""
    return state in (SpanState.FRESH, SpanState.FAILED)


class Status(_Word):
    """What an ``enrich`` call did for one span."""

    ENRICHED = "enriched"  # a validated enrichment for the span's hash is stored
    FAILED = "failed"  # attempts recorded, the hash's failure count went up
    DISCARDED = "discarded"  # the span changed while in flight: the result was dropped
    DEFERRED = "deferred"  # nothing recorded against the span: see its Deferral


class DeferralKind(_Word):
    """Why a span was deferred."""

    CLAIMED = "claimed"  # another spanlens process is enriching it
    UNAVAILABLE = "unavailable"  # rate limit, open breaker, endpoint cooling
    GPU = "gpu"  # the GPU is over its configured limits (free memory, temperature)
    CANCELLED = "cancelled"  # the call was cancelled (shutdown, settings change)
    NO_ROUTE = "no_route"  # no configured backend may receive it
    INTERNAL = "internal"  # an unexpected error in the engine


@dataclass(frozen=True, slots=True)
class Deferral:
    """A typed deferral: its kind, the detail for the user, and whether it lasts.

    ``lasting`` deferrals stay true until the settings (or the span's code) change, so a
    scheduler should not offer the span again before then; the others pass by themselves.
    """

    kind: DeferralKind
    detail: str
    lasting: bool = False


#: The tier embedding calls are recorded under in ``attempts``: no enrichment tier, so a call
#: that embeds several spans is no batched enrichment (it stores vectors, never enrichments).
EMBED_TIER = "embed"
