"""The status figures the CLI (`spanlens status`), the server's ``spanlens.statusReport`` and
`spanlens doctor` share, computed one way from the store."""

from __future__ import annotations

from typing import Any

from spanlens.states import ENRICHMENT_VERSION
from spanlens.store.enrichments import state_counts
from spanlens.store.handle import Store


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
