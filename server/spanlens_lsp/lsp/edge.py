"""What every feature takes from the protocol edge: the client (to send to it and to ask
what it supports), the workspace root (URIs to paths and back), LSP ranges of spans, and
tracked background tasks.

Features get an :class:`Edge` and the services they use passed in; none imports another
feature or the session. They hear about the workspace through :mod:`spanlens_lsp.lsp.events`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from spanlens_lsp.indexing.indexer import relative_path
from spanlens_lsp.store.rows import SpanRow

log = logging.getLogger(__name__)


class Edge:
    """The client and the workspace root of one session, and its background tasks."""

    def __init__(self, server: LanguageServer, root: Path | None) -> None:
        self.server = server
        self.root = root
        #: Set at shutdown: background work stops, nothing new is sent.
        self.closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def supports(self, capability: str) -> bool:
        """Whether the client advertises ``capability`` (a dotted path, snake_case)."""
        return bool(get_capability(self.server.client_capabilities, capability, False))

    def not_ready(self) -> str:
        """Why there are no services: no workspace folder, or still starting."""
        if self.root is None:
            return "spanlens is inactive: no workspace folder (open a folder, or set a root)"
        return "spanlens is still starting"

    def path_of(self, uri: str) -> str | None:
        """The workspace-relative path of a document URI, or None outside the workspace."""
        if self.root is None:
            return None
        fs_path = to_fs_path(uri)
        if fs_path is None:
            return None
        return relative_path(self.root, Path(fs_path))

    def uri_of(self, path: str) -> str:
        """The file URI of a workspace-relative path."""
        assert self.root is not None
        return from_fs_path(str(self.root / path)) or ""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, tracked, with its failure logged (never an editor
        popup)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def running_tasks(self) -> list[asyncio.Task[Any]]:
        """The background tasks not finished yet (for shutdown)."""
        return [task for task in self._tasks if not task.done()]

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not self.closing:
            log.error("%s failed: %s", task.get_name(), exc, exc_info=exc)


def document_root(params: types.InitializeParams) -> Path | None:
    """The workspace root: the first workspace folder, else rootUri, else rootPath."""
    uri = None
    if params.workspace_folders:
        uri = params.workspace_folders[0].uri
    elif params.root_uri:
        uri = params.root_uri
    if uri is not None:
        fs_path = to_fs_path(uri)
        return Path(fs_path).resolve() if fs_path else None
    if params.root_path:
        return Path(params.root_path).resolve()
    return None


def span_range(span: SpanRow) -> types.Range:
    """The LSP range of the whole span."""
    return types.Range(
        start=types.Position(line=span.start_line, character=span.start_col),
        end=types.Position(line=span.end_line, character=span.end_col),
    )


def name_range(span: SpanRow) -> types.Range:
    """The LSP range of the span's name."""
    return types.Range(
        start=types.Position(line=span.name_start_line, character=span.name_start_col),
        end=types.Position(line=span.name_end_line, character=span.name_end_col),
    )
