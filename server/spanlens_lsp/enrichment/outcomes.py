"""What an enrich call reports per span: typed outcomes, deferrals and call totals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.states import Deferral, DeferralKind, Status
from spanlens_lsp.store.enrichments import StoreWriteFailed

log = logging.getLogger(__name__)

ENRICHED = Status.ENRICHED
FAILED = Status.FAILED
DISCARDED = Status.DISCARDED
DEFERRED = Status.DEFERRED


@dataclass
class SpanOutcome:
    """What ``enrich`` did for one span.

    ``status`` is one of:

    - ``enriched``: a validated enrichment for the span's hash is stored;
    - ``failed``: attempts were recorded and the hash's failure count went up;
    - ``discarded``: the span's hash changed while it was in flight (or its text no longer
      matches the index), so the result was dropped;
    - ``deferred``: no span failure was recorded. ``transient`` says whether waiting may
      help: a rate limit's cool-down, an open breaker, GPU limits, a misconfigured endpoint,
      or another process's claim on the span (:data:`CLAIMED_ELSEWHERE`) held it back; it
      is False when no configured backend may take the span at all.
    """

    span_id: int
    content_hash: str
    status: Status
    #: Short failure type for the user ("model timeout", "connection refused", ...).
    error: str | None = None
    #: For ``failed``: the hash's failure count now (failed for good at ``max_failures``).
    failures: int = 0
    #: For ``deferred``: a transient state (rate limit, open breaker, GPU limits, another
    #: process's claim) held it back, so trying again later may land it.
    transient: bool = False
    #: For ``deferred``: why, typed (the scheduler acts on its kind and ``lasting``).
    deferral: Deferral | None = None


@dataclass(slots=True)
class HashOutcome:
    status: Status
    error: str | None = None
    failures: int = 0
    transient: bool = False
    #: Set where the deferral's kind is known better than from ``transient``.
    deferral: Deferral | None = None


@dataclass(slots=True)
class CallTotals:
    """What this engine's own model calls cost (another process's calls are not counted)."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    spans_enriched: int = 0
    by_tier: dict[str, int] = field(default_factory=dict)


async def gather_outcomes(
    work: list[tuple[list[SpanSource], Coroutine[Any, Any, dict[str, HashOutcome]]]],
) -> dict[str, HashOutcome]:
    """Run jobs side by side; one that raises is logged and its spans deferred, while its
    siblings run to the end (none is left orphaned)."""
    done = await asyncio.gather(*(coro for _, coro in work), return_exceptions=True)
    outcomes: dict[str, HashOutcome] = {}
    for outcome in done:
        if isinstance(outcome, StoreWriteFailed):
            raise outcome  # the whole run stops: nothing more can be recorded
    for (sources, _), outcome in zip(work, done, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, asyncio.CancelledError):
                log.error(
                    "enrichment job failed unexpectedly",
                    exc_info=(type(outcome), outcome, outcome.__traceback__),
                )
            cancelled = isinstance(outcome, asyncio.CancelledError)
            for source in sources:
                outcomes.setdefault(
                    source.span.content_hash,
                    deferred_outcome(
                        DeferralKind.CANCELLED if cancelled else DeferralKind.INTERNAL,
                        "cancelled" if cancelled else "internal error",
                        transient=cancelled,
                    ),
                )
        else:
            outcomes.update(outcome)
    return outcomes


def deferred_outcome(kind: DeferralKind, detail: str, *, transient: bool = True) -> HashOutcome:
    """A deferred hash outcome whose kind is known where it is made."""
    return HashOutcome(DEFERRED, detail, transient=transient, deferral=Deferral(kind, detail))


def deferral_for(error: str | None, transient: bool) -> Deferral:
    """The deferral of an outcome made without one: an endpoint state held it back."""
    return Deferral(DeferralKind.UNAVAILABLE, error or "not tried")
