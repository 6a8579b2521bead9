"""Promises of the indexer: a warm index opens no source file, a parallel index is a serial one.

The warm-index check watches real reads (an audit hook on "open" in a fresh interpreter), not
the indexer's own counters, so a counter that lies cannot hide a read.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.store.db import open_store

REPO = Path(__file__).resolve().parents[2]

#: Indexes ROOT cold, then again with an audit hook that records every file opened.
AUDITED_WARM_INDEX = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from spanlens_lsp.indexing.indexer import index_files
    from spanlens_lsp.store.db import open_store

    root = Path(sys.argv[1])
    workers = int(sys.argv[2])
    store = open_store(root)
    cold = index_files(root, store, workers=workers)
    opened = []

    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            opened.append(args[0] if isinstance(args[0], str) else args[0].decode())

    sys.addaudithook(hook)
    warm = index_files(root, store, workers=workers)
    store.close()
    print(json.dumps({"cold": cold.files_indexed, "warm": warm.files_indexed,
                      "unchanged": warm.files_unchanged, "opened": opened}))
    """
)


def _source_tree(root: Path, count: int = 80) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    names = [n for n in sorted(os.listdir(stdlib)) if n.endswith(".py")][:count]
    (root / "pkg").mkdir(parents=True)
    for name in names:
        shutil.copy2(stdlib / name, root / "pkg" / name)
    (root / "broken.py").write_text("def ok(x):\n    return x\n\ndef broken(:\n    pass\n")
    (root / "app.ts").write_text("export function add(a: number, b: number) { return a + b; }\n")


def _warm_opens(root: Path, workers: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    result = subprocess.run(
        [sys.executable, "-c", AUDITED_WARM_INDEX, str(root), str(workers)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_warm_index_opens_no_source_file(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _source_tree(root)
    report = _warm_opens(root, workers=1)
    sources = {str(p) for p in root.rglob("*") if p.suffix in (".py", ".ts")}
    opened = {os.path.abspath(p) for p in report["opened"]}  # type: ignore[attr-defined]
    assert not opened & sources, sorted(opened & sources)[:5]
    assert report["cold"] == 82 and report["warm"] == 0 and report["unchanged"] == 82


def test_a_parallel_index_equals_a_serial_one_row_for_row(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _source_tree(src, count=120)
    serial_root = tmp_path / "serial"
    shutil.copytree(src, serial_root)  # copy2: same sizes and mtimes
    for root, workers in ((serial_root, 1), (src, 2)):
        store = open_store(root)
        try:
            index_files(root, store, workers=workers)
        finally:
            store.close()
    serial_files, serial_spans = _rows(serial_root)
    parallel_files, parallel_spans = _rows(src)
    assert len(serial_files) > 64  # enough files for the worker pool to be used
    assert any(row["parse_errors"] for row in serial_files.values())  # flags are compared
    assert parallel_files == serial_files
    assert parallel_spans.keys() == serial_spans.keys()
    for key, row in serial_spans.items():
        assert parallel_spans[key] == row, key


def _rows(
    root: Path,
) -> tuple[dict[str, dict[str, object]], dict[tuple[object, ...], dict[str, object]]]:
    """Every column of files (by path) and spans (by key), except row ids and index time."""
    db = sqlite3.connect(root / ".spanlens" / "index.db")
    try:
        files = {
            row["path"]: {k: v for k, v in row.items() if k not in ("id", "indexed_at")}
            for row in _dicts(db, "SELECT * FROM files")
        }
        spans = {}
        for row in _dicts(
            db, "SELECT f.path AS path, s.* FROM spans s JOIN files f ON f.id = s.file_id"
        ):
            values = {k: v for k, v in row.items() if k not in ("id", "file_id")}
            spans[(row["path"], row["name"], row["kind"], row["ordinal"])] = values
        return files, spans
    finally:
        db.close()


def _dicts(db: sqlite3.Connection, sql: str) -> list[dict[str, object]]:
    cursor = db.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
