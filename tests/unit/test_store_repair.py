"""A damaged database, in any command: set aside, rebuilt, enrichments salvaged, one line.

Damage is what SQLite notices only later: a few pages in the middle of the file overwritten,
so opening works and queries (or ``integrity_check``) fail. No command may print
``internal error`` or exit 0 while the database still fails ``integrity_check``.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.db import db_path_for, open_store
from spanlens_lsp.store.enrichments import put_enrichment
from spanlens_lsp.store.migrations import LATEST_VERSION

Cli = Callable[..., tuple[int, str, str]]
PAGE = 4096
COMMANDS = ("index", "show", "status", "stats", "doctor", "enrich")


def _module(number: int) -> str:
    return "\n".join(
        f'def f{number}_{j}(a, b):\n    """Step {j} of {number}."""\n    return a + b + {j}\n'
        for j in range(40)
    )


@pytest.fixture
def workspace(tmp_path: Path, cli: Cli) -> Path:
    """30 files, 1,200 spans, 600 of them enriched (some 60 pages of enrichments)."""
    for number in range(30):
        (tmp_path / f"m{number}.py").write_text(_module(number), encoding="utf-8")
    code, _, err = cli("index", str(tmp_path))
    assert code == 0, err
    store = open_store(tmp_path)
    hashes = [r[0] for r in store.conn.execute("SELECT content_hash FROM spans ORDER BY id")]
    for content_hash in hashes[:600]:
        put_enrichment(
            store,
            content_hash,
            ENRICHMENT_VERSION,
            {"summary": f"Adds its arguments ({content_hash[:6]}) " * 8},
            model="m",
            tier="small",
            backend="b",
            host="127.0.0.1",
        )
    store.close()
    return tmp_path


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinModelServer]:
    with StandinModelServer(responder=valid_responder) as server:
        backends = [{"name": "b0", "tier": "small", "url": server.url}]
        monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps(backends))
        monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
        yield server


def _enrichments(path: Path) -> dict[tuple[str, str], str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT content_hash, schema_version, data FROM enrichments")
        return {(h, v): d for h, v, d in rows}
    finally:
        conn.close()


def _pages_of(path: Path, *tables: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        marks = ",".join("?" * len(tables))
        rows = conn.execute(f"SELECT pageno FROM dbstat WHERE name IN ({marks})", tables)
        return sorted(r[0] for r in rows)
    finally:
        conn.close()


def _enrichment_rows_on(path: Path, pages: list[int]) -> int:
    """How many enrichment rows the given pages hold (leaf cells of the table's b-tree)."""
    conn = sqlite3.connect(path)
    try:
        marks = ",".join("?" * len(pages))
        row = conn.execute(
            "SELECT COALESCE(SUM(ncell), 0) FROM dbstat WHERE name = 'enrichments' "
            f"AND pagetype = 'leaf' AND pageno IN ({marks})",
            pages,
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def _overwrite(path: Path, pages: list[int], seed: int, keep_mtime: bool = False) -> None:
    """Overwrite whole pages (1-based numbers) with random bytes, in place."""
    before = path.stat()
    rng = random.Random(seed)
    with open(path, "r+b") as handle:
        for page in pages:
            handle.seek((page - 1) * PAGE)
            handle.write(rng.randbytes(PAGE))
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()


def _args(command: str, root: Path) -> list[str]:
    if command == "show":
        return ["show", str(root / "m3.py") + ":2", "--root", str(root)]
    return [command, str(root)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_sets_a_damaged_database_aside_and_rebuilds_it(
    workspace: Path, cli: Cli, standin: StandinModelServer, command: str, seed: int
) -> None:
    db = db_path_for(workspace)
    before = _enrichments(db)
    middle = range(3, db.stat().st_size // PAGE - 2)
    pages = random.Random(seed).sample(middle, 3)
    rows_on_pages = _enrichment_rows_on(db, pages)
    _overwrite(db, pages, seed)
    assert _integrity(db) != "ok"

    code, _, err = cli(*_args(command, workspace))

    assert "internal error" not in err and "Traceback" not in err
    assert _integrity(db) == "ok"
    aside = [p for p in db.parent.iterdir() if p.name.startswith("index.db.corrupt-")]
    assert len(aside) == 1
    notices = [line for line in err.splitlines() if "was damaged" in line]
    assert len(notices) == 1 and aside[0].name in notices[0]
    if command != "doctor":  # doctor exits 1 on other problems (a missing model, say)
        assert code == 0, err
    # Every salvaged enrichment is exactly an original one, and only the rows of damaged
    # enrichment pages can be missing.
    saved = re.search(r"salvaged (\d+) enrichments", notices[0])
    assert saved is not None and int(saved.group(1)) >= len(before) - rows_on_pages
    if command != "enrich":  # (enrich enriches the lost ones again, differently)
        after = _enrichments(db)
        assert len(after) == int(saved.group(1))
        assert all(before[key] == data for key, data in after.items())


def test_damage_outside_enrichments_loses_no_enrichment(workspace: Path, cli: Cli) -> None:
    db = db_path_for(workspace)
    before = _enrichments(db)
    pages = _pages_of(db, "spans", "spans_by_hash")
    _overwrite(db, pages[len(pages) // 2 : len(pages) // 2 + 4], seed=7)

    code, out, err = cli("status", str(workspace))

    assert code == 0, err
    assert "salvaged 600 enrichments" in err
    assert _enrichments(db) == before
    # status says the spans come back with the next index, and the next index does it
    assert "0 files" in out and "spanlens index" in out
    code, out, err = cli("index", str(workspace), "--json")
    assert code == 0 and json.loads(out)["spans_total"] == 1200
    code, out, _ = cli("status", str(workspace), "--json")
    assert json.loads(out)["enriched"] == 600 and json.loads(out)["pending"] == 600


def test_damage_found_after_the_check_on_open_rebuilds_and_runs_again(
    workspace: Path, cli: Cli
) -> None:
    """The check on open passes (this process found the file sound, and its size and mtime
    did not change); a query then reads a damaged page: the command still recovers."""
    db = db_path_for(workspace)
    open_store(workspace).close()  # checked, and remembered as sound
    pages = _pages_of(db, "files", "spans", "spans_by_position", "sqlite_autoindex_files_1")
    _overwrite(db, pages, seed=11, keep_mtime=True)

    code, _, err = cli("status", str(workspace))

    assert code == 0, err
    assert "was damaged" in err and "salvaged 600 enrichments" in err
    assert _integrity(db) == "ok"


def test_a_database_from_a_newer_spanlens_is_refused_and_kept(workspace: Path, cli: Cli) -> None:
    db = db_path_for(workspace)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO migrations VALUES (?, 'from the future', 0)", (LATEST_VERSION + 4,))
    conn.commit()
    conn.close()
    for command in ("index", "status", "show"):
        code, _, err = cli(*_args(command, workspace))
        assert code == 1
        assert err.strip() == (
            f"spanlens: index.db was written by a newer spanlens (migration "
            f"{LATEST_VERSION + 4} > {LATEST_VERSION}); upgrade spanlens or delete {db}"
        )
    assert not [p for p in db.parent.iterdir() if "corrupt" in p.name]
    assert len(_enrichments(db)) == 600


async def test_a_server_worker_rebuilds_on_damage_and_every_connection_follows(
    workspace: Path,
) -> None:
    """In the server, damage found by a query (not by the check on open) rebuilds the
    database in the worker thread, and the other connections of the process (the server
    holds several) move to the new file instead of reading on in the damaged one."""
    from spanlens_lsp.store.enrichments import unfinished_count
    from spanlens_lsp.store.worker import StoreWorker

    db = db_path_for(workspace)
    other = open_store(workspace)  # checked, and remembered as sound
    assert other.span_count() == 1200
    pages = _pages_of(db, "files", "spans", "spans_by_position", "sqlite_autoindex_files_1")
    _overwrite(db, pages, seed=5, keep_mtime=True)
    worker = StoreWorker(workspace, "test")
    try:
        spans = await worker.run(lambda store: store.span_count())
    finally:
        await worker.aclose()
    assert spans == 0  # the rebuilt index, until the next index fills it
    assert other.span_count() == 0
    assert unfinished_count(other, ENRICHMENT_VERSION, 3) == 0
    assert len(_enrichments(db)) == 600
    other.close()
    assert _integrity(db) == "ok"


def _spanlens(*args: str) -> tuple[int, str, str]:
    """Run `spanlens ARGS` as its own process, as a user does: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "spanlens_lsp.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def _plant(db: Path, *updates: str) -> None:
    """Write values no spanlens writes, through SQLite itself: the file stays structurally
    sound, so SQLite's checks pass, as they do for such bytes on a damaged page."""
    conn = sqlite3.connect(db)
    for update in updates:
        assert conn.execute(update).rowcount == 1, update
    conn.commit()
    conn.close()
    assert _integrity(db) == "ok"


#: Bytes that are not UTF-8 in TEXT columns: the language of m3.py (every command reads the
#: files table) and the model of one enrichment (so it is the one row salvage cannot keep).
NOT_UTF8 = (
    "UPDATE files SET language = CAST(x'70799974686f6e' AS TEXT) WHERE path = 'm3.py'",
    "UPDATE enrichments SET model = CAST(x'6dc3' AS TEXT) "
    "WHERE rowid = (SELECT MIN(rowid) FROM enrichments)",
)


@pytest.mark.parametrize("command", ["status", "index", "show", "doctor"])
def test_text_that_is_not_utf8_is_damage_set_aside_and_rebuilt(
    workspace: Path, standin: StandinModelServer, command: str
) -> None:
    db = db_path_for(workspace)
    before = _enrichments(db)
    _plant(db, *NOT_UTF8)

    code, _, err = _spanlens(*_args(command, workspace))

    assert "UTF-8" not in err and "internal error" not in err and "Traceback" not in err, err
    notices = [line for line in err.splitlines() if "was damaged" in line]
    aside = [p for p in db.parent.iterdir() if p.name.startswith("index.db.corrupt-")]
    assert len(notices) == 1 and len(aside) == 1 and aside[0].name in notices[0], err
    assert "salvaged 599 enrichments" in notices[0]
    assert code == 0, err
    after = _enrichments(db)
    assert len(after) == 599 and all(before[key] == data for key, data in after.items())
    code, _, err = _spanlens(*_args(command, workspace))  # once rebuilt, it stays so
    assert code == 0 and "damaged" not in err, err


def test_a_value_of_the_wrong_type_is_damage(workspace: Path) -> None:
    """A damaged page can turn a span's facts (JSON text) into bytes: that is damage too,
    not a UnicodeDecodeError from deep inside `show`."""
    db = db_path_for(workspace)
    _plant(
        db,
        "UPDATE spans SET facts = x'ff7b7d' WHERE name = 'f3_0'",
    )

    code, out, err = _spanlens(*_args("show", workspace))

    assert code == 0 and "f3_0" in out, err
    assert err.count("was damaged") == 1 and "salvaged 600 enrichments" in err, err
    assert len([p for p in db.parent.iterdir() if p.name.startswith("index.db.corrupt-")]) == 1
