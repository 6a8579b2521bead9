"""Span embeddings (migrations 7, 8): one L2-normalised float32 vector per span hash and model.

A row is keyed by the span's content hash and the embedding model, and remembers the hash of
the text that was embedded (:mod:`spanlens_lsp.embedding.text`) and the inputs of that text
as SQL renders them (:func:`embedding_source`). What still needs an embedding is derived,
never stored: a span hash none of whose spans has its current inputs stored beside the hash's
vector (:func:`pending_spans`, one query).
"""

from __future__ import annotations

import sqlite3
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SPAN_COLUMNS, SPAN_FIELDS, SpanRow, span_row


@dataclass(slots=True, frozen=True)
class EmbeddingRow:
    """One stored vector."""

    content_hash: str
    model: str
    text_hash: str
    vector: tuple[float, ...]


def pack_vector(vector: Sequence[float]) -> bytes:
    """The stored form of a vector: little-endian float32 (``array`` is native-endian; every
    platform spanlens ships for is little-endian, and the check below refuses the others)."""
    packed = array("f", vector)
    if packed.itemsize != 4 or array("H", [1]).tobytes() != b"\x01\x00":
        raise RuntimeError("spanlens stores float32 vectors little-endian; this platform is not")
    return packed.tobytes()


def unpack_vector(blob: bytes) -> tuple[float, ...]:
    """A stored vector back as floats."""
    values = array("f")
    values.frombytes(blob)
    return tuple(values)


def embedding_source(span: str = "s", enrichment: str = "en") -> str:
    """The inputs of a span's embedded text, rendered by SQL over the span ``span`` and its
    enrichment ``enrichment`` (LEFT JOINed at the current version): the text version, kind,
    name, summary, signature and the first characters of docstring and doc comment (named
    parameters ``:text_version`` and ``:doc_chars``). The text
    (:func:`spanlens_lsp.embedding.text.embedding_text`) is a function of exactly these, so a
    stored row whose ``source`` equals the current rendering holds the vector of the current
    text."""
    s, en = span, enrichment
    return (
        f"json_array(:text_version, {s}.kind, {s}.name, json_extract({en}.data, '$.summary'), "
        f"json_extract({s}.facts, '$.signature'), "
        f"substr(json_extract({s}.facts, '$.docstring'), 1, :doc_chars), "
        f"substr(json_extract({s}.facts, '$.doc'), 1, :doc_chars))"
    )


#: Each span's enrichment at ``:version`` and its hash's vector of ``:model``.
_SPAN_JOINS = (
    "FROM spans s JOIN files f ON f.id = s.file_id "
    "LEFT JOIN enrichments en ON en.content_hash = s.content_hash "
    "AND en.schema_version = :version "
    "LEFT JOIN embeddings e ON e.content_hash = s.content_hash AND e.model = :model "
)

#: The spans whose inputs differ from those stored beside their hash's vector, unless another
#: span of the same hash has them (identical code under two names: one vector serves both,
#: and the hash is done). A full scan of spans, with no sort or grouping: what an idle check
#: costs.
_PENDING_WHERE = (
    f"e.source IS NOT {embedding_source()} AND NOT EXISTS ("
    "SELECT 1 FROM spans s2 LEFT JOIN enrichments en2 ON en2.content_hash = s2.content_hash "
    "AND en2.schema_version = :version "
    f"WHERE s2.content_hash = s.content_hash AND s2.id != s.id "
    f"AND e.source = {embedding_source('s2', 'en2')}) "
)


@dataclass(slots=True, frozen=True)
class PendingSpan:
    """A span whose hash has no vector of its current text (see :func:`pending_spans`)."""

    span: SpanRow
    #: The summary of its enrichment at the version asked for (None when it has none).
    summary: str | None
    #: Its :func:`embedding_source` now: stored beside the vector it gets.
    source: str
    #: The text hash of the vector its hash has (of another text), None when it has none.
    stored_text_hash: str | None


def pending_spans(
    store: Store,
    model: str,
    version: str,
    text_version: str,
    doc_chars: int,
    paths: Sequence[str] | None = None,
) -> list[PendingSpan]:
    """The current spans (of ``paths`` when given) whose hash has no ``model`` vector of its
    current text, by path and line: a hash is done when one of its spans has the
    :func:`embedding_source` stored beside the hash's vector. One query; with nothing to do,
    no span's facts reach Python."""
    if paths is not None and not paths:
        return []
    params: dict[str, Any] = {
        "model": model,
        "version": version,
        "text_version": text_version,
        "doc_chars": doc_chars,
    }
    where = _PENDING_WHERE
    if paths is not None:
        params.update({f"p{n}": path for n, path in enumerate(paths)})
        where += f"AND f.path IN ({','.join(f':p{n}' for n in range(len(paths)))}) "
    sql = (
        f"SELECT {SPAN_COLUMNS}, json_extract(en.data, '$.summary'), {embedding_source()}, "
        f"e.text_hash {_SPAN_JOINS} WHERE {where}ORDER BY f.path, s.start_line, s.start_col"
    )
    try:
        rows = store.conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "malformed JSON" not in str(exc):
            raise
        damaged = "spans.facts or enrichments.data holds text that is not JSON"
        raise store.conn.damaged(damaged) from exc
    width = len(SPAN_FIELDS)
    return [
        PendingSpan(
            span_row(row[:width], store.conn),
            row[width] if isinstance(row[width], str) else None,
            row[width + 1],
            row[width + 2],
        )
        for row in rows
    ]


def span_hash_count(store: Store, paths: Sequence[str] | None = None) -> int:
    """Distinct span hashes (of ``paths`` when given): what an embedding run looks at."""
    if paths is None:
        return int(
            store.conn.execute("SELECT COUNT(DISTINCT content_hash) FROM spans").fetchone()[0]
        )
    if not paths:
        return 0
    return int(
        store.conn.execute(
            "SELECT COUNT(DISTINCT s.content_hash) FROM spans s JOIN files f ON f.id = s.file_id "
            f"WHERE f.path IN ({','.join('?' * len(paths))})",
            list(paths),
        ).fetchone()[0]
    )


def embedded_text_hashes(store: Store, model: str) -> dict[str, str]:
    """``{content_hash: text_hash}`` of every span hash with a vector for ``model``."""
    rows = store.conn.execute(
        "SELECT content_hash, text_hash FROM embeddings WHERE model = ?", (model,)
    ).fetchall()
    return dict(rows)


def set_sources(store: Store, model: str, sources: Iterable[tuple[str, str]]) -> None:
    """Record ``(content_hash, source)``: the stored vector of each hash is of the text these
    inputs make (checked by the caller), so the hash is no longer pending."""
    with store.transaction() as conn:
        conn.executemany(
            "UPDATE embeddings SET source = ? WHERE content_hash = ? AND model = ?",
            [(source, content_hash, model) for content_hash, source in sources],
        )


def vector_for_text(store: Store, model: str, text_hash: str) -> bytes | None:
    """A stored vector of ``model`` for this text, whichever span it was computed for."""
    row = store.conn.execute(
        "SELECT vector FROM embeddings WHERE model = ? AND text_hash = ? LIMIT 1",
        (model, text_hash),
    ).fetchone()
    return None if row is None else bytes(row[0])


def put_embeddings(
    store: Store,
    model: str,
    rows: Iterable[tuple[str, str, Sequence[float] | bytes]],
    sources: Mapping[str, str] | None = None,
) -> int:
    """Store ``(content_hash, text_hash, vector)`` rows for ``model``; returns how many.

    A vector is normalised by the caller; bytes are taken as already packed. A row for the
    same span hash and model is replaced (its text changed). ``sources`` gives a hash's
    :func:`embedding_source` (the inputs of the text embedded); a row without one is checked
    in Python by the next run.
    """
    now = time.time()
    sources = sources or {}
    values = []
    for content_hash, text_hash, vector in rows:
        blob = vector if isinstance(vector, bytes) else pack_vector(vector)
        source = sources.get(content_hash)
        values.append((content_hash, model, text_hash, len(blob) // 4, blob, now, source))
    if not values:
        return 0
    with store.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO embeddings "
            "(content_hash, model, text_hash, dims, vector, created_at, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    return len(values)


def embedding_counts(store: Store) -> dict[str, int]:
    """Current spans with a vector, by embedding model (for `status` and `doctor`)."""
    return dict(
        store.conn.execute(
            "SELECT e.model, COUNT(*) FROM spans s "
            "JOIN embeddings e ON e.content_hash = s.content_hash GROUP BY e.model"
        ).fetchall()
    )


@dataclass(slots=True, frozen=True)
class VectorsMark:
    """Where the vectors of one model stood: enough to tell, in three index look-ups, whether
    any was added, replaced or deleted since (see :func:`vectors_mark`)."""

    count: int
    max_rowid: int
    #: ``created_at`` of the row at ``max_rowid``: when the newest row is deleted, the next
    #: insert reuses its rowid.
    last_created_at: float | None


def vectors_mark(store: Store, model: str) -> VectorsMark:
    """The current :class:`VectorsMark` of ``model`` (the count reads the ``(model,
    text_hash)`` index, never a vector)."""
    conn = store.conn
    count = conn.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0]
    max_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM embeddings").fetchone()[0]
    row = conn.execute("SELECT created_at FROM embeddings WHERE rowid = ?", (max_rowid,)).fetchone()
    return VectorsMark(count, max_rowid, None if row is None else row[0])


def model_vectors(store: Store, model: str, after_rowid: int = 0) -> list[tuple[int, str, bytes]]:
    """``(rowid, content_hash, packed vector)`` of ``model``'s rows from ``after_rowid`` on
    (every row when 0), whether or not a current span has that hash."""
    return [
        (rowid, content_hash, bytes(blob))
        for rowid, content_hash, blob in store.conn.execute(
            # ``+model``: walk the rowid range, not the (model, text_hash) index's entries.
            "SELECT rowid, content_hash, vector FROM embeddings WHERE +model = ? AND rowid >= ?",
            (model, after_rowid),
        ).fetchall()
    ]
