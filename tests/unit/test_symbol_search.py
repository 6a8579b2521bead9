"""Workspace symbol search over span names and summaries, kept in step with the index."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.symbols import search_spans


def test_search_finds_new_spans_and_forgets_deleted_ones(tmp_path: Path, write: Callable) -> None:
    path = write("config.py", "def parse_config(text):\n    return text\n")
    write("other.py", "def loadSettings():\n    pass\n")
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    assert [s.name for s in search_spans(store, "parse config")] == ["parse_config"]
    assert [s.name for s in search_spans(store, "settings")] == ["loadSettings"]

    path.write_text("def read_config(text):\n    return text\n")
    os.utime(path, ns=(5, 5))
    index_files(tmp_path, store, workers=1)
    assert search_spans(store, "parse config") == []
    assert [s.name for s in search_spans(store, "config")] == ["read_config"]


def test_search_sees_spans_another_connection_indexed(tmp_path: Path, write: Callable) -> None:
    # A search remembers that the index was complete; a commit by another connection (the
    # indexer's, say) must still bring its spans in.
    write("config.py", "def parse_config(text):\n    return text\n")
    searcher, indexer = open_store(tmp_path), open_store(tmp_path)
    try:
        index_files(tmp_path, indexer, workers=1)
        assert [s.name for s in search_spans(searcher, "config")] == ["parse_config"]
        assert search_spans(searcher, "settings") == []
        write("other.py", "def loadSettings():\n    pass\n")
        index_files(tmp_path, indexer, workers=1)
        assert [s.name for s in search_spans(searcher, "settings")] == ["loadSettings"]
    finally:
        searcher.close()
        indexer.close()
