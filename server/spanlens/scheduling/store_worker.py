"""A thread that owns one Store connection, so blocking database work stays off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from spanlens.store.db import Store, open_store
from spanlens.store.errors import StoreCorrupt
from spanlens.store.repair import recover

T = TypeVar("T")


class StoreWorker:
    """Runs functions of a Store, one at a time, in a dedicated thread.

    The connection is opened in that thread and never used from another one, which keeps
    SQLite's threading rules simple: each thread has its own connection, and work on this one
    is serialised by the single-thread executor.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"spanlens-{name}")
        self._store: Store | None = None
        self._closed = False

    def _store_here(self) -> Store:
        if self._store is None:
            self._store = open_store(self.root)
        return self._store

    async def run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` in the worker thread and return its result."""
        if self._closed:
            raise RuntimeError("store worker is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: self._call(fn))

    def _call(self, fn: Callable[[Store], T]) -> T:
        try:
            return fn(self._store_here())
        except StoreCorrupt as exc:
            # SQLite found damage the check on open did not: set the file aside, rebuild it
            # (the store logs one line), and run once more on the new one; every other
            # connection of the process follows on its next statement.
            if exc.path is None:
                raise
            recover(exc.path, exc.inode)
            return fn(self._store_here())

    async def aclose(self) -> None:
        """Finish queued work, close the connection and stop the thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()

        def close() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        await loop.run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)
