"""Workspace symbol search: span names and enrichment summaries through SQLite FTS5.

The ``span_search`` table (migration 2) holds one row per span. New spans are added on
demand by :func:`sync_search_index` (one statement, off the indexing hot path); deletions and
new enrichment summaries reach it through triggers. Its trigram tokenizer matches
substrings, so each query word of three or more characters must appear somewhere in the
name or the summary; names weigh ten times more than summaries.
"""

from __future__ import annotations

from spanlens.store.handle import Store
from spanlens.store.rows import SPAN_SELECT, SpanRow, span_row

#: bm25 weights of the (name, summary) columns.
_NAME_WEIGHT = 10.0
_SUMMARY_WEIGHT = 1.0


def sync_search_index(store: Store) -> int:
    """Add spans the search index has not seen yet; returns how many were added.

    Cheap when nothing is missing (two counts): the delete trigger keeps the index a subset
    of ``spans``, so equal counts mean equal sets.
    """
    indexed = store.conn.execute("SELECT COUNT(*) FROM span_search").fetchone()[0]
    if indexed == store.span_count():
        return 0
    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO span_search (rowid, name, summary) "
            "SELECT s.id, s.name, COALESCE((SELECT json_extract(e.data, '$.summary') "
            "  FROM enrichments e WHERE e.content_hash IN (s.content_hash, s.enriched_hash) "
            "  ORDER BY e.created_at DESC LIMIT 1), '') "
            "FROM spans s WHERE s.id NOT IN (SELECT rowid FROM span_search)"
        )
        return cursor.rowcount


def search_spans(store: Store, query: str, limit: int = 100) -> list[SpanRow]:
    """Spans whose name or summary contains every word of ``query``, best match first.

    Brings the search index up to date first. Words shorter than three characters cannot
    use the trigram index; a query made only of such words falls back to a prefix match on
    the name.
    """
    sync_search_index(store)
    words = [w for w in query.replace('"', " ").split() if w]
    if not words:
        return []
    long_words = [w for w in words if len(w) >= 3]
    if not long_words:
        rows = store.conn.execute(
            SPAN_SELECT + "WHERE s.name LIKE ? ESCAPE '\\' ORDER BY length(s.name) LIMIT ?",
            (_like_prefix(words[0]), limit),
        ).fetchall()
        return [span_row(r, store.conn) for r in rows]
    match = " AND ".join(f'"{w}"' for w in long_words)
    rows = store.conn.execute(
        SPAN_SELECT + "JOIN (SELECT rowid AS id, bm25(span_search, ?, ?) AS rank "
        "FROM span_search WHERE span_search MATCH ? ORDER BY rank LIMIT ?) hit "
        "ON hit.id = s.id ORDER BY hit.rank",
        (_NAME_WEIGHT, _SUMMARY_WEIGHT, match, limit),
    ).fetchall()
    return [span_row(r, store.conn) for r in rows]


def _like_prefix(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
