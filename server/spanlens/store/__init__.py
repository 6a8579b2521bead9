"""SQLite store: schema, numbered migrations and every SQL statement spanlens runs."""

from spanlens.store.db import Store, open_store
from spanlens.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
    StoreTooNew,
)

__all__ = [
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreReadOnly",
    "StoreTooNew",
    "open_store",
]
