"""Typed rows of the index: FileRow, SpanRow and the SELECT lists generated from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class FileRow:
    """What the store knows about one indexed file."""

    id: int
    path: str
    language: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(slots=True, frozen=True)
class SpanRow:
    """A stored span with its file path; lines and columns 0-based."""

    id: int
    path: str
    language: str
    name: str
    kind: str
    ordinal: int
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    name_start_line: int
    name_start_col: int
    name_end_line: int
    name_end_col: int
    content_hash: str
    facts: dict[str, Any]
    enriched_hash: str | None


#: Columns read from the files table; every other :class:`SpanRow` field is a spans column.
_FILE_FIELDS = ("path", "language")


#: Every SpanRow field, in order: the one description the SQL below is generated from.
_SPAN_FIELDS = tuple(SpanRow.__dataclass_fields__)


#: The fields indexing writes for a new span, in the order of the rows it produces (every
#: field but the row id, the file's columns and ``enriched_hash``, which enrichment sets).
SPAN_INSERT_FIELDS = tuple(
    f for f in _SPAN_FIELDS if f not in ("id", "enriched_hash", *_FILE_FIELDS)
)


_FACTS_INDEX = _SPAN_FIELDS.index("facts")


_SPAN_SELECT = (
    "SELECT "
    + ", ".join(("f." if f in _FILE_FIELDS else "s.") + f for f in _SPAN_FIELDS)
    + " FROM spans s JOIN files f ON f.id = s.file_id "
)


def _span_row(row: Sequence[Any], with_facts: bool = True) -> SpanRow:
    values = list(row)
    values[_FACTS_INDEX] = json.loads(values[_FACTS_INDEX]) if with_facts else {}
    return SpanRow(*values)


def _enrichment(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "data": json.loads(row[0]),
        "model": row[1],
        "tier": row[2],
        "backend": row[3],
        "host": row[4],
        "created_at": row[5],
    }


def _contains(span: SpanRow, line: int, character: int) -> bool:
    if line == span.start_line and character < span.start_col:
        return False
    return not (line == span.end_line and character > span.end_col)
