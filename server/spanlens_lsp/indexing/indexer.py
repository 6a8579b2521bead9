"""Incremental indexing: walk, skip what is unchanged, parse the rest, diff spans by key.

A file whose (size, mtime_ns) is unchanged is not read; one whose sha256 is unchanged is not
parsed. Parsing runs in worker processes when there is enough of it to pay for them; all
database writes happen in the calling process, in a few large transactions.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanlens_lsp.indexing.hashing import file_sha256
from spanlens_lsp.indexing.languages import get_extractor, language_for_path
from spanlens_lsp.indexing.parsing import (
    ParseTask,
    RecentParses,
    check_text,
    extraction_rows,
    run_parse_tasks,
)
from spanlens_lsp.indexing.source import normalise_source
from spanlens_lsp.indexing.walk import WalkResult, walk_workspace
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SPAN_INSERT_FIELDS, FileRow

#: Results written per transaction, and the longest a result waits to be written. The write
#: lock is taken only to write (never while workers parse), for a few tens of milliseconds,
#: so a language server or CLI run sharing the database is never held up for long.
_WRITE_BATCH = 64
_WRITE_DELAY = 0.05
#: Editor buffers whose last parse is kept for incremental re-parsing, and their most source
#: bytes in all (trees take some 20 times that).
_RECENT_PARSES = 32
_RECENT_PARSE_BYTES = 4 << 20

IndexProgressFn = Callable[[int, int], None]


@dataclass(slots=True)
class FileDiff:
    """How one file's spans changed in one re-index."""

    path: str
    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    removed: int = 0
    unchanged: int = 0
    moved: int = 0
    has_errors: bool = False

    @property
    def touched(self) -> list[int]:
        """Ids of spans that need (re-)enrichment: new and changed ones."""
        return self.added + self.changed


@dataclass(slots=True)
class IndexSummary:
    """The outcome of indexing a workspace, as `spanlens index` reports it."""

    files_indexed: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    files_removed: int = 0
    files_with_errors: int = 0
    spans_added: int = 0
    spans_changed: int = 0
    spans_removed: int = 0
    spans_unchanged: int = 0
    spans_moved: int = 0
    spans_total: int = 0
    seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)
    changed_span_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """One flat JSON-ready object (the documented `spanlens index --json` keys first)."""
        return {
            "files_indexed": self.files_indexed,
            "files_unchanged": self.files_unchanged,
            "files_skipped": self.files_skipped,
            "spans_added": self.spans_added,
            "spans_changed": self.spans_changed,
            "spans_removed": self.spans_removed,
            "spans_unchanged": self.spans_unchanged,
            "spans_total": self.spans_total,
            "seconds": round(self.seconds, 3),
            "files_removed": self.files_removed,
            "files_with_errors": self.files_with_errors,
            "spans_moved": self.spans_moved,
        }

    def add(self, diff: FileDiff) -> None:
        """Fold one file's diff into the totals."""
        self.files_indexed += 1
        self.files_with_errors += int(diff.has_errors)
        self.spans_added += len(diff.added)
        self.spans_changed += len(diff.changed)
        self.spans_removed += diff.removed
        self.spans_unchanged += diff.unchanged
        self.spans_moved += diff.moved
        self.changed_span_ids.extend(diff.touched)


# ------------------------------------------------------------------ diffing (store side)


def apply_parsed(
    store: Store,
    path: str,
    language: str,
    size: int,
    mtime_ns: int,
    sha: str,
    has_errors: bool,
    rows: Sequence[tuple[Any, ...]],
    file_id: int | None = None,
    old: dict[tuple[str, str, int], tuple[int, str]] | None = None,
) -> FileDiff:
    """Diff one file's freshly parsed spans against the store, by key, and write the result.

    Runs inside the caller's transaction. On syntax errors, stored spans whose key no longer
    parses are kept (a broken edit must not wipe a file's index). ``old`` is the file's
    :meth:`Store.span_keys` when the caller read them in this transaction (it is consumed).
    A row may lack facts (None) when its hash is one of the file's stored hashes: a span
    with the same key keeps its facts, one under a new key gets a copy of that hash's.
    """
    diff = FileDiff(path=path, has_errors=has_errors)
    if file_id is None:
        file_id = store.upsert_file(path, language, size, mtime_ns, sha, has_errors)
        old = store.span_keys(file_id)
    else:
        if old is None:
            old = store.span_keys(file_id)
        store.upsert_file(path, language, size, mtime_ns, sha, has_errors)
    inserts = []
    moves = []
    changes = []
    stored_facts: dict[str, str] | None = None
    for row in rows:
        key = (row[_NAME], row[_KIND], row[_ORDINAL])
        existing = old.pop(key, None)
        if existing is not None and existing[1] == row[_HASH]:
            diff.unchanged += 1
            moves.append((*row[_POSITIONS], existing[0]))
            continue
        if row[_FACTS] is None:
            # A known hash under another key (an ordinal shifted between equal names, a nested
            # def moved to another parent): copy that hash's stored facts, read before this
            # loop's writes can delete the span that holds them.
            if stored_facts is None:
                stored_facts = _facts_by_hash(store, path)
            row = (*row[:_FACTS], stored_facts[row[_HASH]])
        if existing is None:
            inserts.append(row)
        else:
            changes.append((*row[_POSITIONS.start : _FACTS + 1], existing[0]))
            diff.changed.append(existing[0])
    if moves:
        store.update_span_positions(moves)
        diff.moved = len(moves)
    if changes:
        store.update_span_contents(changes)
    if old and not has_errors:
        store.delete_spans(span_id for span_id, _ in old.values())
        diff.removed = len(old)
    if inserts:
        diff.added = store.insert_spans(file_id, inserts)
    return diff


_NAME, _KIND, _ORDINAL, _HASH, _FACTS = (
    SPAN_INSERT_FIELDS.index(f) for f in ("name", "kind", "ordinal", "content_hash", "facts")
)
#: The eight position fields, start line to name end column.
_POSITIONS = slice(
    SPAN_INSERT_FIELDS.index("start_line"), SPAN_INSERT_FIELDS.index("name_end_col") + 1
)


def _facts_by_hash(store: Store, path: str) -> dict[str, str]:
    """content_hash -> facts JSON of the spans stored for ``path``."""
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    return {span.content_hash: dumps(span.facts) for span in store.spans_in_file(path)}


def _write_results(
    store: Store,
    results: list[tuple[Any, ...]],
    known: dict[str, FileRow],
    summary: IndexSummary,
) -> None:
    """Write parsed (or unchanged-content) files in one short transaction."""
    if not results:
        return
    with store.transaction():
        touched = []
        for result in results:
            if result[0] == "same":
                touched.append((result[2], result[3], known[result[1]].id))
                summary.files_unchanged += 1
                continue
            _, path, language, size, mtime_ns, sha, has_errors, rows = result
            row = known.get(path)
            summary.add(
                apply_parsed(
                    store,
                    path,
                    language,
                    size,
                    mtime_ns,
                    sha,
                    has_errors,
                    rows,
                    file_id=row.id if row else None,
                )
            )
        if touched:
            store.touch_files(touched)


def index_files(
    root: Path,
    store: Store,
    *,
    exclude: list[str] | None = None,
    max_size: int = 1 << 20,
    workers: int = 0,
    progress: IndexProgressFn | None = None,
    walk: WalkResult | None = None,
) -> IndexSummary:
    """Bring the store up to date with the files under ``root``; see the module docstring.

    ``walk`` is the file list when the caller walked the workspace already (off the store's
    thread, so that the thread is free meanwhile)."""
    started = time.perf_counter()
    summary = IndexSummary()
    if walk is None:
        walk = walk_workspace(root, exclude=exclude, max_size=max_size)
    summary.skipped.update(walk.skipped)
    known = store.file_rows()
    seen: set[str] = set()
    tasks: list[ParseTask] = []
    for cand in walk.candidates:
        seen.add(cand.path)
        row = known.get(cand.path)
        if row and row.size == cand.size and row.mtime_ns == cand.mtime_ns:
            summary.files_unchanged += 1
            continue
        known_sha = row.sha256 if row else ""
        tasks.append((cand.path, cand.abspath, cand.language, cand.size, cand.mtime_ns, known_sha))
    gone = [row.id for path, row in known.items() if path not in seen]
    workers = workers or (os.cpu_count() or 1)
    total = len(tasks)
    if progress:
        progress(0, total)
    batch: list[tuple[Any, ...]] = []
    last_write = time.perf_counter()
    if gone:
        with store.transaction():
            summary.spans_removed += store.delete_files(gone)
        summary.files_removed = len(gone)
    for done, result in enumerate(run_parse_tasks(tasks, workers), start=1):
        if result[0] == "skip":
            summary.skipped[result[1]] = result[2]
        else:
            batch.append(result)
        if len(batch) >= _WRITE_BATCH or time.perf_counter() - last_write > _WRITE_DELAY:
            _write_results(store, batch, known, summary)
            batch.clear()
            last_write = time.perf_counter()
        if progress:
            progress(done, total)
    _write_results(store, batch, known, summary)
    summary.files_skipped = len(summary.skipped)
    summary.spans_total = store.span_count()
    summary.seconds = time.perf_counter() - started
    return summary


_recent_parses = RecentParses(_RECENT_PARSES, _RECENT_PARSE_BYTES)


def forget_recent_parse(path: str) -> None:
    """Drop the kept parse of ``path`` (its editor buffer closed): memory back at once."""
    language = language_for_path(path)
    if language is not None:
        _recent_parses.take(language, path)


def index_text(
    store: Store, root: Path, path: str, data: bytes, mtime_ns: int = 0
) -> FileDiff | None:
    """Re-index one file from text the editor holds (it may differ from the disk).

    Returns None for files spanlens does not index (unknown language, binary, not UTF-8).
    The stored size is set to -1 so that the next workspace walk re-reads the file and
    compares its sha256 with the disk (the buffer may never be saved). The file's parse is
    kept, so the next edit re-parses only what it changed.
    """
    language = language_for_path(path)
    if language is None or check_text(data) is not None:
        return None
    data = normalise_source(data)
    sha = file_sha256(data)
    existing = store.file_row(path)
    if existing is not None and existing.sha256 == sha:
        return FileDiff(path=path)
    extractor = get_extractor(language)
    with store.transaction():
        # Read in the write transaction, so the spans whose facts are skipped as known are
        # still there when apply_parsed needs them.
        old = store.span_keys(existing.id) if existing is not None else {}
        known_hashes = {content_hash for _, content_hash in old.values()}
        extraction = extractor.extract(data, _recent_parses.take(language, path), known_hashes)
        _recent_parses.put(language, path, extraction.parsed)
        has_errors, rows = extraction_rows(extraction)
        return apply_parsed(
            store,
            path,
            language,
            -1,
            mtime_ns,
            sha,
            has_errors,
            rows,
            file_id=existing.id if existing is not None else None,
            old=old,
        )


def relative_path(root: Path, file_path: Path) -> str | None:
    """``file_path`` relative to ``root`` in POSIX form, or None when it lies outside."""
    try:
        return file_path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def remove_paths(store: Store, paths: Iterable[str]) -> int:
    """Forget deleted files; returns how many spans went with them."""
    rows: list[FileRow] = [r for r in (store.file_row(p) for p in paths) if r is not None]
    if not rows:
        return 0
    with store.transaction():
        return store.delete_files(r.id for r in rows)
