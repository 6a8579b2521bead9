"""The workspace database: opening, locking, corruption recovery and named queries.

Every SQL statement spanlens runs lives in this package. Hot paths (indexing, hovers) use the
standard ``sqlite3`` connection directly with ``executemany``; reporting uses sqlite-utils.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanlens.store.migrations import migrate

DB_DIRNAME = ".spanlens"
DB_FILENAME = "index.db"
BUSY_TIMEOUT_MS = 5000


class StoreError(Exception):
    """A database problem a user can act on; its message is one clear line."""


class StoreLocked(StoreError):
    """Another process holds the write lock for longer than the busy timeout."""


class StoreCorrupt(StoreError):
    """The database file is not a usable SQLite database."""


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


#: Tuple layout of a span row as indexing workers produce it (ready for executemany).
SPAN_COLUMNS = (
    "name",
    "kind",
    "ordinal",
    "start_line",
    "start_col",
    "end_line",
    "end_col",
    "name_start_line",
    "name_start_col",
    "name_end_line",
    "name_end_col",
    "content_hash",
    "facts",
)

_SPAN_SELECT = (
    "SELECT s.id, f.path, f.language, s.name, s.kind, s.ordinal, s.start_line, s.start_col, "
    "s.end_line, s.end_col, s.name_start_line, s.name_start_col, s.name_end_line, "
    "s.name_end_col, s.content_hash, s.facts, s.enriched_hash "
    "FROM spans s JOIN files f ON f.id = s.file_id "
)


def _span_row(row: Sequence[Any], with_facts: bool = True) -> SpanRow:
    values = list(row)
    values[15] = json.loads(values[15]) if with_facts else {}
    return SpanRow(*values)


def db_path_for(root: Path) -> Path:
    """Where the database of the workspace at ``root`` lives."""
    return root / DB_DIRNAME / DB_FILENAME


def open_store(root: Path, *, readonly: bool = False) -> Store:
    """Open (creating and migrating as needed) the database of the workspace at ``root``.

    A file that is not a SQLite database, or is damaged, is moved aside (kept, renamed with a
    timestamp) and a fresh database is built in its place; the caller can tell from
    :attr:`Store.recovered_from`.
    """
    path = db_path_for(root)
    if readonly and not path.exists():
        raise StoreError(f"no index at {path}: run `spanlens index {root}` first")
    _make_private_dir(path.parent)
    try:
        return Store(path)
    except StoreLocked:
        raise
    except sqlite3.DatabaseError as exc:
        if not _is_corruption(exc):
            raise StoreError(f"cannot open {path}: {exc}") from exc
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(path) + suffix)
            if part.exists():
                part.replace(Path(str(aside) + suffix))
        store = Store(path)
        store.recovered_from = aside
        return store


def _make_private_dir(folder: Path) -> None:
    """Create the .spanlens folder with a .gitignore, so the index is never committed."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".gitignore").write_text("# spanlens index: local to this machine\n*\n")


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


class Store:
    """One connection to a workspace database. Not shared across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.recovered_from: Path | None = None
        self.conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None:
                raise sqlite3.DatabaseError("file is not a database")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            migrate(self.conn)
        except sqlite3.OperationalError as exc:
            self.conn.close()
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                raise StoreLocked(
                    f"{path} is locked by another spanlens process; try again when it finishes"
                ) from exc
            raise
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken eagerly, so a busy database fails fast and clearly."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreLocked(
                f"{self.path} is locked by another spanlens process; try again when it finishes"
            ) from exc
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ----------------------------------------------------------------- files

    def file_rows(self) -> dict[str, FileRow]:
        """Every indexed file by relative path."""
        rows = self.conn.execute(
            "SELECT id, path, language, size, mtime_ns, sha256 FROM files"
        ).fetchall()
        return {row[1]: FileRow(*row) for row in rows}

    def file_row(self, path: str) -> FileRow | None:
        """One indexed file by relative path."""
        row = self.conn.execute(
            "SELECT id, path, language, size, mtime_ns, sha256 FROM files WHERE path = ?", (path,)
        ).fetchone()
        return FileRow(*row) if row else None

    def touch_files(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """Record new (size, mtime_ns) for files whose content did not change: (size, mtime, id)."""
        self.conn.executemany("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", rows)

    def delete_files(self, file_ids: Iterable[int]) -> int:
        """Forget files (and, by cascade, their spans); returns spans removed."""
        removed = 0
        for file_id in file_ids:
            removed += self.conn.execute(
                "SELECT COUNT(*) FROM spans WHERE file_id = ?", (file_id,)
            ).fetchone()[0]
            self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return removed

    def upsert_file(
        self, path: str, language: str, size: int, mtime_ns: int, sha256: str, parse_errors: bool
    ) -> int:
        """Insert or update a file row; returns its id."""
        row = self.conn.execute(
            "INSERT INTO files (path, language, size, mtime_ns, sha256, parse_errors, indexed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
            "language = excluded.language, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, "
            "parse_errors = excluded.parse_errors, indexed_at = excluded.indexed_at RETURNING id",
            (path, language, size, mtime_ns, sha256, int(parse_errors), time.time()),
        ).fetchone()
        return int(row[0])

    # ----------------------------------------------------------------- spans

    def span_keys(self, file_id: int) -> dict[tuple[str, str, int], tuple[int, str]]:
        """(name, kind, ordinal) -> (span id, content_hash) for one file."""
        rows = self.conn.execute(
            "SELECT name, kind, ordinal, id, content_hash FROM spans WHERE file_id = ?", (file_id,)
        ).fetchall()
        return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}

    def insert_spans(self, file_id: int, rows: Iterable[Sequence[Any]]) -> list[int]:
        """Insert new spans (rows in :data:`SPAN_COLUMNS` order); returns their ids.

        Call inside a write transaction: new rowids are then exactly those above the
        maximum before the insert.
        """
        before = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM spans").fetchone()[0]
        self.conn.executemany(
            "INSERT INTO spans (file_id, name, kind, ordinal, start_line, start_col, end_line, "
            "end_col, name_start_line, name_start_col, name_end_line, name_end_col, "
            "content_hash, facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((file_id, *row) for row in rows),
        )
        return [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM spans WHERE file_id = ? AND id > ? ORDER BY id", (file_id, before)
            )
        ]

    def update_span_positions(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rewrite positions of spans whose hash is unchanged: (8 positions..., span id)."""
        self.conn.executemany(
            "UPDATE spans SET start_line = ?, start_col = ?, end_line = ?, end_col = ?, "
            "name_start_line = ?, name_start_col = ?, name_end_line = ?, name_end_col = ? "
            "WHERE id = ?",
            rows,
        )

    def update_span_contents(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rewrite positions, hash and facts of changed spans: (8 positions, hash, facts, id).

        ``enriched_hash`` is kept: the previous enrichment is shown, marked stale, until the
        new one lands.
        """
        self.conn.executemany(
            "UPDATE spans SET start_line = ?, start_col = ?, end_line = ?, end_col = ?, "
            "name_start_line = ?, name_start_col = ?, name_end_line = ?, name_end_col = ?, "
            "content_hash = ?, facts = ? WHERE id = ?",
            rows,
        )

    def delete_spans(self, span_ids: Iterable[int]) -> None:
        """Delete spans by id."""
        self.conn.executemany("DELETE FROM spans WHERE id = ?", ((i,) for i in span_ids))

    def span_at(self, path: str, line: int, character: int | None = None) -> SpanRow | None:
        """The innermost span of ``path`` that encloses 0-based ``line`` (and column)."""
        rows = self.conn.execute(
            _SPAN_SELECT + "WHERE f.path = ? AND s.start_line <= ? AND s.end_line >= ? "
            "ORDER BY (s.end_line - s.start_line) ASC, s.start_line DESC",
            (path, line, line),
        ).fetchall()
        for row in rows:
            span = _span_row(row)
            if character is None or _contains(span, line, character):
                return span
        return None

    def spans_in_file(self, path: str, *, with_facts: bool = True) -> list[SpanRow]:
        """Every span of one file in source order.

        ``with_facts=False`` leaves ``facts`` empty: decoding them is most of the cost, and
        lenses and diagnostics only need names, positions and hashes.
        """
        rows = self.conn.execute(
            _SPAN_SELECT + "WHERE f.path = ? ORDER BY s.start_line, s.start_col", (path,)
        ).fetchall()
        return [_span_row(r, with_facts) for r in rows]

    def span_by_id(self, span_id: int) -> SpanRow | None:
        """One span by id."""
        row = self.conn.execute(_SPAN_SELECT + "WHERE s.id = ?", (span_id,)).fetchone()
        return _span_row(row) if row else None

    def table_counts(self) -> dict[str, int]:
        """Rows per table, for `spanlens doctor` (through sqlite-utils: not a hot path)."""
        import sqlite_utils

        db = sqlite_utils.Database(self.conn)
        return {
            name: db.table(name).count
            for name in db.table_names()
            if not name.startswith("span_search")
        }

    def integrity_problem(self) -> str | None:
        """SQLite's quick_check verdict: None when the database is sound."""
        verdict = self.conn.execute("PRAGMA quick_check").fetchone()[0]
        return None if verdict == "ok" else str(verdict)

    def span_count(self) -> int:
        """How many spans the workspace has."""
        return int(self.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    # ----------------------------------------------------------- enrichments

    def enrichment_for(self, content_hash: str, schema_version: str) -> dict[str, Any] | None:
        """The enrichment of exactly this hash and schema version, with its provenance."""
        row = self.conn.execute(
            "SELECT data, model, tier, backend, host, created_at FROM enrichments "
            "WHERE content_hash = ? AND schema_version = ?",
            (content_hash, schema_version),
        ).fetchone()
        return _enrichment(row) if row else None

    def latest_enrichment(self, hashes: Sequence[str]) -> dict[str, Any] | None:
        """The newest enrichment of any of ``hashes`` at any schema version (for stale display)."""
        hashes = [h for h in hashes if h]
        if not hashes:
            return None
        marks = ",".join("?" * len(hashes))
        row = self.conn.execute(
            "SELECT data, model, tier, backend, host, created_at FROM enrichments "
            f"WHERE content_hash IN ({marks}) ORDER BY created_at DESC LIMIT 1",
            hashes,
        ).fetchone()
        return _enrichment(row) if row else None

    def failure_for(self, content_hash: str) -> dict[str, Any] | None:
        """The failure record of a hash: count, last error, next retry time."""
        row = self.conn.execute(
            "SELECT count, last_error, next_retry_at FROM failures WHERE content_hash = ?",
            (content_hash,),
        ).fetchone()
        if not row:
            return None
        return {"count": row[0], "last_error": row[1], "next_retry_at": row[2]}

    def state_counts(self, schema_version: str, max_failures: int) -> dict[str, int]:
        """Spans by state: fresh, stale, pending, failed (each span in exactly one)."""
        rows = self.conn.execute(
            "SELECT CASE "
            " WHEN e.content_hash IS NOT NULL THEN 'fresh' "
            " WHEN fl.count >= ? THEN 'failed' "
            " WHEN s.enriched_hash IS NOT NULL OR EXISTS (SELECT 1 FROM enrichments o "
            "   WHERE o.content_hash = s.content_hash) THEN 'stale' "
            " ELSE 'pending' END AS state, COUNT(*) "
            "FROM spans s "
            "LEFT JOIN enrichments e ON e.content_hash = s.content_hash AND e.schema_version = ? "
            "LEFT JOIN failures fl ON fl.content_hash = s.content_hash "
            "GROUP BY state",
            (max_failures, schema_version),
        ).fetchall()
        counts = {"fresh": 0, "stale": 0, "pending": 0, "failed": 0}
        counts.update({state: n for state, n in rows})
        return counts

    def counts_by_language_and_kind(self) -> list[tuple[str, str, int]]:
        """(language, kind, spans) for the status report."""
        return self.conn.execute(
            "SELECT f.language, s.kind, COUNT(*) FROM spans s JOIN files f ON f.id = s.file_id "
            "GROUP BY f.language, s.kind ORDER BY f.language, s.kind"
        ).fetchall()

    def files_by_language(self) -> list[tuple[str, int, int]]:
        """(language, files, files with parse errors)."""
        return self.conn.execute(
            "SELECT language, COUNT(*), SUM(parse_errors) FROM files GROUP BY language "
            "ORDER BY language"
        ).fetchall()


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


def workspace_root_of(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` (itself included) that has a spanlens database."""
    path = path.resolve()
    for candidate in (path, *path.parents):
        if (candidate / DB_DIRNAME / DB_FILENAME).exists():
            return candidate
    return None
