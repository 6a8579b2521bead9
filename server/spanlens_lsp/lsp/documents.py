"""Document sync: open buffers are re-indexed from their own text, saves queue their spans.

didChange re-indexes after a debounce; the spans it changes are remembered until the save,
which puts them at the front of the queue (so a save right after the debounced re-index does
not parse again). Files changed outside the editor arrive through didChangeWatchedFiles.
All parsing and writing runs on the indexer thread; handlers only schedule it. An open
buffer's index goes ahead of other work there (the workspace walk lets it in between its
transactions), and each open document has a future that tells code-lens requests when its
latest text is indexed. What the index changed goes out as events (:mod:`spanlens_lsp.lsp.events`)
to the features that show it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from spanlens_lsp.indexing.indexer import FileDiff, IndexSummary, forget_recent_parse, remove_paths
from spanlens_lsp.indexing.languages import LANGUAGE_BY_EXTENSION
from spanlens_lsp.lsp.edge import Edge
from spanlens_lsp.lsp.events import Events, Listener
from spanlens_lsp.lsp.progress import WorkDone
from spanlens_lsp.scheduling.queue import Priority
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.workspace.files import current_text, index_file
from spanlens_lsp.workspace.index import index_workspace, walk_files

if TYPE_CHECKING:
    from spanlens_lsp.scheduling.scheduler import Scheduler
    from spanlens_lsp.settings import Settings
    from spanlens_lsp.store.worker import StoreWorker

log = logging.getLogger(__name__)

WATCHER_ID = "spanlens-watched-files"
#: Longest a code-lens request waits for its document's pending index (then it answers from
#: the index as it is, and a refresh follows where the client supports one).
INDEX_WAIT_SECONDS = 2.0


class IndexCancelled(Exception):
    """Raised from the progress callback to stop a workspace walk at shutdown."""


class DocumentSync(Listener):
    """Open documents, their pending re-index timers and their unsaved changed spans."""

    def __init__(
        self,
        edge: Edge,
        events: Events,
        ready: asyncio.Event,
        scheduler: Callable[[], Scheduler | None],
        indexer: Callable[[], StoreWorker | None],
        settings: Callable[[], Settings],
    ) -> None:
        self.edge = edge
        self.events = events
        #: Set once the services exist.
        self.ready = ready
        #: None until the workspace is open.
        self.scheduler = scheduler
        self.indexer = indexer
        self.settings = settings
        #: uri -> workspace-relative path of each open document in the workspace.
        self.open: dict[str, str] = {}
        #: path -> spans changed by re-indexes since the last save.
        self.unsaved: dict[str, set[int]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        #: The last save: path, spans queued, and ms from didSave to queued (for status/bench).
        self.last_save: dict[str, Any] | None = None
        #: (files done, files to do) while the workspace is being indexed.
        self.indexing: tuple[int, int] | None = None
        #: Whether the first workspace index has finished.
        self.indexed = False
        #: uri -> resolved once the buffer's latest text is indexed (see :meth:`wait_indexed`).
        self._settled: dict[str, asyncio.Future[None]] = {}
        #: uri -> edits seen, so that only the index of the latest text settles the future.
        self._edits: dict[str, int] = {}

    # ------------------------------------------------------------ notifications

    def did_open(self, uri: str) -> None:
        """Index the buffer, then queue its pending spans as open-document work."""
        path = self.edge.path_of(uri)
        if path is None:
            return
        self.open[uri] = path
        self.events.document_opened(uri, path)
        self._unsettle(uri)
        self.edge.spawn(self._refresh(uri, path, queue_open=True), f"open {path}")

    def did_change(self, uri: str) -> None:
        """An edit: pause background work and re-index after the debounce."""
        path = self.open.get(uri)
        scheduler = self.scheduler()
        if path is None or scheduler is None:
            return
        scheduler.note_edit()
        self._cancel_timer(uri)
        self._unsettle(uri)
        delay = max(0, self.settings().lsp.debounce_ms) / 1000
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(uri, None)
            self.edge.spawn(self._refresh(uri, path), f"re-index {path}")

        self._timers[uri] = loop.call_later(delay, fire)

    def did_save(self, uri: str) -> None:
        """Re-index now and put the file's changed spans at the front of the queue."""
        path = self.open.get(uri) or self.edge.path_of(uri)
        if path is None:
            return
        self._cancel_timer(uri)
        self.edge.spawn(self._save(uri, path, time.perf_counter()), f"save {path}")

    def did_close(self, uri: str) -> None:
        """Forget the buffer; its diagnostics go with it."""
        self._cancel_timer(uri)
        path = self.open.pop(uri, None)
        self._edits.pop(uri, None)
        settled = self._settled.pop(uri, None)
        if settled is not None and not settled.done():
            settled.set_result(None)
        if path is not None:
            self.events.document_closed(uri)
            forget_recent_parse(path)

    def watched_files_changed(self, changes: list[types.FileEvent]) -> None:
        """Files changed outside the editor: re-index them from disk (open buffers win).

        Paths the workspace walk would skip (ignored, virtual environments, too large) are
        forgotten instead; that check runs on the indexer thread.
        """
        paths: dict[str, bool] = {}
        for change in changes:
            if change.uri in self.open:
                continue
            path = self.edge.path_of(change.uri)
            if path is not None and os.path.splitext(path)[1].lower() in LANGUAGE_BY_EXTENSION:
                paths[path] = change.type == types.FileChangeType.Deleted
        if paths:
            self.edge.spawn(self.reindex_from_disk(paths), "re-index changed files")

    def buffer_text(self, path: str) -> str | None:
        """The open buffer's raw text of ``path``, or None when it is not open."""
        for uri, open_path in self.open.items():
            if open_path == path:
                return str(self.edge.server.workspace.get_text_document(uri).source)
        return None

    def source_text(self, path: str) -> str | None:
        """A file's current text for the engine: the open buffer, else the disk, read as the
        indexer reads them (see :func:`spanlens_lsp.workspace.files.current_text`)."""
        root = self.edge.root
        return current_text(root, path, self.buffer_text) if root is not None else None

    async def wait_indexed(self, uri: str, timeout: float = INDEX_WAIT_SECONDS) -> None:
        """Until the open buffer ``uri``'s latest text is indexed, at most ``timeout`` seconds
        (at once for a document that is not open or already indexed)."""
        settled = self._settled.get(uri)
        if settled is not None and not settled.done():
            await asyncio.wait([settled], timeout=timeout)

    def _unsettle(self, uri: str) -> None:
        self._edits[uri] = self._edits.get(uri, 0) + 1
        settled = self._settled.get(uri)
        if settled is None or settled.done():
            self._settled[uri] = asyncio.get_running_loop().create_future()

    def _settle(self, uri: str, edits: int | None) -> None:
        if self._edits.get(uri) != edits or uri in self._timers:
            return  # a newer edit is still to be indexed
        settled = self._settled.get(uri)
        if settled is not None and not settled.done():
            settled.set_result(None)

    def status_fields(self) -> dict[str, Any]:
        """The status payload's part about the index: the walk's progress, whether the first
        walk finished, and the last save."""
        indexing = None
        if self.indexing is not None:
            done, total = self.indexing
            indexing = {"done": done, "total": total}
        return {"indexing": indexing, "indexed": self.indexed, "lastSave": self.last_save}

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        """A result discarded for a file that is not open means the index is behind that
        file (it changed without a watcher event): re-index it from disk."""
        open_paths = set(self.open.values())
        by_id = {s.id: s for s in spans}
        behind = {
            by_id[o.span_id].path: False
            for o in outcomes
            if o.status == "discarded" and o.span_id in by_id
            if by_id[o.span_id].path not in open_paths
        }
        if behind:
            self.edge.spawn(self.reindex_from_disk(behind), "re-index stale files")

    # ------------------------------------------------------------ work

    async def _refresh(self, uri: str, path: str, queue_open: bool = False) -> FileDiff | None:
        edits = self._edits.get(uri)
        try:
            return await self._refresh_now(uri, path, queue_open, edits)
        finally:
            self._settle(uri, edits)  # also when indexing failed: waiters must not hang

    async def _refresh_now(
        self, uri: str, path: str, queue_open: bool, edits: int | None
    ) -> FileDiff | None:
        await self.ready.wait()
        diff = await self._index_buffer(uri, path)
        self._settle(uri, edits)  # lens requests need the index, not the queueing below
        scheduler = self.scheduler()
        if scheduler is None or uri not in self.open:
            return diff
        if diff is not None and diff.touched:
            self.unsaved.setdefault(path, set()).update(diff.touched)
            scheduler.push(diff.touched, Priority.OPEN)
        if diff is not None:  # new, moved or now stale spans: lenses change
            self.events.document_indexed(uri, path, bool(diff.touched) or queue_open)
        if queue_open:
            await scheduler.queue_pending_of([path], Priority.OPEN)
        return diff

    async def _save(self, uri: str, path: str, started: float) -> None:
        edits = self._edits.get(uri)  # the save's index replaces the cancelled debounce
        try:
            await self._save_now(uri, path, started)
        finally:
            self._settle(uri, edits)

    async def _save_now(self, uri: str, path: str, started: float) -> None:
        await self.ready.wait()
        scheduler = self.scheduler()
        if scheduler is None:
            return
        diff = await self._index_buffer(uri, path) if uri in self.open else None
        if diff is None and uri not in self.open:
            diff = await self._index_disk(path)
        touched = self.unsaved.pop(path, set())
        if diff is not None:
            touched.update(diff.touched)
        ordered = sorted(touched)
        scheduler.push(ordered, Priority.SAVED, front=True)
        queued_ms = (time.perf_counter() - started) * 1000
        self.last_save = {"path": path, "spans": len(ordered), "queuedMs": round(queued_ms, 3)}
        log.info("saved %s: %d changed spans queued in %.1f ms", path, len(ordered), queued_ms)
        lenses_moved = diff is not None and bool(diff.touched)
        self.events.document_saved(uri, path, lenses_moved, uri in self.open)

    async def _index_buffer(self, uri: str, path: str) -> FileDiff | None:
        indexer, root = self.indexer(), self.edge.root
        if indexer is None or root is None:
            return None
        document = self.edge.server.workspace.get_text_document(uri)
        data = document.source.encode("utf-8")
        index = self.settings().index

        def work(store: Store) -> FileDiff | None:
            # An ignored file stays out of the index even while the user has it open.
            return index_file(store, root, path, index, data)

        return await indexer.run_first(work)

    async def _index_disk(self, path: str) -> FileDiff | None:
        indexer, root = self.indexer(), self.edge.root
        if indexer is None or root is None:
            return None
        index = self.settings().index
        return await indexer.run(lambda store: index_file(store, root, path, index))

    async def reindex_from_disk(self, paths: dict[str, bool]) -> None:
        """Re-index files from disk (``True`` = deleted); the backlog is asked again only if
        something changed, so an index that was already right causes no more work."""
        await self.ready.wait()
        indexer, scheduler = self.indexer(), self.scheduler()
        if indexer is None or scheduler is None:
            return
        gone = [path for path, deleted in paths.items() if deleted]
        if gone:
            await indexer.run(lambda store: remove_paths(store, gone))
        changed = 0
        for path, deleted in paths.items():
            if deleted:
                continue
            diff = await self._index_disk(path)
            changed += len(diff.touched) if diff else 0
        log.info("%d files changed outside the editor: %d spans to enrich", len(paths), changed)
        if changed or gone:
            scheduler.invalidate_backlog()
        # Their lenses moved, went stale or vanished if anything changed.
        self.events.files_indexed(bool(changed or gone))

    async def index_workspace(self) -> None:
        """Bring the index up to date with the disk, with work-done progress, then re-index
        open buffers (the walk read the disk, which may differ from them)."""
        indexer, scheduler, root = self.indexer(), self.scheduler(), self.edge.root
        if indexer is None or scheduler is None or root is None:
            return
        self.indexing = (0, 0)
        settings = self.settings()
        progress = WorkDone(self.edge, "spanlens: indexing")
        await progress.begin("walking the workspace")
        loop = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            if self.edge.closing:
                raise IndexCancelled
            self.indexing = (done, total)
            loop.call_soon_threadsafe(self._index_progress, progress, done, total)
            indexer.run_urgent()  # buffers the user opened meanwhile go first

        def work(store: Store) -> IndexSummary:
            return index_workspace(store, root, settings.index, progress=report, walk=walk)

        try:
            # The walk reads only the file system: off the indexer thread, which stays free
            # for opened buffers meanwhile.
            walk = await asyncio.to_thread(walk_files, root, settings.index)
            if self.edge.closing:
                raise IndexCancelled
            summary = await indexer.run(work)
        except IndexCancelled:
            progress.end("stopped")
            return
        except asyncio.CancelledError:  # shutdown ran out of time: the bar still ends
            progress.end("stopped")
            raise
        finally:
            self.indexing = None
        progress.end(f"{summary.spans_total} spans in {summary.files_indexed} changed files")
        log.info(
            "indexed %s in %.2fs: %d files parsed, %d unchanged, %d spans",
            root,
            summary.seconds,
            summary.files_indexed,
            summary.files_unchanged,
            summary.spans_total,
        )
        for uri, path in list(self.open.items()):
            await self._refresh(uri, path)
        self.indexed = True
        scheduler.invalidate_backlog()
        self.events.files_indexed(True)

    def _index_progress(self, progress: WorkDone, done: int, total: int) -> None:
        percentage = done * 100 // total if total else 100
        progress.report(f"{done}/{total} files", percentage)
        self.events.indexing_progress(done, total)

    async def register_watchers(self) -> None:
        """Ask the client to report file changes made outside the editor, if it can."""
        if not self.edge.supports("workspace.did_change_watched_files.dynamic_registration"):
            return
        extensions = sorted({ext.lstrip(".") for ext in LANGUAGE_BY_EXTENSION})
        watchers = [types.FileSystemWatcher(glob_pattern=f"**/*.{ext}") for ext in extensions]
        registration = types.Registration(
            id=WATCHER_ID,
            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
        )
        try:
            await self.edge.server.client_register_capability_async(
                types.RegistrationParams(registrations=[registration])
            )
        except Exception as exc:
            log.warning("could not register file watchers: %s", exc)

    def cancel_timers(self) -> None:
        """Drop every pending debounce (shutdown)."""
        for uri in list(self._timers):
            self._cancel_timer(uri)

    def _cancel_timer(self, uri: str) -> None:
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()
