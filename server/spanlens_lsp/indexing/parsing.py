"""Parsing, the worker side of indexing: reading and checking a file, extracting its spans as
store rows (in worker processes for a big walk), and the last parses kept for re-parsing an
editor's buffers. Nothing here touches the store."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from spanlens_lsp.indexing.hashing import file_sha256
from spanlens_lsp.indexing.languages import get_extractor
from spanlens_lsp.indexing.source import normalise_source
from spanlens_lsp.indexing.spans import Extraction, ParsedSource

#: Files parsed per worker task, and the least work that justifies worker processes.
_CHUNK = 16
_MIN_FILES_FOR_POOL = 64


# ------------------------------------------------------------------ parsing (worker side)

#: A parsed file: (has_errors, span rows in store.db.SPAN_INSERT_FIELDS order).
Parsed = tuple[bool, list[tuple[Any, ...]]]


def parse_source(language: str, data: bytes) -> Parsed:
    """Extract spans from ``data`` (normalised: see :mod:`spanlens_lsp.indexing.source`) as rows
    ready for the store."""
    return extraction_rows(get_extractor(language).extract(normalise_source(data)))


def extraction_rows(extraction: Extraction) -> Parsed:
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    rows = [
        (
            s.name,
            s.kind,
            s.ordinal,
            s.start_line,
            s.start_col,
            s.end_line,
            s.end_col,
            s.name_start_line,
            s.name_start_col,
            s.name_end_line,
            s.name_end_col,
            s.content_hash,
            dumps(s.facts) if s.facts is not None else None,
        )
        for s in extraction.spans
    ]
    return extraction.has_errors, rows


#: A file of at least this many bytes whose lines average more than MINIFIED_LINE_BYTES is
#: minified or generated (a bundle): nobody reads or edits it, and its spans are noise.
MINIFIED_MIN_BYTES = 64 << 10
MINIFIED_LINE_BYTES = 1000
MINIFIED = f"minified (lines average over {MINIFIED_LINE_BYTES} bytes)"


def check_text(data: bytes) -> str | None:
    """Why ``data`` is not indexed (binary, not UTF-8, minified), or None when it is."""
    if b"\0" in data[:8192]:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    if len(data) >= MINIFIED_MIN_BYTES:
        lines = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n") + 1
        if len(data) / lines > MINIFIED_LINE_BYTES:
            return MINIFIED
    return None


# A task: (path, abspath, language, size, mtime_ns, known sha256 or "").
ParseTask = tuple[str, str, str, int, int, str]


def _process(task: ParseTask) -> tuple[Any, ...]:
    path, abspath, language, size, mtime_ns, known_sha = task
    try:
        with open(abspath, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return ("skip", path, f"unreadable: {exc.strerror}")
    reason = check_text(data)
    if reason:
        return ("skip", path, reason)
    data = normalise_source(data)
    sha = file_sha256(data)
    if sha == known_sha:
        return ("same", path, size, mtime_ns)
    try:
        has_errors, rows = parse_source(language, data)
    except Exception as exc:  # a grammar crash must not lose the file's old spans
        return ("skip", path, f"parser failed: {type(exc).__name__}")
    return ("parsed", path, language, size, mtime_ns, sha, has_errors, rows)


def _process_chunk(tasks: list[ParseTask]) -> list[tuple[Any, ...]]:
    return [_process(task) for task in tasks]


#: Seconds between a worker's checks that the process that started it is still alive.
_PARENT_POLL = 0.5


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker when the indexing process dies (kill -9 too).

    Linux delivers SIGKILL at the parent's death (PR_SET_PDEATHSIG); elsewhere, and as a
    fallback, a daemon thread polls the parent pid. A worker that starts after its parent
    died already exits at once.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_PARENT_POLL)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="spanlens-parent-watch", daemon=True).start()


_PR_SET_PDEATHSIG = 1


def run_parse_tasks(tasks: list[ParseTask], workers: int) -> Iterator[tuple[Any, ...]]:
    if workers <= 1 or len(tasks) < _MIN_FILES_FOR_POOL:
        for task in tasks:
            yield _process(task)
        return
    # Largest files first so one big file does not finish the run alone.
    tasks = sorted(tasks, key=lambda t: -t[3])
    chunks = [tasks[i : i + _CHUNK] for i in range(0, len(tasks), _CHUNK)]
    # fork is cheapest but unsafe once other threads exist (the language server has some).
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        for results in pool.map(_process_chunk, chunks):
            yield from results


class RecentParses:
    """The last parse of the few files an editor keeps re-indexing, least recently used out.

    Only :func:`index_text` uses it: a workspace index would fill it with trees nobody edits.
    A tree takes about 20 times its source in memory, hence the bound on source bytes too.
    An entry is taken out while a parse uses it (re-parsing edits its tree in place), so two
    threads never share one. Entries are keyed by path alone: one from another workspace, or
    from before the file changed on disk, is still a correct base to re-parse from.
    """

    def __init__(self, max_files: int, max_bytes: int) -> None:
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, str], ParsedSource] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, language: str, path: str) -> ParsedSource | None:
        """Remove and return the last parse of ``path``, if kept."""
        with self._lock:
            parsed = self._entries.pop((language, path), None)
            if parsed is not None:
                self._bytes -= len(parsed.source)
            return parsed

    def put(self, language: str, path: str, parsed: ParsedSource | None) -> None:
        """Keep ``parsed`` as the last parse of ``path``, dropping the oldest to make room."""
        if parsed is None or len(parsed.source) > self._max_bytes:
            return
        with self._lock:
            replaced = self._entries.pop((language, path), None)
            if replaced is not None:
                self._bytes -= len(replaced.source)
            self._entries[(language, path)] = parsed
            self._bytes += len(parsed.source)
            while len(self._entries) > self._max_files or self._bytes > self._max_bytes:
                _, oldest = self._entries.popitem(last=False)
                self._bytes -= len(oldest.source)
