"""`spanlens stats`: what batching saved, computed from the attempts the engine really wrote.

Each test runs `spanlens enrich` against the stand-in model server (batching on, as by
default), then reads both the attempts table and `spanlens stats`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.replies import batch_responder, parse_request, valid_enrichment, valid_reply
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.store.db import open_store

Cli = Callable[..., tuple[int, str, str]]

SOURCE = '''
def add(a, b=1):
    """Add two numbers."""
    return a + b


def neg(x):
    return -x


def greet(name, punctuation="!"):
    message = "hello " + name
    return message + punctuation


def ping():
    return "pong"
'''


@pytest.fixture
def project(write: Callable[[str, str], Path], tmp_path: Path) -> Path:
    write("calc.py", SOURCE)
    return tmp_path


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinModelServer]:
    with StandinModelServer() as standin:
        backends = [{"name": "b0", "tier": "small", "url": standin.url}]
        monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps(backends))
        monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
        monkeypatch.setenv("SPANLENS_ENRICHMENT_BACKOFF_BASE", "0.005")
        monkeypatch.setenv("SPANLENS_ENRICHMENT_BACKOFF_MAX", "0.02")
        yield standin


def batch_rows(root: Path) -> list[tuple[int, int]]:
    """(batch_size, enriched) of every batched call the engine recorded."""
    store = open_store(root)
    try:
        rows = store.conn.execute(
            "SELECT batch_size, enriched FROM attempts WHERE batch_size > 1 ORDER BY id"
        ).fetchall()
    finally:
        store.close()
    return [(int(size), int(enriched)) for size, enriched in rows]


def stats(cli: Cli, root: Path) -> dict:
    code, out, err = cli("stats", str(root), "--json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_failed_batches_save_nothing_and_are_counted(
    project: Path, server: StandinModelServer, cli: Cli
) -> None:
    def prose_for_batches(request: RecordedRequest) -> Reply:
        parsed = parse_request(request)
        if parsed is not None and parsed.get("mode") == "batch":
            return Reply.content("Sure! These functions add, negate, greet and ping.")
        return valid_reply(request)

    server.responder = prose_for_batches
    code, out, err = cli("enrich", str(project), "--json")
    assert code == 0 and json.loads(out)["succeeded"] == 4, err
    rows = batch_rows(project)
    assert rows and all(enriched == 0 for _, enriched in rows)  # every batch failed
    report = stats(cli, project)
    [row] = report["backends"]
    assert report["calls_saved_by_batching"] == 0 and row["calls_saved_by_batching"] == 0
    assert row["failed_batch_calls"] == report["failed_batch_calls"] == len(rows)
    code, out, _ = cli("stats", str(project))
    assert code == 0
    assert "0 calls saved by batching" in out and f"{len(rows)} batched calls failed" in out


def test_a_partly_valid_batch_saves_one_call_per_extra_span_it_stored(
    project: Path, server: StandinModelServer, cli: Cli
) -> None:
    store = open_store(project)
    try:
        index_files(project, store, workers=1)
        ids = sorted(s.id for s in store.spans_in_file("calc.py"))
    finally:
        store.close()
    # The batch of four stores two; the dropped and the corrupt span go one by one.
    server.responder = batch_responder(drop={ids[1]}, corrupt={ids[2]})
    code, out, err = cli("enrich", str(project), "--json")
    assert code == 0 and json.loads(out)["succeeded"] == 4, err
    assert batch_rows(project) == [(4, 2)]
    report = stats(cli, project)
    # Two spans from one call instead of two calls: one call saved, none failed.
    assert report["calls_saved_by_batching"] == 1 and report["failed_batch_calls"] == 0
    assert report["calls"] == 3


def test_saved_calls_count_only_batches_that_stored_something(
    project: Path, server: StandinModelServer, cli: Cli
) -> None:
    failed_once: list[bool] = []

    def first_batch_fails(request: RecordedRequest) -> Reply:
        parsed = parse_request(request)
        if parsed is not None and parsed.get("mode") == "batch" and not failed_once:
            failed_once.append(True)
            return Reply.error(500, {"error": "overloaded"})
        return valid_reply(request)

    server.responder = first_batch_fails
    code, out, err = cli("enrich", str(project), "--json")
    assert code == 0 and json.loads(out)["succeeded"] == 4, err
    rows = batch_rows(project)
    failed = sum(1 for _, enriched in rows if enriched == 0)
    assert failed == 1 and any(enriched > 1 for _, enriched in rows)
    report = stats(cli, project)
    expected = sum(enriched - 1 for _, enriched in rows if enriched)
    assert report["calls_saved_by_batching"] == expected > 0
    assert report["failed_batch_calls"] == 1


def test_a_partly_valid_batch_says_which_rule_rejected_which_span(
    project: Path, server: StandinModelServer, cli: Cli
) -> None:
    """Issue 16: a batch that stored some spans and rejected others names, per rejected span,
    the span and the rule, in the attempts table and in `spanlens stats`."""

    def two_wrong(request: RecordedRequest) -> Reply:
        parsed = parse_request(request)
        if parsed is None or parsed.get("mode") != "batch":
            return valid_reply(request)
        entries = []
        for span in parsed["spans"]:
            entry = {"span_id": span["span_id"], **valid_enrichment(span)}
            if span["name"] == "neg":
                entry["side_effects"] = ["Mutation of arguments"]
            if span["name"] == "greet":
                entry["inputs"] = ["name: who to greet"]
            entries.append(entry)
        return Reply.json({"enrichments": entries})

    server.responder = two_wrong
    code, out, err = cli("enrich", str(project), "--json")
    assert code == 0 and json.loads(out)["succeeded"] == 4, err
    store = open_store(project)
    try:
        [(outcome, failure, detail)] = store.conn.execute(
            "SELECT outcome, failure_type, detail FROM attempts WHERE batch_size > 1"
        ).fetchall()
    finally:
        store.close()
    assert (outcome, failure) == ("partial", "invalid output")
    assert detail.splitlines() == [
        "neg: side_effects claims 'Mutation of arguments', but the code calls nothing and "
        "assigns to no attribute or item",
        "greet: inputs leave out parameters: punctuation",
    ]
    assert stats(cli, project)["rejections"] == detail.splitlines()
    code, out, _ = cli("stats", str(project))
    assert code == 0
    assert "recent rejections (span: rule):\n  neg: side_effects claims" in out
    assert "  greet: inputs leave out parameters: punctuation" in out
