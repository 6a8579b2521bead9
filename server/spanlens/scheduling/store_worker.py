"""The store's worker thread lives in :mod:`spanlens.store.worker` (the engine uses it too)."""

from spanlens.store.worker import StoreWorker

__all__ = ["StoreWorker"]
