"""workspace/symbol's promises on the store side: names rank above summaries, every word must
match, an empty query returns nothing (protocol.md: Workspace symbols)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.symbols import search_spans

FILES = {
    "a_widgets.py": "def helper(x):\n    return x\n\n\ndef other(y):\n    return y\n",
    "z_tools.py": (
        "def make_widget_from_a_long_list_of_parts(parts):\n    return parts\n\n\n"
        "def cache_config(c):\n    return c\n"
    ),
}


def _store(tmp_path: Path, write: Callable[[str, str], Path]) -> Store:
    for rel, text in FILES.items():
        write(rel, text)
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    summaries = {
        # A summary that says "widget" three times, against one name that holds it once.
        "helper": "Builds the widget cache: widget parts, widget layout and widget colours.",
        "other": "Returns its argument unchanged.",
        "make_widget_from_a_long_list_of_parts": "Joins parts.",
        "cache_config": "Parses the configuration file into a dict.",
    }
    for path in FILES:
        for span in store.spans_in_file(path):
            queries.put_enrichment(
                store,
                span.content_hash,
                ENRICHMENT_VERSION,
                {"summary": summaries[span.name]},
                model="m",
                tier="small",
                backend="b",
                host="127.0.0.1",
            )
    return store


def test_names_rank_above_summaries(tmp_path: Path, write: Callable) -> None:
    store = _store(tmp_path, write)
    try:
        assert [s.name for s in search_spans(store, "widget")] == [
            "make_widget_from_a_long_list_of_parts",
            "helper",
        ]
        assert [s.name for s in search_spans(store, "cache")] == ["cache_config", "helper"]
    finally:
        store.close()


def test_every_query_word_must_match_name_or_summary(tmp_path: Path, write: Callable) -> None:
    store = _store(tmp_path, write)
    try:
        assert [s.name for s in search_spans(store, "parses config")] == ["cache_config"]
        assert [s.name for s in search_spans(store, "widget unchanged")] == []
        assert search_spans(store, "") == []
        assert search_spans(store, "   ") == []
    finally:
        store.close()
