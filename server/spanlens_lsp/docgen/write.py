"""Where docs go and how they are written: confined, atomic, under a lock shared by processes.

- Confinement: a doc's path is ``<docs dir>/<source path>.md``; the docs dir must lie inside
  the workspace, and neither it nor any folder under it on the way to a doc may be a symbolic
  link (a link could point anywhere). ``..`` never appears in a doc path.
- Atomic: a doc is written to a temporary file in its folder, flushed to disk, then renamed
  over the old one, so a reader (or a kill -9) sees the old doc or the new one, never half.
- Lock: ``.spanlens/docgen.lock`` (``filelock``: an OS lock the kernel drops when its holder
  dies, so a crashed run never leaves a stale lock) keeps the CLI and the server from writing
  docs at once.
- Only files that carry the spanlens doc header are ever removed (docs of deleted files).
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock, Timeout

HEADER_PREFIX = "<!-- spanlens-doc "
_HEADER = re.compile(
    r"^<!-- spanlens-doc overview=([0-9a-f]{64}) render=([0-9a-f]{64}) data=([A-Za-z0-9+/=]*) -->$"
)
_TEMP_PREFIX = ".spanlens-tmp-"
LOCK_NAME = "docgen.lock"


class DocPathError(Exception):
    """A doc would be written outside the docs folder (or through a symbolic link)."""


class DocsLocked(Exception):
    """Another spanlens process is writing docs."""


def docs_dir(root: Path, setting: str) -> Path:
    """The docs folder of ``root`` (``docgen.dir``), checked to stay inside the workspace."""
    rel = PurePosixPath(setting.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise DocPathError(f"docgen.dir {setting!r} is not a folder inside the workspace")
    path = root
    for part in rel.parts:
        path = path / part
        if path.is_symlink():
            raise DocPathError(f"docgen.dir {setting!r}: {path} is a symbolic link")
    return path


def doc_path(folder: Path, source: str) -> Path:
    """Where the doc of workspace-relative ``source`` goes; refuses anything leaving ``folder``."""
    rel = PurePosixPath(source)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "" in rel.parts:
        raise DocPathError(f"refusing doc path for {source!r}")
    target = folder.joinpath(*rel.parts[:-1], rel.parts[-1] + ".md")
    _check_no_links(folder, target.parent)
    return target


def _check_no_links(folder: Path, directory: Path) -> None:
    if folder.is_symlink():
        raise DocPathError(f"{folder} is a symbolic link")
    current = folder
    for part in directory.relative_to(folder).parts:
        current = current / part
        if current.is_symlink():
            raise DocPathError(f"{current} is a symbolic link")


def header_line(overview_key: str, render_key: str, overview: dict[str, Any]) -> str:
    """The doc's first line: its freshness keys and its overview (for re-rendering)."""
    data = base64.b64encode(json.dumps(overview, sort_keys=True).encode("utf-8")).decode("ascii")
    return f"{HEADER_PREFIX}overview={overview_key} render={render_key} data={data} -->"


def read_header(path: Path) -> tuple[str, str, dict[str, Any] | None] | None:
    """(overview key, render key, overview data) from a doc's first line, or None when the
    file is missing or is no spanlens doc."""
    try:
        if path.is_symlink():
            return None
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            first = handle.readline(1 << 20).rstrip("\n")
    except OSError:
        return None
    match = _HEADER.match(first)
    if match is None:
        return None
    try:
        data = json.loads(base64.b64decode(match.group(3)))
    except ValueError:
        data = None
    return match.group(1), match.group(2), data if isinstance(data, dict) else None


def write_atomic(target: Path, text: str) -> None:
    """Replace ``target`` with ``text`` in one rename (the parent folders are made)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".md", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def remove_orphans(folder: Path, keep: Iterable[str]) -> list[str]:
    """Remove spanlens docs (header checked) whose source is not in ``keep``, and temporary
    files left by a killed writer; returns the removed docs' source paths. Nothing else in
    ``folder`` is touched, and symbolic links are never followed."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    wanted = set(keep)
    removed: list[str] = []
    for current, _dirs, files in os.walk(folder, followlinks=False):
        here = Path(current)
        for name in files:
            path = here / name
            if name.startswith(_TEMP_PREFIX):
                path.unlink(missing_ok=True)
                continue
            if not name.endswith(".md") or path.is_symlink():
                continue
            source = path.relative_to(folder).as_posix()[: -len(".md")]
            if source not in wanted and read_header(path) is not None:
                path.unlink(missing_ok=True)
                removed.append(source)
    return sorted(removed)


def docs_lock(root: Path) -> FileLock:
    """The lock every docs writer of ``root`` holds while it writes."""
    folder = root / ".spanlens"
    folder.mkdir(parents=True, exist_ok=True)
    # Not thread-local: the server takes and releases it from different threads.
    return FileLock(str(folder / LOCK_NAME), thread_local=False)


def acquire(lock: FileLock, timeout: float) -> None:
    """Take ``lock`` within ``timeout`` seconds (0: at once) or raise :class:`DocsLocked`."""
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise DocsLocked("another spanlens process is writing docs") from exc
