"""A workspace file's current text, and indexing one file with the workspace walk's skip rules.

The server (open buffers, saves, watched files) and the CLI (``docgen --file``) index single
files through :func:`index_file`, so an ignored, generated or oversized file stays out of the
index whichever way it arrives. :func:`current_text` is the one reader of "the file now": the
open buffer when the editor has one, else the disk, both normalised by
:mod:`spanlens_lsp.indexing.source` exactly as the indexer normalises them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from spanlens_lsp.indexing.indexer import FileDiff, index_text, remove_paths
from spanlens_lsp.indexing.source import buffer_source_text, read_source_text
from spanlens_lsp.indexing.walk import skip_reason
from spanlens_lsp.settings import IndexSettings
from spanlens_lsp.store.handle import Store

#: The editor's unsaved text of a workspace-relative path, or None when it is not open.
Buffers = Callable[[str], "str | None"]


def current_text(root: Path, path: str, buffers: Buffers | None = None) -> str | None:
    """The text of ``path`` now: its open buffer, else the disk; None when unreadable."""
    if buffers is not None:
        text = buffers(path)
        if text is not None:
            return buffer_source_text(text)
    return read_source_text(root / path)


def index_file(
    store: Store,
    root: Path,
    path: str,
    settings: IndexSettings,
    data: bytes | None = None,
) -> FileDiff | None:
    """Index one file from ``data`` (a buffer) or from the disk, with the walk's skip rules.

    A file the walk would skip (ignored, generated, too large) or that is gone is removed from
    the index instead, and None is returned. Runs SQL: call it on the store's writer thread.
    """
    why = skip_reason(root, path, settings.exclude, settings.max_file_size)
    mtime = 0
    if why is None and data is None:
        try:
            data = (root / path).read_bytes()
            mtime = (root / path).stat().st_mtime_ns
        except OSError:
            why = "unreadable"
    if why is None and data is not None and len(data) > settings.max_file_size:
        why = f"larger than {settings.max_file_size} bytes"
    if why is not None or data is None:
        remove_paths(store, [path])
        return None
    return index_text(store, root, path, data, mtime)
