"""The workspace database: opening, locking, corruption recovery and named queries.

Every SQL statement spanlens runs lives in this package. Hot paths (indexing, hovers) use the
standard ``sqlite3`` connection directly with ``executemany``; reporting uses sqlite-utils.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from filelock import FileLock, Timeout

from spanlens.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
    StoreTooNew,
)
from spanlens.store.migrations import LATEST_VERSION, current_version, migrate
from spanlens.store.states import STATE_CASE

__all__ = [
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreReadOnly",
    "StoreTooNew",
]

DB_DIRNAME = ".spanlens"
DB_FILENAME = "index.db"
BUSY_TIMEOUT_MS = 5000

#: SQLite's primary result codes that mean a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB),
#: and a write refused by a read-only file or folder (SQLITE_READONLY).
_CORRUPT_CODES = frozenset({11, 26})
_READONLY_CODE = 8


def read_only_message(path: Path) -> str:
    """The one line a writing command prints when the index cannot be written."""
    return (
        f"the index is read-only ({path}): `spanlens status` and `show` still read it; "
        "make it writable to index or enrich"
    )


def _translated(exc: sqlite3.Error, path: Path, inode: int | None = None) -> StoreError | None:
    """The store error ``exc`` stands for (damaged file, read-only), or None."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary in _CORRUPT_CODES or _is_corruption(exc):
        return StoreCorrupt(f"{path} is damaged ({exc})", path, inode)
    if primary == _READONLY_CODE or "readonly database" in text:
        return StoreReadOnly(read_only_message(path))
    return None


class _Cursor(sqlite3.Cursor):
    """A cursor that raises :class:`StoreCorrupt` / :class:`StoreReadOnly` for SQLite's
    damaged-file and read-only errors, wherever a statement runs or a row is read."""

    connection: _Connection

    def _fail(self, exc: sqlite3.Error) -> None:
        error = _translated(exc, self.connection.db_path, self.connection.db_inode)
        if error is not None:
            raise error from exc

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            raise

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        try:
            return super().executemany(sql, seq_of_parameters)
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            raise

    def executescript(self, sql_script: str, /) -> _Cursor:
        try:
            super().executescript(sql_script)
            return self
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            raise

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            raise

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(size if size is not None else self.arraysize)
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            raise

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            raise

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            raise


class _Connection(sqlite3.Connection):
    """The one wrapper every statement of the store goes through (see :class:`_Cursor`):
    a damaged database surfaces as :class:`StoreCorrupt` in any command, which then sets the
    file aside and rebuilds it (:func:`spanlens.store.repair.recover`)."""

    db_path: Path
    db_inode: int | None = None

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _Cursor)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)


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


def db_path_for(root: Path) -> Path:
    """Where the database of the workspace at ``root`` lives."""
    return root / DB_DIRNAME / DB_FILENAME


class _Rebuilds:
    """How many times this process rebuilt a damaged database (see :attr:`Store.conn`)."""

    count = 0


rebuilds = _Rebuilds()

#: (path, inode, device, size, mtime) of database files this process found sound, so the
#: connections a server opens at start check the file once (WAL writes leave it unchanged).
_checked: set[tuple[str, int, int, int, int]] = set()
_checked_lock = threading.Lock()


def open_store(root: Path, *, readonly: bool = False) -> Store:
    """Open (creating and migrating as needed) the database of the workspace at ``root``.

    ``readonly`` is for commands that only read (status, stats, doctor): there must be an
    index already, and a file or folder that cannot be written is opened read-only instead
    of refused. A writing caller gets :class:`StoreReadOnly` for one.

    An open runs SQLite's ``quick_check`` (0.17 s for a 180 MB database, some 30 ms at 7 MB)
    unless the file is exactly as it was when a check last passed (``index.db.checked``
    holds its inode, size and mtime; any write changes them). A damaged database, found
    then or by any later statement (:class:`StoreCorrupt`), is set aside (kept, renamed
    ``index.db.corrupt-<time>``) and a fresh one is built in its place with every
    enrichment row that could still be read; the caller can tell from
    :attr:`Store.recovered_from` and :attr:`Store.salvaged`.
    A database from a newer spanlens is refused (:class:`StoreTooNew`).
    """
    path = db_path_for(root)
    if readonly and not path.exists():
        raise StoreError(f"no index at {path}: run `spanlens index {root}` first")
    writable = _writable(path)
    if not writable and not readonly:
        if not path.parent.exists():
            raise StoreReadOnly(
                f"cannot create {path.parent}: the workspace root {root} is not writable"
            )
        raise StoreReadOnly(read_only_message(path))
    if writable:
        _make_private_dir(path.parent)
    damaged = _inode(path)
    try:
        return _open_checked(path, readonly=not writable)
    except StoreCorrupt as exc:
        if not writable:
            raise StoreCorrupt(
                f"{path} is damaged and read-only, so it cannot be rebuilt: make it writable, "
                "or delete it and run `spanlens index`",
                path,
            ) from exc
        from spanlens.store.repair import recover

        recovery = recover(path, exc.inode or damaged)
        store = _open_checked(path, readonly=False)
        store.recovered_from = recovery.aside
        store.salvaged = recovery.salvaged
        return store


def scratch_store(source: Store | None = None) -> Store:
    """A private, writable copy of ``source`` (or a new empty database) in a temporary
    folder, gone on close: for a reader that must index a file it cannot write back
    (`spanlens show` on a read-only index)."""
    folder = Path(tempfile.mkdtemp(prefix="spanlens-scratch-"))
    path = folder / DB_FILENAME
    try:
        if source is not None:
            target = sqlite3.connect(path)
            try:
                source.conn.backup(target)
            finally:
                target.close()
        store = Store(path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    store._scratch_dir = folder
    return store


def _open_checked(path: Path, *, readonly: bool) -> Store:
    store = Store(path, readonly=readonly)
    try:
        key = _check_key(path)
        if key is not None and (key in _checked or _stamp_matches(path, key)):
            return store
        problem = store.integrity_problem()
        if problem is not None:
            raise StoreCorrupt(f"{path} fails SQLite's integrity check ({problem})", path)
        if key is not None:
            with _checked_lock:
                _checked.add(key)
            if not readonly:
                _write_stamp(path, key)
        return store
    except BaseException:
        store.close()
        raise


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".checked")


def _stamp_matches(path: Path, key: tuple[str, int, int, int, int]) -> bool:
    """Whether the file is exactly as it was when a check last passed (same inode, size and
    mtime, nothing pending in the WAL): a warm `spanlens index` then pays no check."""
    try:
        if Path(str(path) + "-wal").stat().st_size:
            return False
    except OSError:
        pass
    try:
        return _stamp_path(path).read_text() == " ".join(map(str, key[1:]))
    except (OSError, UnicodeDecodeError):
        return False


def _write_stamp(path: Path, key: tuple[str, int, int, int, int]) -> None:
    try:
        _stamp_path(path).write_text(" ".join(map(str, key[1:])))
    except OSError:
        pass  # no stamp: the next open checks again


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _check_key(path: Path) -> tuple[str, int, int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (str(path), info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns)


def forget_checked(path: Path) -> None:
    """Make the next open of ``path`` in this process check it again (after a rebuild)."""
    with _checked_lock:
        _checked.difference_update({key for key in _checked if key[0] == str(path)})


def _writable(path: Path) -> bool:
    """Whether spanlens can write the database at ``path`` (its file and folder, or create
    them). Root passes every permission check but not a read-only mount: os.access knows."""
    folder = path.parent
    if path.exists():
        return os.access(path, os.W_OK) and os.access(folder, os.W_OK)
    if folder.exists():
        return os.access(folder, os.W_OK)
    return os.access(folder.parent, os.W_OK)


def _make_private_dir(folder: Path) -> None:
    """Create the .spanlens folder with a .gitignore, so the index is never committed."""
    if folder.is_dir():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".gitignore").write_text("# spanlens index: local to this machine\n*\n")
    except OSError as exc:
        raise StoreReadOnly(f"cannot create {folder}: {exc.strerror}") from exc


def _is_corruption(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _connect(target: str | Path, *, uri: bool = False) -> _Connection:
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        factory=_Connection,
        uri=uri,
    )
    assert isinstance(conn, _Connection)
    return conn


class Store:
    """One connection to a workspace database. Not shared across threads."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        #: Whether this connection only reads (the file or its folder is not writable).
        self.readonly = readonly
        #: Where a damaged database was set aside when this open rebuilt it.
        self.recovered_from: Path | None = None
        #: Rows salvaged from that damaged database, by table.
        self.salvaged: dict[str, int] = {}
        self._generation = rebuilds.count
        self._conn = self._open()

    @property
    def conn(self) -> _Connection:
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

    def _open(self) -> _Connection:
        path = self.path
        readonly = self.readonly
        try:
            conn = self._connect_readonly() if readonly else _connect(path)
        except sqlite3.OperationalError as exc:
            why = "it is a directory" if path.is_dir() else str(exc)
            raise StoreError(f"cannot open {path}: {why}") from exc
        conn.db_path = path
        conn.db_inode = _inode(path)
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

    def _connect_readonly(self) -> _Connection:
        """A read-only connection; ``immutable`` when SQLite cannot even make the WAL index
        (a read-only folder): nothing can write such a database meanwhile anyway."""
        base = f"file:{quote(str(self.path))}?mode=ro"
        conn = _connect(base, uri=True)
        conn.db_path = self.path
        conn.db_inode = _inode(self.path)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except StoreCorrupt:
            conn.close()
            raise
        except sqlite3.OperationalError:  # StoreReadOnly included: SQLITE_READONLY_CANTINIT
            conn.close()
        return _connect(base + "&immutable=1", uri=True)

    def close(self) -> None:
        """Close the connection (idempotent); a scratch copy's files go with it."""
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None

    _scratch_dir: Path | None = None

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
            "SELECT " + STATE_CASE + " AS state, COUNT(*) FROM spans s GROUP BY state",
            (schema_version, max_failures),
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
