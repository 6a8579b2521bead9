"""What docgen reads from the index: every span with its state and its fresh enrichment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SPAN_FIELDS, SPAN_SELECT, SpanRow, span_row, stored_json
from spanlens_lsp.store.states import STATE_CASE


@dataclass(slots=True)
class DocSpan:
    """One span as a doc shows it."""

    span: SpanRow
    #: ``fresh``, ``stale``, ``pending`` or ``failed`` (the shared state rule).
    state: str
    #: The fresh enrichment's validated data, or None.
    enrichment: dict[str, Any] | None
    #: The last failure's short text, for failed spans.
    error: str | None
    #: The model that wrote the fresh enrichment (its stored row's), or None.
    model: str | None = None


@dataclass(slots=True)
class DocFile:
    """One indexed file and its spans in source order."""

    path: str
    language: str
    sha256: str
    spans: list[DocSpan]


def doc_files(store: Store, version: str, max_failures: int) -> dict[str, DocFile]:
    """Every indexed file with spans, by path, each with its spans' states and enrichments."""
    select = SPAN_SELECT.replace(
        " FROM spans s",
        ", f.sha256, " + STATE_CASE + ", en.data, fl.last_error, en.model FROM spans s",
        1,
    )
    sql = (
        select + "LEFT JOIN enrichments en ON en.content_hash = s.content_hash "
        "AND en.schema_version = ? "
        "LEFT JOIN failures fl ON fl.content_hash = s.content_hash "
        "ORDER BY f.path, s.start_line, s.start_col"
    )
    files: dict[str, DocFile] = {}
    for row in store.conn.execute(sql, (version, max_failures, version)).fetchall():
        span = span_row(row[: len(SPAN_FIELDS)], store.conn)
        sha, state, data, error, model = row[len(SPAN_FIELDS) :]
        doc = files.get(span.path)
        if doc is None:
            doc = files[span.path] = DocFile(span.path, span.language, sha, [])
        enrichment = stored_json(store.conn, data, "enrichments.data") if data is not None else None
        doc.spans.append(DocSpan(span, state, enrichment, error, model))
    return files


@dataclass(slots=True, frozen=True)
class DocFailure:
    """A file whose doc could not be written, for its overview key at the time."""

    overview_key: str
    count: int
    last_error: str
    next_retry_at: float

    def backing_off(self, overview_key: str, now: float, max_failures: int) -> bool:
        """Whether the file waits: same key, and failed for good or its retry is not due."""
        if overview_key != self.overview_key:
            return False  # the file (or what its doc says) changed: try again at once
        return self.count >= max_failures or self.next_retry_at > now


def doc_failures(store: Store) -> dict[str, DocFailure]:
    """Every recorded doc failure, by workspace-relative path."""
    rows = store.conn.execute(
        "SELECT path, overview_key, count, last_error, next_retry_at FROM doc_failures"
    ).fetchall()
    return {row[0]: DocFailure(row[1], int(row[2]), row[3], float(row[4])) for row in rows}


def record_doc_failure(
    store: Store,
    path: str,
    overview_key: str,
    error: str,
    now: float,
    retry_base: float,
    retry_max: float,
) -> int:
    """Count one more failure of ``path``'s doc (from 1 again when its overview key changed);
    the next try waits base * 2**(n-1), capped, as for a span. Returns the count."""
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT count, overview_key FROM doc_failures WHERE path = ?", (path,)
        ).fetchone()
        count = (int(row[0]) if row and row[1] == overview_key else 0) + 1
        delay = min(retry_max, retry_base * 2 ** (count - 1))
        conn.execute(
            "INSERT INTO doc_failures "
            "(path, overview_key, count, last_error, next_retry_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "overview_key = excluded.overview_key, count = excluded.count, "
            "last_error = excluded.last_error, next_retry_at = excluded.next_retry_at, "
            "updated_at = excluded.updated_at",
            (path, overview_key, count, error, now + delay, now),
        )
    return count


def clear_doc_failure(store: Store, path: str) -> None:
    """``path``'s doc was written: forget its failures."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM doc_failures WHERE path = ?", (path,))
