"""`spanlens embed`, and `spanlens enrich` embedding after it enriches, against stand-ins."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer, closed_port_url

Cli = Callable[..., tuple[int, str, str]]

MODEL = "nomic-embed-text"
SOURCE = '''def add(a, b=1):
    """Add two numbers."""
    return a + b


def neg(x):
    return -x
'''


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinModelServer]:
    with StandinModelServer(models=("qwen2.5-coder:7b", MODEL), responder=valid_responder) as s:
        embeddings = [{"name": "vec", "url": s.url, "model": MODEL}]
        monkeypatch.setenv("SPANLENS_EMBEDDINGS", json.dumps(embeddings))
        monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
        yield s


def test_embed_without_an_endpoint_is_one_clear_line(
    tmp_path: Path, write: Callable, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPANLENS_EMBEDDINGS", raising=False)
    write("a.py", SOURCE)
    code, out, err = cli("embed", str(tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("spanlens: no embedding endpoint, so search uses keywords only; run ")
    assert "`spanlens model install all-minilm-l6-v2`" in err
    assert len(err.strip().splitlines()) == 1
    assert cli("index", str(tmp_path))[0] == 0
    code, out, _ = cli("status", str(tmp_path))
    assert "embeddings: none; search by meaning: run `spanlens model install all-minilm" in out
    assert json.loads(cli("status", str(tmp_path), "--json")[1])["embeddings"] is None


def test_embed_then_again_sends_nothing_new(
    tmp_path: Path, write: Callable, cli: Cli, server: StandinModelServer
) -> None:
    write("a.py", SOURCE)
    assert cli("index", str(tmp_path))[0] == 0
    assert (
        f"embeddings ({MODEL}, configured): 0 embedded, 2 pending"
        in cli("status", str(tmp_path))[1]
    )
    code, out, err = cli("embed", str(tmp_path), "--json")
    assert code == 0, err
    (run,) = json.loads(out)["embeddings"]
    assert (run["model"], run["embedded"], run["calls"], run["failed"]) == (MODEL, 2, 1, 0)
    code, out, _ = cli("embed", str(tmp_path))
    assert code == 0
    assert f"embeddings (vec, {MODEL}): 0 embedded in 0 calls" in out and "2 up to date" in out
    assert len(server.embed_requests) == 1
    code, out, _ = cli("status", str(tmp_path))
    assert f"embeddings ({MODEL}, configured): 2 embedded, 0 pending" in out
    assert json.loads(cli("status", str(tmp_path), "--json")[1])["embeddings"] == {
        "model": MODEL,
        "source": "configured",
        "embedded": 2,
        "pending": 0,
        "engine": None,
    }


def test_enrich_embeds_the_new_summaries_and_stats_counts_the_calls(
    tmp_path: Path,
    write: Callable,
    cli: Cli,
    server: StandinModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write("a.py", SOURCE)
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([{"name": "b", "url": server.url}]))
    cli("embed", str(tmp_path))  # before any summary
    server.reset()
    code, out, err = cli("enrich", str(tmp_path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["succeeded"] == 2 and summary["embed_embedded"] == 2
    assert all(not isinstance(v, (dict, list)) for v in summary.values())
    # The texts now carry the validated summaries the run just stored.
    summaries = {t.splitlines()[1] for t in server.embedded_texts}
    assert len(summaries) == 2 and not any(s.startswith("def ") for s in summaries)
    code, out, _ = cli("stats", str(tmp_path), "--json")
    stats = json.loads(out)
    (embed,) = [row for row in stats["backends"] if row["tier"] == "embed"]
    assert (embed["backend"], embed["model"], embed["succeeded"]) == ("vec", MODEL, 2)
    # A call that embeds several spans is no batched enrichment that stored nothing.
    assert embed["failed_batch_calls"] == 0 and stats["batching_off"] == []


def test_doctor_checks_each_embedding_endpoint_with_one_text(
    tmp_path: Path,
    write: Callable,
    cli: Cli,
    server: StandinModelServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write("a.py", SOURCE)
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([{"name": "b", "url": server.url}]))
    _, out, _ = cli("doctor", str(tmp_path), "--json")
    (check,) = json.loads(out)["embeddings"]
    assert (check["reachable"], check["model_present"], check["dims"]) == (True, True, 8)
    assert not any("embedding" in p for p in json.loads(out)["problems"])
    assert len(server.embed_requests) == 1

    broken = [
        {"name": "gone", "url": closed_port_url(), "model": MODEL},
        {"name": "nomodel", "url": server.url, "model": "not-pulled"},
    ]
    monkeypatch.setenv("SPANLENS_EMBEDDINGS", json.dumps(broken))
    code, out, _ = cli("doctor", str(tmp_path))
    assert code == 1
    assert (
        "embedding endpoint gone (ollama) at http://127.0.0.1:" in out and "is unreachable" in out
    )
    assert f"embedding endpoint nomodel ({server.url}) does not serve model not-pulled" in out
    assert "ollama pull not-pulled" in out
