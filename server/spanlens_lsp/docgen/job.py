"""Docgen in the server: a scheduler job on the lowest lane, one file per idle period.

Each unit is one file's doc (a candidate found by random seek). The docs lock is taken without
waiting: while ``spanlens docgen`` holds it the job skips and says so. A file whose overview
fails backs off like a span (``failure_retry_base`` doubling to ``failure_retry_max``) and,
after ``max_failures``, is left alone until its overview key changes. The backoff is kept in
the store (``doc_failures``), so it holds across server restarts and ``spanlens docgen`` runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spanlens_lsp.docgen.generate import Docgen, DocResult
from spanlens_lsp.docgen.plan import CallGraph, FilePlan, pick_candidate
from spanlens_lsp.docgen.write import DocPathError, DocsLocked, acquire, docs_lock
from spanlens_lsp.enrichment.call.path import CallPath
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.docs import DocFailure, clear_doc_failure, doc_failures, record_doc_failure
from spanlens_lsp.store.errors import StoreError
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.worker import StoreWorker, StoreWrites

log = logging.getLogger(__name__)


class DocgenJob:
    """The server's docgen: units for the scheduler, explicit runs for commands, coverage."""

    #: After every enrichment lane (saved 0, requested 1, open 2, backlog 3) and the
    #: embeddings (4).
    lane = 5

    def __init__(
        self,
        root: Path,
        settings: Settings,
        queries: StoreWorker,
        *,
        writer: StoreWrites | None = None,
        on_change: Callable[[], None] | None = None,
        calls: CallPath | None = None,
    ) -> None:
        """Read the index through ``queries``; record failures through ``writer`` (the app's
        writer thread; default: ``queries``); ask for overviews through ``calls`` (the
        engine's call path, shared with every span call)."""
        self.root = root
        self.settings = settings
        self.queries = queries
        self.writer: StoreWrites = writer if writer is not None else queries
        self.on_change = on_change
        #: Files by doc state, as last counted (None until the first count).
        self.coverage: dict[str, int] | None = None
        #: The path being documented now.
        self.running: str | None = None
        self.last_error: str | None = None
        #: This server writes one doc at a time (the docs lock keeps other processes out).
        self._turn = asyncio.Lock()
        #: Docs being written now, by path: a second request for one waits for it.
        self._writing: dict[str, asyncio.Task[DocResult]] = {}
        self.docgen: Docgen | None = None
        try:
            self.docgen = Docgen(root, settings, calls)
        except DocPathError as exc:
            self.last_error = str(exc)
        if self.docgen is not None and self.docgen.model is None:
            self.last_error = f"no model configured for docgen (tier {self.docgen.writer.tier})"

    def snapshot(self) -> dict[str, Any] | None:
        """The ``docgen`` object of the status payload (protocol.md), None when disabled."""
        if not self.settings.docgen.enabled:
            return None
        counts = self.coverage or {"fresh": 0, "stale": 0, "missing": 0, "waiting": 0}
        return {**counts, "running": self.running, "last_error": self.last_error}

    # ------------------------------------------------------------ the Job protocol

    async def next_units(self) -> list[FilePlan]:
        """At most one candidate: a file whose doc is missing or stale (random seek)."""
        docgen = self.docgen
        if docgen is None or not self.settings.docgen.enabled or docgen.model is None:
            return []
        graph, failures = await self.queries.run(functools.partial(_load, docgen))
        plan = await asyncio.to_thread(self._pick, docgen, graph, failures)
        self._changed()
        return [plan] if plan is not None else []

    async def run(self, unit: FilePlan) -> None:
        """Write ``unit``'s doc; failures are recorded, never raised."""
        await self.document(unit)

    # ------------------------------------------------------------ commands

    async def document_path(self, path: str) -> DocResult:
        """Write ``path``'s doc now (``spanlens.docgenFile``), whatever the queue does."""
        docgen = self.docgen
        if docgen is None:
            return DocResult(path, error=self.last_error or "docgen is not available")
        graph = await self.queries.run(docgen.load)
        if path not in graph.files:
            return DocResult(path, error=f"{path} is not indexed or has no spans")
        plan = docgen.plan(graph, path)
        if not plan.ready:
            waiting = sum(1 for s in plan.doc.spans if s.state not in ("fresh", "failed"))
            return DocResult(path, error=f"{waiting} spans of {path} still wait for enrichment")
        if docgen.model is None:
            return DocResult(path, error=self.last_error)
        return await self.document(plan)

    def existing_doc(self, path: str) -> Path | None:
        """``path``'s doc when one has been written (``spanlens.openDoc``)."""
        if self.docgen is None:
            return None
        try:
            target = self.docgen.doc_of(path)
        except DocPathError:
            return None
        return target if self.docgen.header(path) is not None else None

    async def refresh_coverage(self) -> None:
        """Count files by doc state again (after indexing or enrichment landed)."""
        docgen = self.docgen
        if docgen is None or not self.settings.docgen.enabled:
            return
        graph = await self.queries.run(docgen.load)
        self.coverage = await asyncio.to_thread(docgen.coverage, graph)
        self._changed()

    def use(self, calls: CallPath | None) -> None:
        """Ask for overviews through ``calls`` from now on (a new engine replaced the old)."""
        if self.docgen is not None:
            self.docgen.writer.calls = calls

    # ------------------------------------------------------------ work

    def _pick(
        self, docgen: Docgen, graph: CallGraph, failures: dict[str, DocFailure]
    ) -> FilePlan | None:
        self.coverage = docgen.coverage(graph)
        now = time.time()
        max_failures = self.settings.enrichment.max_failures

        def backing_off(plan: FilePlan) -> bool:
            failure = failures.get(plan.path)
            return failure is not None and failure.backing_off(plan.overview_key, now, max_failures)

        return pick_candidate(
            graph, docgen.header, docgen.prompt_version, docgen.model, skip=backing_off
        )

    async def document(self, plan: FilePlan) -> DocResult:
        """Overview (if its key changed), render and write ``plan``'s doc under the lock.

        The idle job and ``spanlens.docgenFile`` share this: a doc this server is writing
        already is waited for, not written twice, and another file's doc waits its turn, so
        the server never locks itself out."""
        running = self._writing.get(plan.path)
        if running is not None:
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled():
                    raise  # this caller was cancelled, not the writer
        task = asyncio.ensure_future(self._document(plan))
        self._writing[plan.path] = task
        task.add_done_callback(lambda done: self._written(plan.path, done))
        return await task

    def _written(self, path: str, task: asyncio.Task[DocResult]) -> None:
        if self._writing.get(path) is task:
            del self._writing[path]

    async def _document(self, plan: FilePlan) -> DocResult:
        async with self._turn:
            return await self._document_locked(plan)

    async def _document_locked(self, plan: FilePlan) -> DocResult:
        docgen = self.docgen
        assert docgen is not None
        lock = docs_lock(self.root)
        try:
            acquire(lock, 0)
        except DocsLocked as exc:
            self.last_error = f"{exc}; docs wait"
            self._changed()
            return DocResult(plan.path, error=self.last_error)
        self.running = plan.path
        self._changed()
        try:
            overview, result = await docgen.overview(plan)
            if overview is not None:
                try:
                    await asyncio.to_thread(docgen.write, plan, overview, result)
                except OSError as exc:
                    result.error = f"cannot write {plan.path}'s doc: {exc.strerror or exc}"
        finally:
            lock.release()
            self.running = None
        await self._record(plan, result)
        if self.coverage is not None and result.written:
            await self.refresh_coverage()
        self._changed()
        return result

    async def _record(self, plan: FilePlan, result: DocResult) -> None:
        if result.written:
            self.last_error = None
            log.info("doc of %s written (%d model calls)", plan.path, result.model_calls)
        else:
            self.last_error = result.error
            log.warning("doc of %s not written: %s", plan.path, result.error)
        record = functools.partial(
            record_doc_result, settings=self.settings, plan=plan, result=result
        )
        try:
            await self.writer.run_first(record)
        except (sqlite3.Error, StoreError) as exc:
            # The doc (or its failure) stands; only the backoff is not kept this time.
            log.warning("cannot record the docgen result of %s: %s", plan.path, exc)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _load(docgen: Docgen, store: Store) -> tuple[CallGraph, dict[str, DocFailure]]:
    return docgen.load(store), doc_failures(store)


def record_doc_result(store: Store, settings: Settings, plan: FilePlan, result: DocResult) -> None:
    """Keep a doc's failure in the store (it backs off like a span), or forget it once written.
    Shared by the server's job and ``spanlens docgen``."""
    if result.written:
        clear_doc_failure(store, plan.path)
        return
    enrichment = settings.enrichment
    record_doc_failure(
        store,
        plan.path,
        plan.overview_key,
        result.error or "doc not written",
        time.time(),
        enrichment.failure_retry_base,
        enrichment.failure_retry_max,
    )
