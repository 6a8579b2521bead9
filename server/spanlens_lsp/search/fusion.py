"""Reciprocal rank fusion: several ranked lists made one, each item scored by its ranks."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

#: The rank constant of Cormack, Clarke and Büttcher (2009): large enough that the first few
#: places of one list do not swamp agreement between lists.
DEFAULT_K = 60.0


@dataclass(slots=True, frozen=True)
class Fused(Generic[K]):
    """One item of the fused list: its score and the lists that had it, in list order."""

    item: K
    score: float
    sources: tuple[str, ...]


def fuse(
    lists: Mapping[str, Sequence[K]],
    *,
    k: float = DEFAULT_K,
    weights: Mapping[str, float] | None = None,
) -> list[Fused[K]]:
    """The items of ``lists`` (name → items, best first), best first by
    ``sum(weight / (k + rank))`` over the lists that have them (rank from 1).

    A list's weight is 1 unless ``weights`` names it, and a list of weight 0 is left out
    (its items are not in the result unless another list has them); an item listed twice
    in one list counts at its best rank. Equal scores keep the order in which the lists,
    taken in turn, first named the items.
    """
    scores: dict[K, float] = {}
    sources: dict[K, list[str]] = {}
    for source, items in lists.items():
        weight = 1.0 if weights is None else weights.get(source, 1.0)
        if weight == 0:
            continue
        for rank, item in enumerate(items, start=1):
            seen = sources.setdefault(item, [])
            if source in seen:
                continue
            seen.append(source)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    ordered = sorted(scores, key=lambda item: -scores[item])  # stable: ties keep first-seen
    return [Fused(item, scores[item], tuple(sources[item])) for item in ordered]
