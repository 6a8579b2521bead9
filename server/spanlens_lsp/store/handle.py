"""Store: one connection to a workspace database, and the queries of its ``files`` and
``spans`` tables (the other tables have modules of free functions: see
:mod:`spanlens_lsp.store`)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from filelock import FileLock, Timeout

from spanlens_lsp.store.connection import (
    BUSY_TIMEOUT_MS,
    StoreConnection,
    connect,
    inode_of,
    read_only_message,
)
from spanlens_lsp.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
)
from spanlens_lsp.store.migrations import LATEST_VERSION, current_version, migrate
from spanlens_lsp.store.rows import (
    ENRICHMENT_COLUMNS,
    FILE_COLUMNS,
    SPAN_INSERT_FIELDS,
    SPAN_SELECT,
    FileRow,
    SpanRow,
    enrichment_record,
    file_row,
    span_row,
)


class _Rebuilds:
    """How many times this process rebuilt a damaged database (see :attr:`Store.conn`)."""

    count = 0


rebuilds = _Rebuilds()


class Store:
    """One connection to a workspace database. Not shared across threads."""

    def __init__(
        self, path: Path, *, readonly: bool = False, scratch_dir: Path | None = None
    ) -> None:
        self.path = path
        #: Whether this connection only reads (the file or its folder is not writable).
        self.readonly = readonly
        #: Where a damaged database was set aside when this open rebuilt it.
        self.recovered_from: Path | None = None
        #: Rows salvaged from that damaged database, by table.
        self.salvaged: dict[str, int] = {}
        #: A scratch copy's temporary folder, removed on close (see ``scratch_store``).
        self._scratch_dir = scratch_dir
        self._generation = rebuilds.count
        self._conn = self._open()

    @property
    def conn(self) -> StoreConnection:
        """The connection; after this process rebuilt the database, one to the new file.

        Every connection of a process then follows the rebuild on its next statement (the
        server holds several), instead of reading on in the damaged file set aside.
        """
        if self._generation != rebuilds.count and not self._conn.in_transaction:
            self._generation = rebuilds.count
            old = self._conn
            self._conn = self._open()
            try:
                old.close()
            except sqlite3.Error:
                pass
        return self._conn

    def _open(self) -> StoreConnection:
        path = self.path
        readonly = self.readonly
        try:
            conn = self._connect_readonly() if readonly else connect(path)
        except sqlite3.OperationalError as exc:
            why = "it is a directory" if path.is_dir() else str(exc)
            raise StoreError(f"cannot open {path}: {why}") from exc
        conn.db_path = path
        conn.db_inode = inode_of(path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if readonly:
                if current_version(conn) < LATEST_VERSION:
                    raise StoreReadOnly(
                        f"{path} was written by an older spanlens and is read-only, so it "
                        "cannot be upgraded: make it writable and run `spanlens index`"
                    )
                migrate(conn, path)  # refuses a newer database; writes nothing here
            else:
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
                # Switching to WAL and migrating a new database can meet SQLITE_BUSY without
                # SQLite's busy handler waiting (two first-time opens at once): one process at
                # a time does it, under a lock file beside the database.
                with FileLock(f"{path}.lock", timeout=BUSY_TIMEOUT_MS / 1000):
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                    if mode is None:
                        raise StoreCorrupt(f"{path} is not a database", path)
                    migrate(conn, path)
        except StoreError:
            conn.close()
            raise
        except Timeout as exc:
            conn.close()
            raise StoreLocked(
                f"{path} is locked by another spanlens process; try again when it finishes"
            ) from exc
        except sqlite3.OperationalError as exc:
            conn.close()
            if "unable to open" in str(exc).lower():
                why = "it is a directory" if path.is_dir() else str(exc)
                raise StoreError(f"cannot open {path}: {why}") from exc
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                raise StoreLocked(
                    f"{path} is locked by another spanlens process; try again when it finishes"
                ) from exc
            raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_readonly(self) -> StoreConnection:
        """A read-only connection; ``immutable`` when SQLite cannot even make the WAL index
        (a read-only folder): nothing can write such a database meanwhile anyway."""
        base = f"file:{quote(str(self.path))}?mode=ro"
        conn = connect(base, uri=True)
        conn.db_path = self.path
        conn.db_inode = inode_of(self.path)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except StoreCorrupt:
            conn.close()
            raise
        except sqlite3.OperationalError:  # StoreReadOnly included: SQLITE_READONLY_CANTINIT
            conn.close()
        return connect(base + "&immutable=1", uri=True)

    def close(self) -> None:
        """Close the connection (idempotent); a scratch copy's files go with it."""
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken eagerly, so a busy database fails fast and clearly."""
        if self.readonly:
            raise StoreReadOnly(read_only_message(self.path))
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except StoreError:
            raise
        except sqlite3.OperationalError as exc:
            raise StoreLocked(
                f"{self.path} is locked by another spanlens process; try again when it finishes"
            ) from exc
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the error that got here says more than the rollback's
            raise
        self.conn.execute("COMMIT")

    # ----------------------------------------------------------------- files

    def file_rows(self) -> dict[str, FileRow]:
        """Every indexed file by relative path."""
        rows = self.conn.execute(f"SELECT {FILE_COLUMNS} FROM files").fetchall()
        return {row[1]: file_row(row, self.conn) for row in rows}

    def file_row(self, path: str) -> FileRow | None:
        """One indexed file by relative path."""
        row = self.conn.execute(
            f"SELECT {FILE_COLUMNS} FROM files WHERE path = ?", (path,)
        ).fetchone()
        return file_row(row, self.conn) if row else None

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
        """Insert new spans (rows in :data:`SPAN_INSERT_FIELDS` order); returns their ids.

        Call inside a write transaction: new rowids are then exactly those above the
        maximum before the insert.
        """
        before = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM spans").fetchone()[0]
        self.conn.executemany(
            f"INSERT INTO spans (file_id, {', '.join(SPAN_INSERT_FIELDS)}) "
            f"VALUES (?{', ?' * len(SPAN_INSERT_FIELDS)})",
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
            SPAN_SELECT + "WHERE f.path = ? AND s.start_line <= ? AND s.end_line >= ? "
            "ORDER BY (s.end_line - s.start_line) ASC, s.start_line DESC",
            (path, line, line),
        ).fetchall()
        for row in rows:
            span = span_row(row, self.conn)
            if character is None or _contains(span, line, character):
                return span
        return None

    def spans_in_file(self, path: str, *, with_facts: bool = True) -> list[SpanRow]:
        """Every span of one file in source order.

        ``with_facts=False`` leaves ``facts`` empty: decoding them is most of the cost, and
        lenses and diagnostics only need names, positions and hashes.
        """
        rows = self.conn.execute(
            SPAN_SELECT + "WHERE f.path = ? ORDER BY s.start_line, s.start_col", (path,)
        ).fetchall()
        return [span_row(r, self.conn, with_facts) for r in rows]

    def span_by_id(self, span_id: int) -> SpanRow | None:
        """One span by id."""
        row = self.conn.execute(SPAN_SELECT + "WHERE s.id = ?", (span_id,)).fetchone()
        return span_row(row, self.conn) if row else None

    def current_hash(self, span_id: int) -> str | None:
        """The content hash span ``span_id`` has now (None once it is gone)."""
        row = self.conn.execute(
            "SELECT content_hash FROM spans WHERE id = ?", (span_id,)
        ).fetchone()
        return str(row[0]) if row else None

    def indexed_sha256(self, path: str) -> str | None:
        """The sha256 of ``path``'s bytes when it was last indexed (None: not indexed)."""
        row = self.conn.execute("SELECT sha256 FROM files WHERE path = ?", (path,)).fetchone()
        return str(row[0]) if row else None

    def hash_in_use(self, content_hash: str) -> bool:
        """Whether any span still has ``content_hash``."""
        row = self.conn.execute(
            "SELECT 1 FROM spans WHERE content_hash = ? LIMIT 1", (content_hash,)
        ).fetchone()
        return row is not None

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

    def read_every_row(self) -> None:
        """Read and decode every row of the index as the commands do, for `spanlens doctor`.

        ``quick_check`` checks the file's structure but reads no value, so a damaged page can
        pass it and still hold text that is not UTF-8 or a value of the wrong type: this
        raises :class:`StoreCorrupt` for those, as any command that met them would.
        """
        conn = self.conn
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT IN ('files', 'spans', 'enrichments') AND name NOT LIKE 'span_search%'"
        ).fetchall()
        _decode_all(conn, f"SELECT {FILE_COLUMNS} FROM files", lambda row: file_row(row, conn))
        _decode_all(conn, SPAN_SELECT, lambda row: span_row(row, conn))
        _decode_all(
            conn,
            f"SELECT {ENRICHMENT_COLUMNS} FROM enrichments",
            lambda row: enrichment_record(row, conn),
        )
        for (table,) in tables:
            _decode_all(conn, f'SELECT * FROM "{table}"', lambda row: None)

    def span_count(self) -> int:
        """How many spans the workspace has."""
        return int(self.conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    def span_names(self) -> list[str]:
        """Every distinct span name of the workspace (what a reply may name, for grounding)."""
        return [str(row[0]) for row in self.conn.execute("SELECT DISTINCT name FROM spans")]

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


def _contains(span: SpanRow, line: int, character: int) -> bool:
    if line == span.start_line and character < span.start_col:
        return False
    return not (line == span.end_line and character > span.end_col)


def _decode_all(conn: StoreConnection, sql: str, decode: Callable[[Any], object]) -> None:
    """Run ``decode`` on every row ``sql`` reads, a thousand at a time. The cursor is closed
    whatever happens: a statement left open would keep a damaged file open past close()."""
    with closing(conn.execute(sql)) as cursor:
        while rows := cursor.fetchmany(1000):
            for row in rows:
                decode(row)


def database_version(store: Store) -> tuple[int, int]:
    """A value that stays the same while nothing in the database changes, as seen by this
    store's connection: SQLite's ``data_version`` (commits by any other connection) and the
    connection's own change count. Costs microseconds; compare only values of one
    connection (a new connection starts both again)."""
    conn = store.conn
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    return version, conn.total_changes
