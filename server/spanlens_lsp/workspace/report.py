"""The status figures the CLI (`spanlens status`), the server's ``spanlens.statusReport`` and
`spanlens doctor` share, computed one way from the store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from spanlens_lsp.embedding.builtin import embedding_source
from spanlens_lsp.embedding.endpoints import Embedder, close_embedders, embedders_from_settings
from spanlens_lsp.embedding.run import StoreThread, plan_embeddings
from spanlens_lsp.localmodel.catalog import EMBEDDING_MODEL
from spanlens_lsp.localmodel.engine import engine_report
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.enrichments import state_counts
from spanlens_lsp.store.handle import Store

T = TypeVar("T")


def span_counts(store: Store, max_failures: int) -> dict[str, int]:
    """Spans in all, and by state (fresh, stale, pending, failed; each span in one)."""
    return {**state_counts(store, ENRICHMENT_VERSION, max_failures), "spans": store.span_count()}


def workspace_status(store: Store, max_failures: int) -> dict[str, Any]:
    """Files and spans by language and kind, and enrichment states (``status --json``)."""
    files = store.files_by_language()
    kinds = store.counts_by_language_and_kind()
    states = state_counts(store, ENRICHMENT_VERSION, max_failures)
    by_language: dict[str, Any] = {}
    for language, count, errors in files:
        by_language[language] = {"files": count, "files_with_errors": errors or 0, "spans": {}}
    for language, kind, count in kinds:
        by_language.setdefault(language, {"files": 0, "files_with_errors": 0, "spans": {}})
        by_language[language]["spans"][kind] = count
    return {
        "files": sum(c for _, c, _ in files),
        "spans": sum(count for _, _, count in kinds),
        "enriched": states["fresh"],
        "stale": states["stale"],
        "pending": states["pending"],
        "failed": states["failed"],
        "languages": by_language,
    }


class InlineStore:
    """A :class:`~spanlens_lsp.embedding.run.StoreThread` over a store this thread already
    holds (the CLI's): each function runs at once, here."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)``, now."""
        return fn(self.store)

    async def run_first(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)``, now."""
        return fn(self.store)


async def embedding_progress(
    root: Path, embedder: Embedder, reads: StoreThread, exclude: Sequence[str]
) -> dict[str, int]:
    """``{"embedded", "pending"}``: span hashes whose vector of ``embedder`` is of their
    current text, and those waiting for one, counted as the embedding run plans them (reads
    every span: in a store thread)."""
    plan = await plan_embeddings(root, embedder, reads, exclude=exclude)
    return {"embedded": plan.run.up_to_date, "pending": plan.spans}


def embedding_status(root: Path, settings: Settings, store: Store) -> dict[str, Any] | None:
    """``embeddings`` of `spanlens status --json`: the first embedding endpoint in force, its
    source and counts, and (built-in) its engine's report; None without an endpoint."""
    embedders = embedders_from_settings(settings)
    if not embedders:
        return None

    async def count() -> dict[str, int]:
        try:
            return await embedding_progress(
                root, embedders[0], InlineStore(store), settings.index.exclude
            )
        finally:
            await close_embedders(embedders)

    source = embedding_source(settings)
    return {
        "model": embedders[0].model,
        "source": source,
        **asyncio.run(count()),
        "engine": engine_report(EMBEDDING_MODEL) if source == "built-in" else None,
    }
