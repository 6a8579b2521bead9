"""Workspace symbol search: span names and enrichment summaries through SQLite FTS5.

The ``span_search`` table (migration 2) holds one row per span, kept current by triggers.
Its trigram tokenizer matches substrings, so each query word of three or more characters
must appear somewhere in the name or the summary; names weigh ten times more than summaries.
"""

from __future__ import annotations

from spanlens.store.db import _SPAN_SELECT, SpanRow, Store, _span_row

#: bm25 weights of the (name, summary) columns.
_NAME_WEIGHT = 10.0
_SUMMARY_WEIGHT = 1.0


def search_spans(store: Store, query: str, limit: int = 100) -> list[SpanRow]:
    """Spans whose name or summary contains every word of ``query``, best match first.

    Words shorter than three characters cannot use the trigram index; a query made only of
    such words falls back to a prefix match on the name.
    """
    words = [w for w in query.replace('"', " ").split() if w]
    if not words:
        return []
    long_words = [w for w in words if len(w) >= 3]
    if not long_words:
        rows = store.conn.execute(
            _SPAN_SELECT + "WHERE s.name LIKE ? ESCAPE '\\' ORDER BY length(s.name) LIMIT ?",
            (_like_prefix(words[0]), limit),
        ).fetchall()
        return [_span_row(r) for r in rows]
    match = " AND ".join(f'"{w}"' for w in long_words)
    rows = store.conn.execute(
        _SPAN_SELECT + "JOIN (SELECT rowid AS id, bm25(span_search, ?, ?) AS rank "
        "FROM span_search WHERE span_search MATCH ? ORDER BY rank LIMIT ?) hit "
        "ON hit.id = s.id ORDER BY hit.rank",
        (_NAME_WEIGHT, _SUMMARY_WEIGHT, match, limit),
    ).fetchall()
    return [_span_row(r) for r in rows]


def _like_prefix(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
