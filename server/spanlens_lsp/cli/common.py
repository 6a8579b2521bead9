"""Helpers every command shares: the workspace root, the store, progress, exit codes."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from spanlens_lsp.presentation.text import clean_text

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


#: How a command finds its workspace when no ROOT is given (README "Command line", --help).
ROOT_RULE = (
    "ROOT defaults to the nearest folder at or above the current one that holds .spanlens/, "
    "spanlens.toml or a pyproject.toml with [tool.spanlens]; else the repository root (the "
    "nearest .git); else the current folder"
)


def help_options(*examples: str, root: bool = False) -> dict[str, Any]:
    """``add_parser`` options for a command whose ``--help`` ends with ``examples`` (one a
    line, kept as written), after how ROOT is found for a command that takes one."""
    text = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    if root:
        text = textwrap.fill(f"{ROOT_RULE}.", 79) + "\n\n" + text
    return {"epilog": text, "formatter_class": argparse.RawDescriptionHelpFormatter}


def find_project(start: Path) -> Path:
    """The workspace of a command run in ``start`` without ROOT, as git, ruff and uv find
    theirs: the nearest folder at or above ``start`` holding ``.spanlens/`` or a settings file
    (:func:`~spanlens_lsp.config.has_settings_file`), else the nearest holding ``.git`` (a folder,
    or the file of a worktree or submodule), else ``start``."""
    from spanlens_lsp.config import has_settings_file
    from spanlens_lsp.store.connection import DB_DIRNAME

    start = start.resolve()
    folders = (start, *start.parents)
    for folder in folders:
        if (folder / DB_DIRNAME).is_dir() or has_settings_file(folder):
            return folder
    for folder in folders:
        if (folder / ".git").exists():
            return folder
    return start


def workspace_root(value: str | None) -> Path:
    """Resolve and check a workspace root argument; none given, find the project from the
    current folder (:func:`find_project`)."""
    if value is None:
        try:
            return find_project(Path.cwd())
        except FileNotFoundError as exc:
            raise CliError("the current folder no longer exists: cd to one, or give ROOT") from exc
    root = Path(value).expanduser()
    if not root.exists():
        raise CliError(f"workspace root {value!r} does not exist")
    if not root.is_dir():
        raise CliError(f"workspace root {value!r} is not a directory")
    return root.resolve()


def open_workspace_store(root: Path, *, readonly: bool = False) -> Any:
    """Open the workspace database for a command.

    A damaged one is set aside and rebuilt (the store says so in one line, see
    ``cli.main``); a read-only one, or a root where ``.spanlens`` cannot be created, is a
    :class:`~spanlens_lsp.store.StoreReadOnly` error for writing commands (``readonly=False``)
    and is opened read-only for the others.
    """
    from spanlens_lsp.store.db import open_store

    return open_store(root, readonly=readonly)


class ProgressBar:
    """A progress bar on stderr drawn by rich, only when stderr is a terminal.

    Called as ``progress(done, total, extra="")``; ``extra`` is shown as text after the
    count ("waiting 4 s: local rate limited"), never read as rich markup. Jobs below
    ``min_total`` draw nothing. rich is imported only when a bar is first drawn, so a
    piped or ``--json`` run never pays for it. The bar ends itself when ``done`` reaches
    ``total``; :meth:`close` ends it earlier (a stopped run).
    """

    def __init__(self, label: str, enabled: bool = True, min_total: int = 50) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.min_total = min_total
        self._progress: Any = None
        self._task: Any = None
        self._extra = ""

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        """Move the bar to ``done`` of ``total``; rich redraws at its own pace."""
        if not self.enabled or total < self.min_total:
            return
        extra = clean_text(extra, one_line=True)
        if self._progress is None:
            self._start(done, total, extra)
        else:
            # A new text ("waiting 4 s: ...") is drawn at once; counts at rich's pace.
            changed = extra != self._extra
            self._progress.update(
                self._task, completed=done, total=total, extra=extra, refresh=changed
            )
        self._extra = extra
        if done >= total:
            self.close()

    def _start(self, done: int, total: int, extra: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn(clean_text(self.label), markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}", markup=False),
            console=Console(stderr=True, markup=False, emoji=False, highlight=False),
            # Output printed while a bar is up keeps its stream: stdout is for results.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(self.label, total=total, completed=done, extra=extra)
        self._progress.start()

    def close(self) -> None:
        """Stop drawing, leaving the last state of the bar on its line."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def run_index(root: Path, store: Any, show_progress: bool) -> Any:
    """Index ``root`` into ``store`` with the workspace's settings, drawing a bar."""
    from spanlens_lsp.config import load_settings
    from spanlens_lsp.workspace.index import index_workspace

    settings = load_settings(root)
    progress = ProgressBar("indexing", show_progress)
    try:
        return index_workspace(store, root, settings.index, progress=progress)
    finally:
        progress.close()


def user_path(root: Path, value: str) -> Path:
    """A path the user typed: absolute, or relative to the current folder when that lies in
    the workspace (as git reads paths), else relative to ROOT; either way, the other folder
    when the path is not found in the first."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    cwd = Path.cwd().resolve()
    candidates = [cwd / path, root / path]
    if not cwd.is_relative_to(root.resolve()):
        candidates.reverse()
    return next((c for c in candidates if c.exists()), candidates[0])


def workspace_file(root: Path, value: str, flag: str = "--only") -> str:
    """A file argument (see :func:`user_path`) as a workspace-relative path."""
    from spanlens_lsp.indexing.indexer import relative_path

    path = user_path(root, value)
    if not path.is_file():
        raise CliError(f"{flag} {value}: no such file", EXIT_USAGE)
    rel = relative_path(root, path)
    if rel is None:
        raise CliError(f"{flag} {value}: outside the workspace {root}", EXIT_USAGE)
    return rel


def file_sha(data: bytes) -> str:
    """The sha256 of a file's bytes, as the index stores it."""
    from spanlens_lsp.indexing.hashing import file_sha256

    return file_sha256(data)


def engine_line(engine: dict[str, Any]) -> str:
    """One line about the built-in engine (an
    :func:`~spanlens_lsp.localmodel.engine.engine_report`): model, state, pid, port, memory and
    tokens/s when known."""
    parts = [f"{engine['model']} {engine['state']}"]
    if engine.get("pid"):
        parts.append(f"pid {engine['pid']}, port {engine['port']}")
    if engine.get("memory_mb") is not None:
        parts.append(f"{engine['memory_mb']:.0f} MiB")
    if engine.get("tokens_per_s"):
        parts.append(f"{engine['tokens_per_s']} tokens/s")
    if engine.get("error"):
        parts.append(str(engine["error"]))
    if engine.get("hint"):
        parts.append(str(engine["hint"]))
    return "; ".join(parts)
