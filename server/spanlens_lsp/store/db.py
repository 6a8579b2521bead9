"""The workspace database: where it lives, opening, checking and corruption recovery.

The connection wrapper is in :mod:`~spanlens_lsp.store.connection`, the typed rows in
:mod:`~spanlens_lsp.store.rows`, the :class:`Store` and its queries in
:mod:`~spanlens_lsp.store.handle`, which files passed the check on open in
:mod:`~spanlens_lsp.store.checks`, the rebuild in :mod:`~spanlens_lsp.store.repair`.
Every SQL statement spanlens runs lives in this package. Hot paths (indexing, hovers) use the
standard ``sqlite3`` connection directly with ``executemany``; reporting uses sqlite-utils.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from spanlens_lsp.store.checks import check_key, found_sound, mark_sound
from spanlens_lsp.store.connection import (
    DB_DIRNAME,
    DB_FILENAME,
    inode_of,
    read_only_message,
)
from spanlens_lsp.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
)
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.repair import recover


def db_path_for(root: Path) -> Path:
    """Where the database of the workspace at ``root`` lives."""
    return root / DB_DIRNAME / DB_FILENAME


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
    damaged = inode_of(path)
    try:
        return _open_checked(path, readonly=not writable)
    except StoreCorrupt as exc:
        if not writable:
            raise StoreCorrupt(
                f"{path} is damaged and read-only, so it cannot be rebuilt: make it writable, "
                "or delete it and run `spanlens index`",
                path,
            ) from exc
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
        return Store(path, scratch_dir=folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _open_checked(path: Path, *, readonly: bool) -> Store:
    store = Store(path, readonly=readonly)
    try:
        key = check_key(path)
        if key is not None and found_sound(path, key):
            return store
        problem = store.integrity_problem()
        if problem is not None:
            raise StoreCorrupt(f"{path} fails SQLite's integrity check ({problem})", path)
        if key is not None:
            mark_sound(path, key, stamp=not readonly)
        return store
    except BaseException:
        store.close()
        raise


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
