"""The engine's store writes: each through the writer thread; the first that fails stops every
later model call (issue 7's semantics: a read-only or full store for the engine's life, a lock
held too long elsewhere until the next ``enrich``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spanlens_lsp.store.enrichments import StoreWriteFailed
from spanlens_lsp.store.errors import StoreError, is_lock_timeout
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.worker import StoreWrites


class GuardedWrites:
    """Writes through ``writer``; ``halt`` stops (or, with None, resumes) the model calls."""

    def __init__(
        self, writer: StoreWrites, path: Path, halt: Callable[[BaseException | None], None]
    ) -> None:
        self.writer = writer
        self.path = path
        self._halt = halt
        #: The store write that failed: every later call stops before reaching a model.
        self.failure: StoreWriteFailed | None = None
        #: The failure was a lock held too long elsewhere: the next ``enrich`` tries again.
        self._passes = False

    def check(self) -> None:
        """Before an ``enrich``: raise a lasting failure; forget one a lock caused."""
        if self.failure is not None:
            if not self._passes:
                raise self.failure
            self.failure = None
            self._halt(None)

    async def write(self, fn: Callable[[Store], Any]) -> Any:
        """Run one write in the writer thread; a failure stops the engine (see
        :meth:`failed`)."""
        try:
            return await self.writer.run_first(fn)
        except (sqlite3.Error, StoreError) as exc:
            raise self.failed(exc) from exc

    def failed(self, exc: BaseException) -> StoreWriteFailed:
        """Remember the first failed store write and stop every later model call. A lasting
        failure (read-only, disk full, I/O) holds for the engine's life; a lock another
        process held too long holds only until the next :meth:`check` (a CLI run stops on
        it; the server tries again later)."""
        if self.failure is None:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.failure = StoreWriteFailed(
                f"cannot write the index {self.path}: {detail}; "
                "stopped before calling the model again (nothing already stored is lost)"
            )
            self._passes = is_lock_timeout(exc)
            self._halt(self.failure)
        return self.failure
