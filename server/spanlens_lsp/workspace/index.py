"""Indexing the whole workspace under its index settings: the one walk-and-index that the CLI
(``spanlens index``, and the index before ``enrich`` and ``docgen``) and the language server
(at start-up) share. The server walks off the store's thread and indexes on it; the CLI does
both in one call.
"""

from __future__ import annotations

from pathlib import Path

from spanlens_lsp.indexing.indexer import IndexProgressFn, IndexSummary, index_files
from spanlens_lsp.indexing.walk import WalkResult, walk_workspace
from spanlens_lsp.settings import IndexSettings
from spanlens_lsp.store.handle import Store


def walk_files(root: Path, settings: IndexSettings) -> WalkResult:
    """The files under ``root`` that the index takes (reads only the file system)."""
    return walk_workspace(root, settings.exclude, settings.max_file_size)


def index_workspace(
    store: Store,
    root: Path,
    settings: IndexSettings,
    *,
    progress: IndexProgressFn | None = None,
    walk: WalkResult | None = None,
) -> IndexSummary:
    """Bring ``store`` up to date with the files under ``root`` (``walk`` when the caller
    walked them already). Runs SQL: call it on the store's writer thread."""
    return index_files(
        root,
        store,
        exclude=settings.exclude,
        max_size=settings.max_file_size,
        workers=settings.workers,
        progress=progress,
        walk=walk,
    )
