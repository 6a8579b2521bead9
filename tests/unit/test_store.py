"""The workspace database: migrations, corruption recovery, locking, content addressing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from spanlens_lsp.store.db import db_path_for, open_store, scratch_store
from spanlens_lsp.store.errors import StoreLocked
from spanlens_lsp.store.migrations import LATEST_VERSION, MIGRATIONS


def test_empty_database_is_migrated_to_latest_and_recorded(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    rows = store.conn.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m[0] for m in MIGRATIONS]
    assert rows[-1][0] == LATEST_VERSION
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"files", "spans", "enrichments", "attempts", "failures", "docs"} <= tables
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    # Re-opening applies nothing twice.
    again = open_store(tmp_path)
    assert again.conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
    again.close()


def test_corrupt_database_is_kept_aside_and_rebuilt(tmp_path: Path) -> None:
    path = db_path_for(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not sqlite at all" * 100)
    store = open_store(tmp_path)
    assert store.recovered_from is not None
    assert store.recovered_from.read_bytes().startswith(b"this is not sqlite")
    assert store.span_count() == 0
    store.close()


def test_a_held_write_lock_gives_a_clear_error(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    blocker = sqlite3.connect(db_path_for(tmp_path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store.conn.execute("PRAGMA busy_timeout = 50")
        with (
            pytest.raises(StoreLocked, match="locked by another spanlens process"),
            store.transaction(),
        ):
            pass
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        store.close()


def test_the_index_folder_ignores_itself_for_git(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    ignore = tmp_path / ".spanlens" / ".gitignore"
    assert ignore.read_text().splitlines()[-1] == "*"


def test_two_first_time_index_runs_at_once_both_succeed(tmp_path: Path) -> None:
    """Migrations take the write lock and re-read the applied version under it: the second
    process skips what the first applied (it used to fail with `table files already
    exists`)."""
    import subprocess
    import sys

    failures = []
    for pair in range(15):
        root = tmp_path / f"ws{pair}"
        root.mkdir()
        (root / "a.py").write_text("def f(x):\n    return x\n", encoding="utf-8")
        command = [sys.executable, "-m", "spanlens_lsp.cli", "index", str(root)]
        runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for run in runs:
            _, err = run.communicate(timeout=60)
            if run.returncode != 0:
                failures.append(err.strip())
        store = open_store(root)
        versions = [r[0] for r in store.conn.execute("SELECT version FROM migrations")]
        store.close()
        assert versions == [m[0] for m in MIGRATIONS]
    assert failures == []


def test_a_scratch_copy_holds_the_index_and_leaves_nothing_on_close(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert_file("a.py", "python", 1, 1, "00", False)
    copy = scratch_store(store)
    folder = copy.path.parent
    try:
        assert list(copy.file_rows()) == ["a.py"]
        copy.upsert_file("b.py", "python", 1, 1, "00", False)
        assert list(store.file_rows()) == ["a.py"]  # the source is left as it was
    finally:
        copy.close()
        store.close()
    assert not folder.exists()
