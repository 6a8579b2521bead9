"""What can go wrong with a workspace database, as exceptions whose message is one clear line.

They live apart from :mod:`spanlens_lsp.store.db` so that the migrations module can raise them too.
Those raised in place of a ``sqlite3`` error also subclass it, so code that catches
``sqlite3.Error`` (or ``OperationalError``) keeps catching them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StoreError(Exception):
    """A database problem a user can act on; its message is one clear line."""


class StoreLocked(StoreError, sqlite3.OperationalError):
    """Another process holds the write lock for longer than the busy timeout."""


class StoreCorrupt(StoreError, sqlite3.DatabaseError):
    """SQLite found the database damaged (not a database, malformed pages, failed check).

    ``path`` is the damaged file: catching this and calling
    :func:`spanlens_lsp.store.repair.recover` sets it aside and builds a new one with every
    enrichment that could still be read.
    """

    def __init__(self, message: str, path: Path | None = None, inode: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        #: The damaged file's inode, so a rebuild can tell it was replaced meanwhile.
        self.inode = inode


class StoreReadOnly(StoreError, sqlite3.OperationalError):
    """The database (or its folder) cannot be written: reading still works, writing does not."""


class StoreTooNew(StoreError):
    """The database was written by a newer spanlens, with migrations this code does not know."""


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether a store error only says another process held the write lock too long."""
    if isinstance(exc, StoreLocked):
        return True
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)
