"""Docgen: freshness keys, overview validation, confinement, locks, atomic writes, orphans.

Overviews come from the real HTTP stand-in (``tests.support.replies.valid_reply`` answers
docgen requests validly); enrichments are stored through the store's own API.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.lsp.conftest import toml_settings
from tests.support.replies import parse_docgen_request, valid_reply
from tests.support.standin import Reply, StandinModelServer

from spanlens_lsp.cli import main
from spanlens_lsp.config import load_settings
from spanlens_lsp.docgen.overview import validate_overview
from spanlens_lsp.docgen.write import (
    DocPathError,
    doc_path,
    docs_dir,
    docs_lock,
    read_header,
    remove_orphans,
    write_atomic,
)
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.settings import ConfigError
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store

A = "def helper(y):\n    return y + 1\n"
B = "from a import helper\n\n\ndef main(x):\n    return helper(x)\n"
C = "def other(z):\n    return z * 2\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def standin() -> Any:
    with StandinModelServer(responder=valid_reply) as server:
        yield server


def _workspace(root: Path, url: str, **files: str) -> Path:
    root.mkdir(exist_ok=True)
    for name, text in (files or {"a.py": A, "b.py": B, "c.py": C}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "spanlens.toml").write_text(toml_settings(url, docgen=True))
    return root


def _enrich_all(root: Path, summary: str = "Does its job.") -> None:
    """Store a valid enrichment for every pending span (what `spanlens enrich` would do)."""
    store = open_store(root)
    index_files(root, store, workers=1)
    for span in queries.pending_spans(store, ENRICHMENT_VERSION, 3, time.time()):
        data = {"summary": f"{summary} ({span.name})", "inputs": [], "outputs": ["a value"]}
        queries.put_enrichment(
            store, span.content_hash, ENRICHMENT_VERSION, data, model="m", tier="small",
            backend="b", host="h",
        )  # fmt: skip
    store.close()


def _docgen(root: Path, capsys: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    code = main(["docgen", str(root), "--json", *extra])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def _overview_calls(server: StandinModelServer) -> list[str]:
    found = (parse_docgen_request(r) for r in server.chat_requests)
    return [d["path"] for d in found if d is not None]


def _by_path(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["path"]: d for d in result["docs"]}


# ----------------------------------------------------------------------------- freshness keys


def test_a_callee_signature_change_re_renders_its_callers_without_a_model_call(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    _enrich_all(root)
    code, first = _docgen(root, capsys)
    assert code == 0 and first["written"] == 3 and first["modelCalls"] == 3
    b_header = read_header(root / ".spanlens/docs/b.py.md")
    assert b_header is not None
    # helper (in a.py) gets a new signature and, once enriched, a new enrichment.
    (root / "a.py").write_text("def helper(y, z=0):\n    return y + z + 1\n")
    _enrich_all(root)
    standin.reset()
    code, second = _docgen(root, capsys)
    docs = _by_path(second)
    assert code == 0 and set(docs) == {"a.py", "b.py"}  # c.py is fresh: untouched
    assert _overview_calls(standin) == ["a.py"]  # one model call, for the changed file
    assert docs["a.py"]["modelCalls"] == 1 and not docs["a.py"]["renderedOnly"]
    assert docs["b.py"]["modelCalls"] == 0 and docs["b.py"]["renderedOnly"]
    new_b = read_header(root / ".spanlens/docs/b.py.md")
    assert new_b is not None
    assert new_b[0] == b_header[0] and new_b[1] != b_header[1]  # same overview, new render
    assert new_b[2] == b_header[2]  # the overview text carried over from the old doc
    # Nothing changed since: nothing to write, no call.
    standin.reset()
    assert _docgen(root, capsys)[1]["written"] == 0 and _overview_calls(standin) == []


def test_a_spans_new_enrichment_costs_one_overview_call_for_its_file_only(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    _enrich_all(root)
    _docgen(root, capsys)
    store = open_store(root)
    other = store.spans_in_file("c.py")[0]
    queries.put_enrichment(
        store, other.content_hash, ENRICHMENT_VERSION, {"summary": "Doubles z.", "inputs": []},
        model="m2", tier="small", backend="b", host="h",
    )  # fmt: skip
    store.close()
    standin.reset()
    code, result = _docgen(root, capsys)
    assert code == 0 and [d["path"] for d in result["docs"]] == ["c.py"]
    assert _overview_calls(standin) == ["c.py"]
    assert "Doubles z." in (root / ".spanlens/docs/c.py.md").read_text()


def test_each_span_section_names_the_model_that_wrote_it(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    _enrich_all(root)
    _docgen(root, capsys)
    assert "*Enriched by m.*" in (root / ".spanlens/docs/c.py.md").read_text()
    # The same summary, now stored as another model's (a tiny one, by its long name): the doc
    # is re-rendered under that name, without a model call.
    store = open_store(root)
    other = store.spans_in_file("c.py")[0]
    data = queries.enrichment_rows(store, ENRICHMENT_VERSION)
    [same] = [d for h, d in data if h == other.content_hash]
    queries.put_enrichment(
        store, other.content_hash, ENRICHMENT_VERSION, same,
        model="hf.co/HuggingFaceTB/SmolLM2-135M-Instruct.Q4_1.gguf\u202e", tier="small",
        backend="b", host="h",
    )  # fmt: skip
    store.close()
    standin.reset()
    code, result = _docgen(root, capsys)
    assert code == 0 and [d["path"] for d in result["docs"]] == ["c.py"]
    assert result["docs"][0]["renderedOnly"] and _overview_calls(standin) == []
    text = (root / ".spanlens/docs/c.py.md").read_text()
    assert "*Enriched by SmolLM2-135M-Instruct.Q4_1.*" in text and "\u202e" not in text


def test_files_with_pending_spans_wait_and_dry_run_lists_the_calls(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    # No index yet: --status reads only, and says how to make one.
    assert main(["docgen", str(root), "--status"]) == 1
    assert "run `spanlens index" in capsys.readouterr().err
    _enrich_all(root)
    (root / "d.py").write_text("def pending(q):\n    return q\n")  # indexed, never enriched
    code, plan = _docgen(root, capsys, "--dry-run")
    assert code == 0 and plan["modelCalls"] == 3 and plan["waiting"] == ["d.py"]
    assert sorted(row["path"] for row in plan["write"]) == ["a.py", "b.py", "c.py"]
    assert standin.chat_requests == [] and not (root / ".spanlens/docs").exists()
    _docgen(root, capsys, "--file", "a.py")
    code, status = _docgen(root, capsys, "--status")
    assert status["fresh"] == 1 and status["missing"] == 2 and status["waiting"] == 1


def test_a_failed_span_is_documented_with_its_facts_marked_failed(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url, **{"a.py": A})
    store = open_store(root)
    index_files(root, store, workers=1)
    span = store.spans_in_file("a.py")[0]
    for _ in range(3):
        queries.record_failure(store, span.content_hash, "model timeout", 0.0, 1.0, 1.0)
    store.close()
    code, result = _docgen(root, capsys)
    text = (root / ".spanlens/docs/a.py.md").read_text()
    assert code == 0 and result["written"] == 1
    assert "✗ enrichment failed: model timeout" in text and "def helper(y)" in text


def test_no_model_reachable_writes_no_doc_and_says_why(tmp_path: Path, capsys: Any) -> None:
    with StandinModelServer(responder=lambda r: Reply.error(500, {"error": "down"})) as server:
        root = _workspace(tmp_path / "ws", server.url)
        _enrich_all(root)
        code, result = _docgen(root, capsys)
    assert code != 0 and result["written"] == 0 and result["failed"] == 3
    assert all(d["error"] for d in result["docs"])
    assert not list((root / ".spanlens/docs").rglob("*.md"))


# ----------------------------------------------------------------------------- validation


def test_overview_replies_are_validated_against_the_file() -> None:
    names = ["Config", "Config.load", "parse"]
    good = {"purpose": "Reads `Config`.", "responsibilities": ["`load` reads"], "structure": "x y"}
    assert validate_overview(json.dumps(good), names)[0] == good
    invented = {**good, "structure": "Calls `invented_helper` first."}
    data, errors = validate_overview(json.dumps(invented), names)
    assert data is None and "invented_helper" in errors[0]
    for placeholder in ("TODO", "...", "\x00"):
        data, errors = validate_overview(json.dumps({**good, "purpose": placeholder}), names)
        assert data is None and errors, placeholder
    assert validate_overview(json.dumps({**good, "responsibilities": []}), names)[0] is None
    assert validate_overview("Sure! It reads config.", names)[0] is None
    assert validate_overview(json.dumps({**good, "extra": 1}), names)[0] is None


def test_an_invalid_overview_is_never_written(tmp_path: Path, capsys: Any) -> None:
    def invent(request: Any) -> Reply:
        bad = {"purpose": "Uses `ghost`.", "responsibilities": ["x y"], "structure": "x y"}
        return Reply.json(bad) if parse_docgen_request(request) else valid_reply(request)

    with StandinModelServer(responder=invent) as server:
        root = _workspace(tmp_path / "ws", server.url, **{"a.py": A})
        _enrich_all(root)
        code, result = _docgen(root, capsys)
    assert code != 0 and "invalid overview" in result["docs"][0]["error"]
    assert not (root / ".spanlens/docs/a.py.md").exists()


# ----------------------------------------------------------------------------- confinement


def test_docs_never_leave_the_docs_folder(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / ".spanlens").mkdir(parents=True)
    (root / ".spanlens/docs").symlink_to(outside)
    with pytest.raises(DocPathError):
        docs_dir(root, ".spanlens/docs")
    for bad in ("../out", "/abs/docs", ""):
        with pytest.raises(DocPathError):
            docs_dir(root, bad)
    folder = docs_dir(root, "docs/reference")
    with pytest.raises(DocPathError):
        doc_path(folder, "../escape.py")
    (folder / "pkg").parent.mkdir(parents=True)
    (folder / "pkg").symlink_to(outside)  # a link inside the docs folder
    with pytest.raises(DocPathError):
        doc_path(folder, "pkg/b.py")
    assert doc_path(folder, "pkg2/b.py") == folder / "pkg2" / "b.py.md"
    assert list(outside.iterdir()) == []


def test_a_docs_dir_outside_the_workspace_is_refused_by_the_settings(tmp_path: Path) -> None:
    (tmp_path / "spanlens.toml").write_text('[docgen]\ndir = "../elsewhere"\n')
    with pytest.raises(ConfigError, match=r"docgen\.dir"):
        load_settings(tmp_path)


def test_the_cli_refuses_a_symlinked_docs_dir_in_one_line(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    (tmp_path / "outside").mkdir()
    (root / ".spanlens").mkdir()
    (root / ".spanlens/docs").symlink_to(tmp_path / "outside")
    assert main(["docgen", str(root)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "symbolic link" in err[0]
    assert list((tmp_path / "outside").iterdir()) == []


# ----------------------------------------------------------------------------- orphans


def test_docs_of_deleted_files_go_and_nothing_else_is_touched(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    _enrich_all(root)
    _docgen(root, capsys)
    notes = root / ".spanlens/docs/notes.md"
    notes.write_text("my own notes\n")
    (root / "c.py").unlink()
    code, result = _docgen(root, capsys)
    assert code == 0 and result["removed"] == ["c.py"]
    assert not (root / ".spanlens/docs/c.py.md").exists()
    assert notes.read_text() == "my own notes\n"
    assert (root / ".spanlens/docs/a.py.md").exists()


# ----------------------------------------------------------------------------- lock and atomicity

_HOLDER = """
import sys, time
from pathlib import Path
from spanlens_lsp.docgen.write import docs_lock
lock = docs_lock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_second_writer_waits_for_the_lock_says_so_and_loses_nothing(
    tmp_path: Path, standin: StandinModelServer
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    _enrich_all(root)
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    run = subprocess.Popen(
        [sys.executable, "-m", "spanlens_lsp.cli", "docgen", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert run.stdout is not None
        assert "waiting for it to finish" in run.stdout.readline()
        assert not (root / ".spanlens/docs").exists()  # nothing written while it waits
        holder.communicate("\n", timeout=10)
        out, err = run.communicate(timeout=60)
    finally:
        holder.kill()
        run.kill()
    assert run.returncode == 0, err
    assert "3 written" in out
    assert sorted(p.name for p in (root / ".spanlens/docs").glob("*.md")) == [
        "a.py.md",
        "b.py.md",
        "c.py.md",
    ]


def test_the_lock_of_a_killed_holder_is_free_again(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    lock = docs_lock(tmp_path)
    with pytest.raises(Exception, match="could not be acquired"):
        lock.acquire(timeout=0)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock.acquire(timeout=5)  # no stale lock left behind
    lock.release()


_WRITER = """
import sys
from pathlib import Path
from spanlens_lsp.docgen.write import write_atomic
target = Path(sys.argv[1])
i = 0
while True:
    write_atomic(target, f"version {i}\\n" + "x" * 4_000_000 + f"\\nend {i}\\n")
    i += 1
    if i == 1:
        print("writing", flush=True)
"""


def test_a_doc_is_whole_after_its_writer_is_killed(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "a.py.md"
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    for trial in range(8):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target)],
            stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        time.sleep(0.003 * trial)  # kill at different points of a write
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        text = target.read_text()
        lines = text.splitlines()
        assert len(lines) == 3, "a torn doc"
        first, last = lines[0], lines[-1]
        assert first.startswith("version ") and last == "end " + first.split()[1]
        assert len(text) > 4_000_000
    remove_orphans(tmp_path / "docs", [])  # temp files of the killed writers go
    assert [p.name for p in (tmp_path / "docs").iterdir()] == ["a.py.md"]
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"


# ----------------------------------------------------------------------------- the server's job


class _Services:
    """What the server's docgen job is built with: a writer thread and the engine whose call
    path overviews take (as app.build_services wires them)."""

    def __init__(self, engine: Any, worker: Any) -> None:
        self.engine = engine
        self.worker = worker

    async def aclose(self) -> None:
        if self.engine is not None:
            await self.engine.aclose()
        await self.worker.aclose()


async def _job(root: Path) -> tuple[Any, Any]:
    from spanlens_lsp.app import build_engine
    from spanlens_lsp.docgen.job import DocgenJob
    from spanlens_lsp.store.worker import StoreWorker

    settings = load_settings(root)
    worker = StoreWorker(root, "test")
    engine = build_engine(root, settings, worker, None)
    calls = engine.calls if engine is not None else None
    return DocgenJob(root, settings, worker, calls=calls), _Services(engine, worker)


async def test_the_server_skips_while_another_process_holds_the_docs_lock(
    tmp_path: Path, standin: StandinModelServer
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    _enrich_all(root)
    job, worker = await _job(root)
    lock = docs_lock(root)  # e.g. a `spanlens docgen` run
    lock.acquire()
    try:
        result = await job.document_path("a.py")
        assert not result.written and "another spanlens process" in (result.error or "")
        assert job.snapshot()["last_error"].startswith("another spanlens process")
        assert not (root / ".spanlens/docs").exists() and _overview_calls(standin) == []
    finally:
        lock.release()
    try:
        result = await job.document_path("a.py")  # free again: written, nothing lost
        assert result.written and job.snapshot()["last_error"] is None
        assert job.existing_doc("a.py") == root / ".spanlens/docs/a.py.md"
    finally:
        await worker.aclose()


async def test_the_server_writes_no_doc_without_a_model_and_says_why(tmp_path: Path) -> None:
    from tests.support.standin import closed_port_url

    root = _workspace(tmp_path / "ws", closed_port_url())
    _enrich_all(root)
    job, worker = await _job(root)
    try:
        result = await job.document_path("a.py")
        assert not result.written and result.error == "connection refused"
        assert job.snapshot()["last_error"] == "connection refused"
        assert job.existing_doc("a.py") is None
        units = await job.next_units()  # a failed file backs off: not offered again at once
        assert all(plan.path != "a.py" for plan in units)
    finally:
        await worker.aclose()


# ----------------------------------------------------------------------------- failure backoff


def _invalid_overviews(request: Any) -> Reply:
    bad = {"purpose": "Uses `ghost`.", "responsibilities": ["x y"], "structure": "x y"}
    return Reply.json(bad) if parse_docgen_request(request) else valid_reply(request)


async def test_a_failed_doc_backs_off_across_a_server_restart(tmp_path: Path) -> None:
    from tests.support.standin import closed_port_url

    root = _workspace(tmp_path / "ws", closed_port_url(), **{"a.py": A})
    _enrich_all(root)
    job, worker = await _job(root)
    try:
        assert [plan.path for plan in await job.next_units()] == ["a.py"]  # a candidate
        result = await job.document_path("a.py")
        assert not result.written and result.error == "connection refused"
    finally:
        await worker.aclose()
    restarted, worker = await _job(root)  # a new server process: nothing held in memory
    try:
        assert await restarted.next_units() == []  # still backing off
    finally:
        await worker.aclose()


def test_a_cli_failure_backs_the_server_off_and_max_failures_stops_the_cli(
    tmp_path: Path, capsys: Any
) -> None:
    with StandinModelServer(responder=_invalid_overviews) as server:
        root = _workspace(tmp_path / "ws", server.url, **{"a.py": A})
        _enrich_all(root)
        code, result = _docgen(root, capsys)
        assert code != 0 and "invalid overview" in result["docs"][0]["error"]
        assert asyncio.run(_server_units(root)) == []  # the server waits out the CLI's failure
        for _ in range(2):  # an explicit run tries again at once, up to max_failures (3)
            code, result = _docgen(root, capsys)
            assert code != 0 and [d["path"] for d in result["docs"]] == ["a.py"]
        assert _overview_calls(server) == ["a.py"] * 3
        code, result = _docgen(root, capsys)  # failed for good: no model call, named
        assert code != 0 and result["docs"] == [] and result["skipped"] == ["a.py"]
        assert _overview_calls(server) == ["a.py"] * 3
        (root / "a.py").write_text(A + "\n\ndef more(q):\n    return q\n")  # it changes
        _enrich_all(root)
        code, result = _docgen(root, capsys)
        assert [d["path"] for d in result["docs"]] == ["a.py"]  # tried again at once
        assert _overview_calls(server) == ["a.py"] * 4


async def _server_units(root: Path) -> list[str]:
    job, worker = await _job(root)
    try:
        return [plan.path for plan in await job.next_units()]
    finally:
        await worker.aclose()


def test_docgen_of_one_file_indexes_only_that_file(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    root = _workspace(tmp_path / "ws", standin.url)
    _enrich_all(root)
    store = open_store(root)
    c_before = store.file_row("c.py")
    store.close()
    (root / "c.py").write_text(C + "\n\ndef more(w):\n    return w\n")  # not asked for
    (root / "a.py").write_text(A + "\n\ndef extra(v):\n    return v\n")
    code, result = _docgen(root, capsys, "--file", "a.py")
    assert code == 0 and result["waiting"] == ["a.py"]  # re-indexed: extra is pending
    store = open_store(root, readonly=True)
    try:
        assert "extra" in {s.name for s in store.spans_in_file("a.py")}
        assert store.file_row("c.py") == c_before  # the rest of the index is as it was
        assert "main" in {s.name for s in store.spans_in_file("b.py")}  # callers still known
    finally:
        store.close()


def test_a_lone_missing_doc_among_fresh_ones_is_found_at_once(
    tmp_path: Path, standin: StandinModelServer, capsys: Any
) -> None:
    import asyncio

    files = {f"m{i:02}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(40)}
    root = _workspace(tmp_path / "ws", standin.url, **files)
    _enrich_all(root)
    code, first = _docgen(root, capsys)
    assert code == 0 and first["written"] == 40
    (root / ".spanlens/docs/m17.py.md").unlink()

    async def candidates() -> list[list[str]]:
        job, worker = await _job(root)
        try:
            return [[plan.path for plan in await job.next_units()] for _ in range(5)]
        finally:
            await worker.aclose()

    # Ten files are sampled per seek; the 39 fresh ones must not hide the one that is not.
    assert asyncio.run(candidates()) == [["m17.py"]] * 5
