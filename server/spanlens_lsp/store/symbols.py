"""Workspace symbol search: span names and enrichment summaries through SQLite FTS5.

The ``span_search`` table (migration 2) holds one row per span. New spans are added on
demand by :func:`sync_search_index` (one statement, off the indexing hot path); deletions and
new enrichment summaries reach it through triggers. Its trigram tokenizer matches
substrings, so each query word of three or more characters must appear somewhere in the
name or the summary; names weigh ten times more than summaries.
"""

from __future__ import annotations

import weakref

from spanlens_lsp.store.connection import StoreConnection
from spanlens_lsp.store.handle import Store, database_version
from spanlens_lsp.store.rows import SPAN_SELECT, SpanRow, span_row

#: bm25 weights of the (name, summary) columns.
_NAME_WEIGHT = 10.0
_SUMMARY_WEIGHT = 1.0


#: The database version (:func:`~spanlens_lsp.store.handle.database_version`) at which each
#: connection last saw the search index complete: while it holds, nothing was written since.
_synced_at: weakref.WeakKeyDictionary[StoreConnection, tuple[int, int]] = (
    weakref.WeakKeyDictionary()
)


def sync_search_index(store: Store) -> int:
    """Add spans the search index has not seen yet; returns how many were added.

    Free when nothing was written since the last call on this connection (one pragma);
    else cheap when nothing is missing (two counts): the delete trigger keeps the index a
    subset of ``spans``, so equal counts mean equal sets. The index's rows are counted in
    FTS5's ``docsize`` shadow table, one small row per document (0.04 ms at 20,000 spans,
    where a count over the FTS table itself reads every document: 13 ms). The counts walk
    every page of both (~2 ms at 100,000 spans), and a search asks several times.
    """
    conn = store.conn
    version = database_version(store)
    if _synced_at.get(conn) == version:
        return 0
    indexed = conn.execute("SELECT COUNT(*) FROM span_search_docsize").fetchone()[0]
    if indexed == store.span_count():
        # The version read before the counts: a commit meanwhile is seen next time.
        _synced_at[conn] = version
        return 0
    with store.transaction() as writer:
        return int(
            writer.execute(
                "INSERT INTO span_search (rowid, name, summary) "
                "SELECT s.id, s.name, COALESCE((SELECT json_extract(e.data, '$.summary') "
                "  FROM enrichments e WHERE e.content_hash IN (s.content_hash, s.enriched_hash) "
                "  ORDER BY e.created_at DESC LIMIT 1), '') "
                "FROM spans s WHERE s.id NOT IN (SELECT rowid FROM span_search)"
            ).rowcount
        )


def search_spans(store: Store, query: str, limit: int = 100) -> list[SpanRow]:
    """Spans whose name or summary contains every word of ``query``, best match first (see
    :func:`search_span_ids`)."""
    return spans_by_ids(store, search_span_ids(store, query, limit))


def search_span_ids(store: Store, query: str, limit: int = 100) -> list[int]:
    """Ids of the spans whose name or summary contains every word of ``query``, best match
    first (bm25, names ten times summaries), at most ``limit``: ranked and cut in SQL.

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
            "SELECT id FROM spans WHERE name LIKE ? ESCAPE '\\' ORDER BY length(name) LIMIT ?",
            (_like_prefix(words[0]), limit),
        ).fetchall()
        return [span_id for (span_id,) in rows]
    return _best_matches(store, " AND ".join(f'"{w}"' for w in long_words), limit)


def _best_matches(store: Store, match: str, limit: int) -> list[int]:
    """Ids of the ``limit`` spans that best match the FTS5 query ``match`` (bm25)."""
    rows = store.conn.execute(
        "SELECT rowid FROM span_search WHERE span_search MATCH ? "
        "ORDER BY bm25(span_search, ?, ?) LIMIT ?",
        (match, _NAME_WEIGHT, _SUMMARY_WEIGHT, limit),
    ).fetchall()
    return [span_id for (span_id,) in rows]


#: Words a sentence-style query carries that say nothing about which span is meant.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "given",
        "has",
        "have",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "then",
        "this",
        "to",
        "was",
        "were",
        "when",
        "which",
        "while",
        "with",
    ]
)

#: Characters of a query word kept for the any-word match: a crude stem that lets "parses"
#: match parse_config and "settings" match setting, through the trigram index.
_STEM = 5


def keyword_match_ids(store: Store, query: str, limit: int = 100) -> list[int]:
    """Ids of the spans whose name or summary contains any word of ``query``, best match
    first (bm25: more and rarer words first, names ten times summaries), at most ``limit``.

    For a sentence ("read the settings from disk"), where :func:`search_span_ids` asks for
    every word and finds nothing. Stop words and words shorter than three characters are left
    out; longer words are cut to their first five characters.
    """
    sync_search_index(store)
    words = {
        w[:_STEM]
        for w in query.replace('"', " ").lower().split()
        if len(w) >= 3 and w not in _STOPWORDS
    }
    if not words:
        return []
    return _best_matches(store, " OR ".join(f'"{w}"' for w in sorted(words)), limit)


def names_containing(store: Store, words: list[str], limit: int = 200) -> list[tuple[int, str]]:
    """``(span id, name)`` of spans whose qualified name contains every one of ``words``
    (case-insensitive), shortest name first: the candidates a name ranking orders.

    Read from the search index alone (no span rows): words of three or more characters
    through its trigrams, shorter ones by a LIKE over the names.
    """
    sync_search_index(store)
    words = [w.replace('"', "") for w in words if w.replace('"', "")]
    if not words:
        return []
    long_words = [w for w in words if len(w) >= 3]
    where: list[str] = []
    params: list[object] = []
    if long_words:
        where.append("span_search MATCH ?")
        params.append(" AND ".join(f'name : "{w}"' for w in long_words))
    for word in (w for w in words if len(w) < 3):
        where.append("name LIKE ? ESCAPE '\\'")
        params.append("%" + _like_escaped(word) + "%")
    rows = store.conn.execute(
        "SELECT rowid, name FROM span_search WHERE "
        + " AND ".join(where)
        + " ORDER BY length(name), rowid LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [(span_id, name) for span_id, name in rows]


def spans_by_ids(store: Store, span_ids: list[int]) -> list[SpanRow]:
    """The spans with these ids that still exist, in the order given."""
    found: dict[int, SpanRow] = {}
    for start in range(0, len(span_ids), _BATCH):
        batch = span_ids[start : start + _BATCH]
        marks = ", ".join("?" * len(batch))
        for row in store.conn.execute(SPAN_SELECT + f"WHERE s.id IN ({marks})", batch):
            span = span_row(row, store.conn)
            found[span.id] = span
    return [found[i] for i in span_ids if i in found]


def spans_mark(store: Store) -> tuple[int, int, float]:
    """Something that changes whenever a span is added, changed or removed: the files'
    count and newest ``indexed_at`` (every span write comes with its file's row), and the
    span count."""
    files, newest = store.conn.execute(
        "SELECT COUNT(*), COALESCE(MAX(indexed_at), 0) FROM files"
    ).fetchone()
    return files, store.span_count(), newest


def span_hashes(store: Store) -> list[str]:
    """The content hash of every span (one per span, repeated when spans share code)."""
    rows = store.conn.execute("SELECT content_hash FROM spans INDEXED BY spans_by_hash").fetchall()
    return [content_hash for (content_hash,) in rows]


def span_ids_with_hashes(store: Store, hashes: list[str]) -> list[tuple[str, int]]:
    """``(content hash, span id)`` of the current spans whose content hash is one of
    ``hashes`` (identical code in two places: both spans), in no particular order."""
    found: list[tuple[str, int]] = []
    for start in range(0, len(hashes), _BATCH):
        batch = hashes[start : start + _BATCH]
        marks = ", ".join("?" * len(batch))
        found.extend(
            store.conn.execute(
                f"SELECT content_hash, id FROM spans WHERE content_hash IN ({marks})", batch
            ).fetchall()
        )
    return found


def span_summaries(store: Store, span_ids: list[int]) -> dict[int, str]:
    """The summary the search index holds for each span that has one (the newest
    enrichment's, stale or fresh), by span id."""
    sync_search_index(store)
    summaries: dict[int, str] = {}
    for start in range(0, len(span_ids), _BATCH):
        batch = span_ids[start : start + _BATCH]
        marks = ", ".join("?" * len(batch))
        for span_id, summary in store.conn.execute(
            f"SELECT rowid, summary FROM span_search WHERE rowid IN ({marks})", batch
        ).fetchall():
            if isinstance(summary, str) and summary:
                summaries[span_id] = summary
    return summaries


#: Parameters per statement (SQLite's limit is 32766 since 3.32; stay well below).
_BATCH = 500


def _like_escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(word: str) -> str:
    return _like_escaped(word) + "%"
