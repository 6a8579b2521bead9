"""SQLite store: schema, numbered migrations and every SQL statement spanlens runs."""

from spanlens.store.db import Store, StoreCorrupt, StoreError, StoreLocked, open_store

__all__ = ["Store", "StoreCorrupt", "StoreError", "StoreLocked", "open_store"]
