"""The router: which tier a span starts at, from its facts and the tiers' context windows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from spanlens_lsp.settings import RouterSettings


def complexity_level(facts: Mapping[str, Any], router: RouterSettings) -> int:
    """0 = small (fits the first tier), 1 = large, 2 = beyond the large tier's token limit."""
    lines = int(facts.get("lines") or 0)
    nesting = int(facts.get("nesting") or 0)
    tokens = int(facts.get("tokens") or 0)
    if (
        lines <= router.small_max_lines
        and nesting <= router.small_max_nesting
        and tokens <= router.small_max_tokens
    ):
        return 0
    if tokens <= router.large_max_tokens:
        return 1
    return 2


def choose_route(
    facts: Mapping[str, Any],
    needed_tokens: int,
    tier_contexts: Mapping[str, int],
    router: RouterSettings,
    *,
    forced: str | None = None,
) -> list[str]:
    """The tiers to try, in order: the starting tier first, then the ones to escalate to.

    ``tier_contexts`` maps each usable tier, in escalation order, to the smallest context
    window among its backends. The complexity level picks the starting position (the highest
    usable tier when the wanted one has no backend); a tier whose context cannot hold the
    whole prompt (``needed_tokens``) is skipped when a later one can; when none can, the route
    starts at the tier with the largest window (the prompt is then excerpted). ``forced``
    starts at that tier (escalation above it stays possible); [] if it is not usable.
    """
    usable = list(tier_contexts)
    if not usable:
        return []
    if forced is not None:
        return usable[usable.index(forced) :] if forced in usable else []
    level = complexity_level(facts, router)
    route = usable[min(level, len(usable) - 1) :]
    return _skip_small_contexts(route, needed_tokens, tier_contexts)


def _skip_small_contexts(
    route: Sequence[str], needed_tokens: int, tier_contexts: Mapping[str, int]
) -> list[str]:
    for index, tier in enumerate(route):
        if tier_contexts[tier] >= needed_tokens:
            return list(route[index:])
    widest = max(range(len(route)), key=lambda i: tier_contexts[route[i]])
    return list(route[widest:])


def no_route_reason(tier: str | None, local_only: bool) -> str:
    """Why a span has no route (no backend may take it)."""
    if tier is not None:
        return f"no usable backend in tier {tier}"
    if local_only:
        return "file must not leave this machine and no local backend is configured"
    return "no backend configured"
