"""Typed rows of the index: FileRow, SpanRow and the SELECT lists generated from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from spanlens_lsp.store.connection import StoreConnection


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
SPAN_FIELDS = tuple(SpanRow.__dataclass_fields__)


#: The fields indexing writes for a new span, in the order of the rows it produces (every
#: field but the row id, the file's columns and ``enriched_hash``, which enrichment sets).
SPAN_INSERT_FIELDS = tuple(
    f for f in SPAN_FIELDS if f not in ("id", "enriched_hash", *_FILE_FIELDS)
)


_FACTS_INDEX = SPAN_FIELDS.index("facts")

#: The columns a :class:`FileRow` is read from, in order.
FILE_COLUMNS = ", ".join(f.name for f in fields(FileRow))

#: The columns an enrichment with its provenance is read from (see :func:`enrichment_record`).
ENRICHMENT_COLUMNS = "data, model, tier, backend, host, created_at"


def _column_types(row_type: type) -> tuple[type | tuple[type, ...], ...]:
    """The Python type SQLite hands back for each column of a row type, as spanlens writes
    them (``facts`` is JSON text). A value of another type was not written by spanlens: it
    comes from a damaged page that the check on open does not read."""
    known: dict[str, type | tuple[type, ...]] = {
        "int": int,
        "str": str,
        "str | None": (str, type(None)),
    }
    return tuple(known.get(str(f.type), str) for f in fields(row_type))


_FILE_TYPES = _column_types(FileRow)
_SPAN_TYPES = _column_types(SpanRow)


#: Every :class:`SpanRow` field as a column of ``spans s`` or ``files f``, in order; and their
#: ``SELECT`` over ``spans s JOIN files f``: add the ``WHERE`` and read each row with
#: :func:`span_row`.
SPAN_COLUMNS = ", ".join(("f." if f in _FILE_FIELDS else "s.") + f for f in SPAN_FIELDS)
SPAN_SELECT = "SELECT " + SPAN_COLUMNS + " FROM spans s JOIN files f ON f.id = s.file_id "


def stored_json(conn: StoreConnection, value: Any, column: str) -> Any:
    """The value of a JSON column, decoded. spanlens writes only JSON text there: anything
    else (bytes, a number, text that is not JSON) was damaged on disk and raises
    :class:`~spanlens_lsp.store.errors.StoreCorrupt`, so the database is set aside and rebuilt."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            pass
    raise conn.damaged(f"{column} holds {type(value).__name__} that is not JSON text")


def file_row(row: Sequence[Any], conn: StoreConnection) -> FileRow:
    """A :class:`FileRow` from ``id, path, language, size, mtime_ns, sha256``; a value of the
    wrong type raises :class:`~spanlens_lsp.store.errors.StoreCorrupt`."""
    if not all(map(isinstance, row, _FILE_TYPES)):
        raise conn.damaged(f"file row {row[0]!r} holds a value of the wrong type")
    return FileRow(*row)


def span_row(row: Sequence[Any], conn: StoreConnection, with_facts: bool = True) -> SpanRow:
    """A :class:`SpanRow` from a row read with :data:`SPAN_SELECT` (``facts`` left empty
    unless ``with_facts``); a value of the wrong type raises
    :class:`~spanlens_lsp.store.errors.StoreCorrupt`."""
    values = list(row)
    if not all(map(isinstance, values, _SPAN_TYPES)):
        raise conn.damaged(f"span row {values[0]!r} holds a value of the wrong type")
    values[_FACTS_INDEX] = (
        stored_json(conn, values[_FACTS_INDEX], "spans.facts") if with_facts else {}
    )
    return SpanRow(*values)


def enrichment_record(row: Sequence[Any], conn: StoreConnection) -> dict[str, Any]:
    """An enrichment with its provenance, from a row read as :data:`ENRICHMENT_COLUMNS`."""
    return {
        "data": stored_json(conn, row[0], "enrichments.data"),
        "model": row[1],
        "tier": row[2],
        "backend": row[3],
        "host": row[4],
        "created_at": row[5],
    }
