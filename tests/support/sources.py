"""Spans as the engine sees them for a call, for tests and benchmarks that judge replies or
build prompts without running the engine."""

from __future__ import annotations

from pathlib import Path

from spanlens_lsp.enrichment.planning.sources import load_sources
from spanlens_lsp.enrichment.prompt.names import WorkspaceNames
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.indexing.source import read_source_text
from spanlens_lsp.store.db import open_store


def indexed_sources(root: Path) -> list[SpanSource]:
    """Index the workspace at ``root`` and load each span as the engine does for a call: its
    code, facts, enclosing context, and the names of its file and the workspace that a reply
    may mention; file by file, in line order (spans whose text cannot be loaded are left out)."""
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        spans = [s for path in sorted(store.file_rows()) for s in store.spans_in_file(path)]
        spans.sort(key=lambda s: (s.path, s.start_line))
        read = lambda path: read_source_text(root / path)  # noqa: E731
        loaded = load_sources(store, read, spans, WorkspaceNames())
        return [source for _, source, _ in loaded if source is not None]
    finally:
        store.close()
