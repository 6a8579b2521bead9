"""Walk a workspace: which files spanlens indexes, respecting ignore files and defaults."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from spanlens_lsp.indexing.languages import language_for_path

#: Directory names never descended into.
DEFAULT_IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".spanlens",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        "site-packages",
        "build",
        "dist",
        "target",
        ".next",
        ".gradle",
        ".idea",
    }
)

#: File name suffixes of generated or minified code.
GENERATED_SUFFIXES = (".min.js", ".min.mjs", "_pb2.py", "_pb2_grpc.py", ".pb.go", ".d.ts")

IGNORE_FILES = (".gitignore", ".spanlensignore")

#: Why a file whose name is not valid UTF-8 is passed over: the index, the protocol (URIs) and
#: JSON all need a path that is text.
UNDECODABLE_NAME = "undecodable file name"


def printable_path(path: str) -> str:
    """``path`` with undecodable bytes (surrogate escapes) shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _decodable(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(slots=True, frozen=True)
class Candidate:
    """A file the walk found: relative POSIX path, absolute path, language, size, mtime."""

    path: str
    abspath: str
    language: str
    size: int
    mtime_ns: int


@dataclass(slots=True)
class WalkResult:
    """Files to consider, and files passed over with their reasons."""

    candidates: list[Candidate]
    skipped: dict[str, str]


def walk_workspace(
    root: Path, exclude: list[str] | None = None, max_size: int = 1 << 20
) -> WalkResult:
    """Find indexable files under ``root``.

    Honours .gitignore and .spanlensignore files at every level, the ``exclude`` patterns,
    :data:`DEFAULT_IGNORED_DIRS` and virtual environments (any folder with pyvenv.cfg). Files
    over ``max_size``, generated files and names that are not UTF-8 are reported in
    ``skipped`` (by printable path) without being read.
    """
    root_str = os.fspath(root)
    candidates: list[Candidate] = []
    skipped: dict[str, str] = {}
    base_specs: list[tuple[str, pathspec.PathSpec]] = []
    if exclude:
        base_specs.append(("", pathspec.GitIgnoreSpec.from_lines(exclude)))
    for rel_file, abs_file, entry_stat in _walk(root_str, "", base_specs):
        language = language_for_path(rel_file)
        if language is None:
            continue
        if not _decodable(rel_file):
            skipped[printable_path(rel_file)] = UNDECODABLE_NAME
            continue
        if rel_file.endswith(GENERATED_SUFFIXES):
            skipped[rel_file] = "generated"
            continue
        if entry_stat.st_size > max_size:
            skipped[rel_file] = f"larger than {max_size} bytes"
            continue
        candidates.append(
            Candidate(rel_file, abs_file, language, entry_stat.st_size, entry_stat.st_mtime_ns)
        )
    return WalkResult(candidates, skipped)


def _walk(
    abs_dir: str, rel_dir: str, specs: list[tuple[str, pathspec.PathSpec]]
) -> Iterator[tuple[str, str, os.stat_result]]:
    try:
        entries = list(os.scandir(abs_dir))
    except OSError:
        return
    names = {entry.name for entry in entries}
    if rel_dir and "pyvenv.cfg" in names:
        return
    local = list(specs)
    for ignore_name in IGNORE_FILES:
        if ignore_name in names:
            spec = _read_spec(os.path.join(abs_dir, ignore_name))
            if spec is not None:
                local.append((rel_dir, spec))
    subdirs = []
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            if entry.name in DEFAULT_IGNORED_DIRS or _ignored(local, rel + "/"):
                continue
            subdirs.append((entry.path, rel))
        elif entry.is_file(follow_symlinks=False):
            if language_for_path(entry.name) is None or _ignored(local, rel):
                continue
            try:
                yield rel, entry.path, entry.stat(follow_symlinks=False)
            except OSError:
                continue
    for abs_sub, rel_sub in sorted(subdirs):
        yield from _walk(abs_sub, rel_sub, local)


def _ignored(specs: list[tuple[str, pathspec.PathSpec]], rel: str) -> bool:
    """Gitignore semantics: the last matching pattern across specs decides, nested ones last."""
    ignored = False
    for base, spec in specs:
        if base:
            if not rel.startswith(base + "/"):
                continue
            local_rel = rel[len(base) + 1 :]
        else:
            local_rel = rel
        result = spec.check_file(local_rel)
        if result.include is not None:
            ignored = result.include
    return ignored


#: Parsed ignore files by path: (stat stamp, whether the stamp can be trusted, text, spec). A
#: file is parsed again only when it changes, not once per span or per walk.
_SPEC_CACHE: dict[str, tuple[tuple[int, int, int], bool, str, pathspec.PathSpec]] = {}
_SPEC_CACHE_MAX = 4096
#: A file modified this recently (ns) when it was read may change again within the
#: timestamp's granularity without its stamp changing: its text is compared instead.
_RACY_NS = 2_000_000_000


def _read_spec(path: str) -> pathspec.PathSpec | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
    cached = _SPEC_CACHE.get(path)
    if cached is not None and cached[0] == stamp and cached[1]:
        return cached[3]
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    trusted = time.time_ns() - info.st_mtime_ns > _RACY_NS
    if cached is not None and cached[2] == text:
        spec = cached[3]
    else:
        spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
    if len(_SPEC_CACHE) >= _SPEC_CACHE_MAX:
        _SPEC_CACHE.clear()
    _SPEC_CACHE[path] = (stamp, trusted, text, spec)
    return spec


@functools.lru_cache(maxsize=64)
def _exclude_spec(exclude: tuple[str, ...]) -> pathspec.PathSpec:
    return pathspec.GitIgnoreSpec.from_lines(exclude)


def skip_reason(
    root: Path, rel_path: str, exclude: list[str] | None = None, max_size: int = 1 << 20
) -> str | None:
    """Why the workspace walk would not index ``rel_path`` (POSIX, relative to ``root``), or
    None when it would.

    Applies the same rules as :func:`walk_workspace` to one path: default ignored folders,
    virtual environments, ignore files at every level, ``exclude``, generated suffixes and
    ``max_size`` (a file that does not exist passes the size check).
    """
    if language_for_path(rel_path) is None:
        return "not a supported language"
    if not _decodable(rel_path):
        return UNDECODABLE_NAME
    parts = rel_path.split("/")
    specs: list[tuple[str, pathspec.PathSpec]] = []
    if exclude:
        specs.append(("", _exclude_spec(tuple(exclude))))
    abs_dir = os.fspath(root)
    rel_dir = ""
    for depth, name in enumerate(parts[:-1]):
        if depth and os.path.exists(os.path.join(abs_dir, "pyvenv.cfg")):
            return "inside a virtual environment"
        _add_ignore_files(specs, abs_dir, rel_dir)
        rel_dir = f"{rel_dir}/{name}" if rel_dir else name
        if name in DEFAULT_IGNORED_DIRS or _ignored(specs, rel_dir + "/"):
            return "in an ignored folder"
        abs_dir = os.path.join(abs_dir, name)
    if rel_dir and os.path.exists(os.path.join(abs_dir, "pyvenv.cfg")):
        return "inside a virtual environment"
    _add_ignore_files(specs, abs_dir, rel_dir)
    if _ignored(specs, rel_path):
        return "ignored"
    if rel_path.endswith(GENERATED_SUFFIXES):
        return "generated"
    try:
        size = os.stat(os.path.join(abs_dir, parts[-1])).st_size
    except OSError:
        return None
    return f"larger than {max_size} bytes" if size > max_size else None


def _add_ignore_files(
    specs: list[tuple[str, pathspec.PathSpec]], abs_dir: str, rel_dir: str
) -> None:
    for ignore_name in IGNORE_FILES:
        spec = _read_spec(os.path.join(abs_dir, ignore_name))
        if spec is not None:
            specs.append((rel_dir, spec))


def ignore_rule_for(root: Path, rel_path: str, exclude: list[str] | None = None) -> str | None:
    """Which rule keeps ``rel_path`` out of the index, in words, for one-line messages:
    ``node_modules/ is a folder spanlens never indexes``, ``pattern 'build/' in
    sub/.gitignore``. None when no ignore rule applies (see :func:`skip_reason` for others).

    Only for messages: it re-reads the ignore files on the way to ``rel_path``.
    """
    parts = rel_path.split("/")
    for depth, name in enumerate(parts[:-1]):
        if name in DEFAULT_IGNORED_DIRS:
            return f"{'/'.join(parts[: depth + 1])}/ is a folder spanlens never indexes"
    sources: list[tuple[str, str, pathspec.PathSpec]] = []
    if exclude:
        sources.append(("index.exclude", "", pathspec.GitIgnoreSpec.from_lines(exclude)))
    rel_dir = ""
    for name in ["", *parts[:-1]]:
        rel_dir = f"{rel_dir}/{name}".strip("/") if name else rel_dir
        for ignore_name in IGNORE_FILES:
            spec = _read_spec(os.path.join(os.fspath(root), rel_dir, ignore_name))
            if spec is not None:
                sources.append((f"{rel_dir}/{ignore_name}".lstrip("/"), rel_dir, spec))
    targets = [f"{'/'.join(parts[: d + 1])}/" for d in range(len(parts) - 1)] + [rel_path]
    deciding: str | None = None
    for target in targets:
        for label, base, spec in sources:
            if base and not target.startswith(base + "/"):
                continue
            result = spec.check_file(target[len(base) + 1 :] if base else target)
            if result.include is None or result.index is None:
                continue
            pattern = spec.patterns[result.index]
            text = getattr(pattern, "pattern", None) or str(pattern)
            deciding = f"pattern {text!r} in {label}" if result.include else None
    return deciding
