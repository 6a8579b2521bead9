"""The SQLite connection wrapper: every statement's errors translated (damage, read-only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from spanlens_lsp.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
)

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

    connection: StoreConnection

    def _fail(self, exc: sqlite3.Error) -> None:
        error = _translated(exc, self.connection.db_path, self.connection.db_inode)
        if error is not None:
            # Let go of the statement now: the traceback keeps this cursor alive, and an open
            # statement keeps its connection (and the damaged file's WAL) open past close().
            self.close()
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


class StoreConnection(sqlite3.Connection):
    """The one wrapper every statement of the store goes through (see :class:`_Cursor`):
    a damaged database surfaces as :class:`StoreCorrupt` in any command, which then sets the
    file aside and rebuilds it (:func:`spanlens_lsp.store.repair.recover`)."""

    db_path: Path
    db_inode: int | None = None

    def damaged(self, what: str) -> StoreCorrupt:
        """The error for a value read from this database that cannot be what spanlens wrote
        (``what`` says which): damage the check on open does not see, handled as any other."""
        return StoreCorrupt(f"{self.db_path} is damaged ({what})", self.db_path, self.db_inode)

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _Cursor)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)


def inode_of(path: Path) -> int | None:
    """The inode of the file at ``path`` (None when there is none): which database a
    connection opened, so a rebuild does not set aside a file another process already
    replaced."""
    try:
        return path.stat().st_ino
    except OSError:
        return None


#: What SQLite (or Python's sqlite3 module) says of a damaged file. ``quick_check`` does not
#: read column values, so a damaged page can pass it and still hold a TEXT value that is not
#: UTF-8: the module refuses to decode it with an OperationalError that has no SQLite error
#: code, only this message.
_CORRUPTION_WORDS = ("not a database", "malformed", "corrupt", "could not decode to utf-8")


def _is_corruption(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(words in text for words in _CORRUPTION_WORDS)


def connect(target: str | Path, *, uri: bool = False) -> StoreConnection:
    """A :class:`StoreConnection` to ``target`` (a path, or a ``file:`` URI when ``uri``):
    in autocommit mode, waiting up to :data:`BUSY_TIMEOUT_MS` for a busy database."""
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
        factory=StoreConnection,
        uri=uri,
    )
    assert isinstance(conn, StoreConnection)
    return conn
