"""Rebuilding a damaged database: set the file aside, start afresh, salvage what is readable.

Files and spans come back from the next index (the sources are on disk). Enrichments are the
expensive part, each a model call: every row of them that SQLite can still read is copied
into the new database, and so are failures, attempts and docs, which cost nothing extra.
Rows are read by rowid ranges through the table's own b-tree; a range that hits a damaged
page is split in halves until the damage is fenced in, so one bad page loses only its rows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanlens_lsp.store.checks import forget_checked
from spanlens_lsp.store.connection import inode_of
from spanlens_lsp.store.handle import Store, rebuilds

log = logging.getLogger(__name__)

#: Tables worth salvaging, and a check per row that it is not garbage read from a bad page.
SALVAGED_TABLES = ("enrichments", "failures", "attempts", "docs")
#: Rowids read per query while the table reads cleanly; and the most queries one table may
#: take when damage makes ranges split (so a wrecked file cannot make recovery take long).
_RANGE = 512
_QUERY_BUDGET = 20_000
#: When even the largest rowid cannot be read, how far up to look for rows.
_BLIND_MAX_ROWID = 1 << 21


@dataclass(slots=True)
class Recovery:
    """What :func:`recover` did: where the damaged file went, and rows saved by table."""

    aside: Path
    salvaged: dict[str, int] = field(default_factory=dict)

    def message(self, path: Path) -> str:
        """The one line that tells the user: what was damaged, where it went, what was saved."""
        saved = ", ".join(
            f"{count} {table if count != 1 else _SINGULAR.get(table, table)}"
            for table, count in self.salvaged.items()
            if count
        )
        return (
            f"{path} was damaged: kept it as {self.aside.name} and built a new index"
            f" (salvaged {saved or 'nothing'}); files are indexed again from disk"
        )


_SINGULAR = {
    "enrichments": "enrichment",
    "failures": "failure",
    "attempts": "attempt",
    "docs": "doc",
}


def recover(path: Path, damaged_inode: int | None = None) -> Recovery:
    """Set the damaged database at ``path`` aside and build a new one with what it held.

    Two processes that find the same damage do not both move files: under a lock, a file
    that was replaced meanwhile (another inode than ``damaged_inode``) is left alone.
    """
    with _recovery_lock(path):
        rebuilds.count += 1  # every connection of this process moves to the new file
        if damaged_inode is not None and inode_of(path) not in (damaged_inode, None):
            earlier = corrupt_files(path.parent)
            return Recovery(earlier[-1] if earlier else path)
        aside = _aside_name(path)
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(path) + suffix)
            if part.exists():
                part.replace(Path(str(aside) + suffix))
        forget_checked(path)
        store = Store(path)
        try:
            salvaged = salvage(aside, store.conn)
        finally:
            store.close()
    recovery = Recovery(aside, salvaged)
    # The one line every command and the server show (the CLI prints this logger's records).
    log.warning("%s", recovery.message(path))
    return recovery


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    return aside


@contextlib.contextmanager
def _recovery_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the rename is still atomic
        yield
        return
    with open(path.with_name(path.name + ".recover-lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def salvage(source: Path, target: sqlite3.Connection) -> dict[str, int]:
    """Copy every readable row of :data:`SALVAGED_TABLES` from the database file ``source``
    into ``target`` (same tables, same or newer schema); returns rows copied by table."""
    try:
        # Read-write, though nothing is written: a read-only connection would leave -wal and
        # -shm files behind beside the damaged copy.
        old = sqlite3.connect(source, isolation_level=None)
    except sqlite3.Error:
        return {}
    copied: dict[str, int] = {}
    try:
        for table in SALVAGED_TABLES:
            columns = _shared_columns(old, target, table)
            if not columns:
                continue
            copied[table] = _copy_table(old, target, table, columns)
    finally:
        old.close()
    return copied


def _shared_columns(old: sqlite3.Connection, new: sqlite3.Connection, table: str) -> list[str]:
    try:
        have = [row[1] for row in old.execute(f"PRAGMA table_info({table})")]
    except sqlite3.Error:
        return []
    wanted = {row[1] for row in new.execute(f"PRAGMA table_info({table})")}
    return [name for name in have if name in wanted]


def _copy_table(
    old: sqlite3.Connection, new: sqlite3.Connection, table: str, columns: list[str]
) -> int:
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    insert = f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({marks})"
    valid = _ROW_CHECKS.get(table, lambda row: True)
    copied = 0
    new.execute("BEGIN IMMEDIATE")
    try:
        for rows in _readable_rows(old, table, names):
            for row in rows:
                record = dict(zip(columns, row, strict=True))
                if not valid(record):
                    continue
                try:
                    copied += new.execute(insert, row).rowcount
                except sqlite3.Error:
                    continue  # a row that breaks a constraint is garbage from a bad page
        new.execute("COMMIT")
    except BaseException:
        new.execute("ROLLBACK")
        raise
    return copied


def _readable_rows(conn: sqlite3.Connection, table: str, names: str) -> Iterator[list[Any]]:
    """Rows of ``table`` by rowid ranges, splitting ranges that fail until the unreadable
    rows are fenced in; gives up on the table after :data:`_QUERY_BUDGET` queries."""
    query = f"SELECT {names} FROM {table} WHERE rowid BETWEEN ? AND ?"
    # One row is read by an exact lookup: a range read of the last row before a damaged page
    # steps onto that page to find where the range ends, and would lose the row with it.
    one = f"SELECT {names} FROM {table} WHERE rowid = ?"
    try:
        top = conn.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0]
    except sqlite3.Error:
        top = _BLIND_MAX_ROWID
    if top is None:
        return
    pending = [(low, min(low + _RANGE - 1, top)) for low in range(top - top % _RANGE, -1, -_RANGE)]
    budget = _QUERY_BUDGET
    while pending and budget > 0:
        low, high = pending.pop()
        budget -= 1
        try:
            if low == high:
                rows = conn.execute(one, (low,)).fetchall()
            else:
                rows = conn.execute(query, (low, high)).fetchall()
        except sqlite3.Error:
            if low < high:
                middle = (low + high) // 2
                pending += [(middle + 1, high), (low, middle)]
            continue
        yield rows


def _is_text(value: Any, longest: int = 1 << 20) -> bool:
    return isinstance(value, str) and 0 < len(value) <= longest and "\0" not in value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_object(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _enrichment_row(row: dict[str, Any]) -> bool:
    return (
        _is_text(row.get("content_hash"), 128)
        and _is_text(row.get("schema_version"), 64)
        and _json_object(row.get("data"))
        and all(_is_text(row.get(name), 1024) for name in ("model", "tier", "backend"))
        and isinstance(row.get("host"), str)
        and _is_number(row.get("created_at"))
    )


def _failure_row(row: dict[str, Any]) -> bool:
    return (
        _is_text(row.get("content_hash"), 128)
        and isinstance(row.get("count"), int)
        and isinstance(row.get("last_error"), str)
        and _is_number(row.get("next_retry_at"))
    )


def _attempt_row(row: dict[str, Any]) -> bool:
    return _is_number(row.get("started_at")) and isinstance(row.get("outcome"), str)


def _doc_row(row: dict[str, Any]) -> bool:
    return _is_text(row.get("path"), 4096) and _is_text(row.get("doc_path"), 4096)


_ROW_CHECKS = {
    "enrichments": _enrichment_row,
    "failures": _failure_row,
    "attempts": _attempt_row,
    "docs": _doc_row,
}


def corrupt_files(folder: Path) -> list[Path]:
    """Damaged databases set aside in ``folder``, oldest first (for `spanlens status`)."""
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.name.startswith("index.db.corrupt-")
            and not entry.name.endswith(("-wal", "-shm"))
        )
    except OSError:
        return []
    return [folder / name for name in names]
