"""Helpers every command shares: the workspace root, the store, progress, exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def workspace_root(value: str) -> Path:
    """Resolve and check a workspace root argument."""
    root = Path(value).expanduser()
    if not root.exists():
        raise CliError(f"workspace root {value!r} does not exist")
    if not root.is_dir():
        raise CliError(f"workspace root {value!r} is not a directory")
    return root.resolve()


def open_workspace_store(root: Path) -> Any:
    """Open the workspace database, telling the user when a corrupt one was set aside."""
    from spanlens.store import open_store

    store = open_store(root)
    if store.recovered_from is not None:
        print(
            f"spanlens: the database was damaged; kept it as {store.recovered_from.name} "
            "and started a new one",
            file=sys.stderr,
        )
    return store


class ProgressBar:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._last = -1
        self._waiting = False

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        """Redraw at most once per percent, and whenever a wait is shown or ends."""
        if not self.enabled or total < 50:
            return
        percent = done * 100 // max(total, 1)
        waiting = extra.startswith("waiting")
        if percent == self._last and done != total and not (waiting or self._waiting):
            return
        self._last = percent
        self._waiting = waiting
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total} {extra}".rstrip() + " ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_index(root: Path, store: Any, show_progress: bool) -> Any:
    """Index ``root`` into ``store`` with the workspace's settings."""
    from spanlens.config import load_settings
    from spanlens.indexing.indexer import index_workspace

    settings = load_settings(root)
    return index_workspace(
        root,
        store,
        exclude=settings.index.exclude,
        max_size=settings.index.max_file_size,
        workers=settings.index.workers,
        progress=ProgressBar("indexing", show_progress),
    )


def workspace_file(root: Path, value: str) -> str:
    """A file argument (relative to ROOT, or absolute) as a workspace-relative path."""
    from spanlens.indexing.indexer import relative_path

    path = Path(value).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise CliError(f"--only {value}: no such file", EXIT_USAGE)
    rel = relative_path(root, path)
    if rel is None:
        raise CliError(f"--only {value}: outside the workspace {root}", EXIT_USAGE)
    return rel


def file_sha(data: bytes) -> str:
    """The sha256 of a file's bytes, as the index stores it."""
    from spanlens.indexing.hashing import file_sha256

    return file_sha256(data)
