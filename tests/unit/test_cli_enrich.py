"""`spanlens enrich`, `stats`, `doctor` and `show` against the stand-in model server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import RecordedRequest, Reply, StandinModelServer, closed_port_url

from spanlens_lsp.store.db import db_path_for

Cli = Callable[..., tuple[int, str, str]]

SOURCE = '''
def add(a, b=1):
    """Add two numbers."""
    return a + b


def neg(x):
    return -x


class Counter:
    def __init__(self):
        self.count = 0

    def bump(self, by=1):
        self.count += by
        return self.count
'''


@pytest.fixture
def project(write: Callable[[str, str], Path], tmp_path: Path) -> Path:
    write("calc.py", SOURCE)
    return tmp_path


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinModelServer]:
    with StandinModelServer(responder=valid_responder) as standin:
        use_backends(monkeypatch, standin.url)
        yield standin


def use_backends(monkeypatch: pytest.MonkeyPatch, *urls: str) -> None:
    backends = [{"name": f"b{i}", "tier": "small", "url": url} for i, url in enumerate(urls)]
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps(backends))
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    monkeypatch.setenv("SPANLENS_ENRICHMENT_BACKOFF_BASE", "0.005")
    monkeypatch.setenv("SPANLENS_ENRICHMENT_BACKOFF_MAX", "0.02")


def test_enrich_json_summary(project: Path, server: StandinModelServer, cli: Cli) -> None:
    code, out, err = cli("enrich", str(project), "--json")
    assert code == 0, err
    summary = json.loads(out)
    for key in ("succeeded", "failed", "pending", "calls", "tokens_in", "tokens_out", "seconds"):
        assert key in summary
    assert summary["succeeded"] == 5 and summary["failed"] == 0 and summary["pending"] == 0
    assert 1 <= summary["calls"] < 5  # batched
    assert summary["tokens_in"] > 0 and summary["tier_small"] == 5
    assert all(not isinstance(v, (dict, list)) for v in summary.values())


def test_enrich_limit_and_text_summary(project: Path, server: StandinModelServer, cli: Cli) -> None:
    code, out, _ = cli("enrich", str(project), "--limit", "2")
    assert code == 0
    assert "enriched 2" in out and "3 still pending" in out
    code, out, _ = cli("enrich", str(project), "--json")
    assert json.loads(out)["succeeded"] == 3


def test_enrich_only_the_named_files(
    project: Path, write: Callable[[str, str], Path], server: StandinModelServer, cli: Cli
) -> None:
    write("other.py", "def other(x):\n    return x\n")
    code, out, err = cli("enrich", str(project), "--only", "other.py", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["succeeded"] == 1 and summary["pending"] == 0  # calc.py is not counted
    code, _, err = cli("enrich", str(project), "--only", "missing.py")
    assert code == 2 and "no such file" in err


def test_show_includes_the_enrichment_and_its_state(
    project: Path, server: StandinModelServer, cli: Cli
) -> None:
    code, out, _ = cli("show", f"{project / 'calc.py'}:2", "--root", str(project), "--json")
    assert code == 0 and json.loads(out)["state"] == "pending"
    assert cli("enrich", str(project))[0] == 0
    code, out, _ = cli("show", f"{project / 'calc.py'}:2", "--root", str(project), "--json")
    view = json.loads(out)
    assert view["state"] == "fresh"
    assert view["enrichment"]["data"]["inputs"] == ["a: the a argument", "b: the b argument"]
    code, out, _ = cli("show", f"{project / 'calc.py'}:2", "--root", str(project))
    assert "Test enrichment for the function add" in out and "enriched by" in out


def test_no_backend_is_a_clean_refusal(
    project: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    dead = closed_port_url()
    use_backends(monkeypatch, dead)
    code, out, err = cli("enrich", str(project), "--json")
    assert code == 1 and out == ""
    assert err.startswith("spanlens: no model backend is reachable")
    assert dead in err and "spanlens.toml" in err and "SPANLENS_BACKENDS" in err
    assert not db_path_for(project).exists()  # nothing written


def test_stats_reports_per_backend(project: Path, server: StandinModelServer, cli: Cli) -> None:
    assert cli("enrich", str(project))[0] == 0
    code, out, _ = cli("stats", str(project), "--json")
    report = json.loads(out)
    assert code == 0 and report["calls"] >= 1 and report["success_rate"] == 1.0
    [row] = report["backends"]
    assert row["backend"] == "b0" and row["tier"] == "small"
    assert row["calls_saved_by_batching"] >= 1 and row["latency_p95_ms"] >= row["latency_p50_ms"]
    assert row["cost"] == 0
    code, out, _ = cli("stats", str(project))
    assert code == 0 and "calls saved by batching" in out and "p95" in out


def test_doctor_healthy_and_broken(
    project: Path, server: StandinModelServer, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    assert cli("index", str(project))[0] == 0
    code, out, _ = cli("doctor", str(project))
    assert code == 0, out
    assert "model present" in out and "no problems found" in out
    use_backends(monkeypatch, closed_port_url())
    code, out, _ = cli("doctor", str(project))
    assert code == 1 and "unreachable" in out and "ollama serve" in out
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([{"name": "x", "url": server.url,
                                                         "model": "missing:1b"}]))  # fmt: skip
    code, out, _ = cli("doctor", str(project), "--json")
    report = json.loads(out)
    assert code == 1 and any("ollama pull missing:1b" in p for p in report["problems"])


def test_enrich_refuses_when_no_backend_serves_its_model(
    project: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    with StandinModelServer(models=("other:1b",), responder=valid_responder) as standin:
        use_backends(monkeypatch, standin.url)
        code, out, err = cli("enrich", str(project), "--json")
        assert standin.chat_requests == []
    assert code == 1 and out == ""
    assert err.startswith("spanlens: no model backend can serve its model")
    assert "b0" in err and "ollama pull qwen2.5-coder:7b" in err
    assert not db_path_for(project).exists()  # nothing written


def test_enrich_refuses_when_the_api_key_is_unset(
    project: Path, server: StandinModelServer, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.delenv("SPANLENS_UNSET_KEY", raising=False)
    backends = [
        {"name": "hosted", "tier": "small", "provider": "openai", "url": server.url,
         "api_key_env": "SPANLENS_UNSET_KEY"}
    ]  # fmt: skip
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps(backends))
    code, _, err = cli("enrich", str(project))
    assert code == 1 and "SPANLENS_UNSET_KEY" in err and "export it" in err
    assert not db_path_for(project).exists()


def test_doctor_before_the_first_index_is_no_problem(
    project: Path, server: StandinModelServer, cli: Cli
) -> None:
    code, out, _ = cli("doctor", str(project))
    assert code == 0, out
    assert "not indexed yet: run `spanlens index" in out and "no problems found" in out
    code, out, _ = cli("doctor", str(project), "--json")
    report = json.loads(out)
    assert code == 0 and report["problems"] == []
    assert report["database"]["exists"] is False
    assert report["database"]["note"].startswith("not indexed yet: run `spanlens index")
    assert not db_path_for(project).exists()  # doctor creates no database


def test_a_store_that_cannot_be_written_stops_enrich_with_one_line(
    project: Path, server: StandinModelServer, cli: Cli
) -> None:
    assert cli("index", str(project))[0] == 0
    holder: list[sqlite3.Connection] = []

    def lock_then_answer(request: RecordedRequest) -> Reply:
        # Another process takes the write lock and keeps it: no write can land any more.
        if not holder:
            conn = sqlite3.connect(db_path_for(project), check_same_thread=False)
            conn.execute("BEGIN EXCLUSIVE")
            holder.append(conn)
        return valid_responder(request)

    server.responder = lock_then_answer
    try:
        code, out, err = cli("enrich", str(project), "--json")
    finally:
        for conn in holder:
            conn.close()
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("spanlens: cannot write the index") and "locked" in line
    assert len(server.chat_requests) <= 2  # the calls in flight, then nothing more
