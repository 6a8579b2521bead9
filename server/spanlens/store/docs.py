"""What docgen reads from the index: every span with its state and its fresh enrichment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from spanlens.store.db import _SPAN_FIELDS, _SPAN_SELECT, SpanRow, Store, _span_row
from spanlens.store.states import STATE_CASE


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
    select = _SPAN_SELECT.replace(
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
        span = _span_row(row[: len(_SPAN_FIELDS)])
        sha, state, data, error, model = row[len(_SPAN_FIELDS) :]
        doc = files.get(span.path)
        if doc is None:
            doc = files[span.path] = DocFile(span.path, span.language, sha, [])
        enrichment = json.loads(data) if data is not None else None
        doc.spans.append(DocSpan(span, state, enrichment, error, model))
    return files
