"""A thread that owns one Store connection, so blocking database work stays off the event loop.

The app's one writer thread (the indexer) is one of these; the enrichment engine writes through
it too (or through its own, when run alone), so no write waits on SQLite's lock on the loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.errors import StoreCorrupt
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.repair import recover

T = TypeVar("T")


class StoreWrites(Protocol):
    """Where the enrichment engine sends its writes: a thread that owns a connection."""

    async def run_first(self, fn: Callable[[Store], T]) -> T: ...

    async def aclose(self) -> None: ...


class StoreWorker:
    """Runs functions of a Store, one at a time, in a dedicated thread.

    The connection is opened in that thread and never used from another one, which keeps
    SQLite's threading rules simple: each thread has its own connection, and work on this one
    is serialised by the single-thread executor.

    Work that a user waits for (an opened buffer's index) goes through :meth:`run_first`: it
    runs next, and a long job (the workspace walk) lets it in between its transactions by
    calling :meth:`run_urgent`.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"spanlens-{name}")
        self._store: Store | None = None
        self._closed = False
        self._urgent: deque[tuple[Callable[[Store], object], Future[object]]] = deque()

    def _store_here(self) -> Store:
        if self._store is None:
            self._store = open_store(self.root)
        return self._store

    async def run(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` in the worker thread and return its result."""
        if self._closed:
            raise RuntimeError("store worker is closed")
        loop = asyncio.get_running_loop()

        def job() -> T:
            self.run_urgent()  # work queued by run_first goes before this
            return self._call(fn)

        return await loop.run_in_executor(self._executor, job)

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

    async def run_first(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` before the work queued so far: at once when the thread is free,
        else at the running job's next :meth:`run_urgent` (or right after it)."""
        if self._closed:
            raise RuntimeError("store worker is closed")
        future: Future[object] = Future()
        self._urgent.append((fn, future))
        self._executor.submit(self.run_urgent)
        return await asyncio.wrap_future(future)  # type: ignore[arg-type]

    def run_urgent(self) -> None:
        """Run the work queued by :meth:`run_first`. Call only on this worker's thread, from a
        job at a point where it holds no transaction open."""
        while True:
            try:
                fn, future = self._urgent.popleft()
            except IndexError:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._call(fn))
            except BaseException as exc:
                future.set_exception(exc)

    async def aclose(self) -> None:
        """Finish queued work, close the connection and stop the thread."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()

        def close() -> None:
            while self._urgent:  # queued after the last job: nobody will run them now
                self._urgent.popleft()[1].cancel()
            if self._store is not None:
                self._store.close()
                self._store = None

        await loop.run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)
