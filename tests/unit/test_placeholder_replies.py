"""Placeholder replies from a model are invalid output: retried or escalated, never stored."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import parse_request, valid_enrichment, valid_reply
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

Cli = Callable[..., tuple[int, str, str]]

PLACEHOLDERS: list[dict[str, Any]] = [
    {"summary": "TODO"},
    {"summary": "..."},
    {"summary": "\x00"},
    {"summary": "N/A"},
    {"summary": "Lorem ipsum dolor sit amet."},
    {"pitfalls": ["..."]},
    {"side_effects": ["TBD"]},
    {"outputs": ["…"]},
]


@pytest.fixture
def project(write: Callable[[str, str], Path], tmp_path: Path) -> Path:
    write("calc.py", "def add(a, b):\n    return a + b\n")
    return tmp_path


def stored(root: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(root / ".spanlens" / "index.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT data FROM enrichments")]


@pytest.mark.parametrize("change", PLACEHOLDERS, ids=[json.dumps(p) for p in PLACEHOLDERS])
def test_a_placeholder_reply_is_retried_and_never_stored(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any]
) -> None:
    def placeholder_then_valid(request: RecordedRequest) -> Reply:
        parsed = parse_request(request)
        if parsed is None or len(server.chat_requests) > 1:
            return valid_reply(request)
        return Reply.json({**valid_enrichment(parsed["spans"][0]), **change})

    with StandinModelServer(responder=placeholder_then_valid) as server:
        backends = [{"name": "local", "url": server.url}]
        monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps(backends))
        monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
        monkeypatch.setenv("SPANLENS_ENRICHMENT_BACKOFF_BASE", "0.005")
        code, _, err = cli("enrich", str(project))
        calls = len(server.chat_requests)
    assert code == 0, err
    assert calls == 2  # the placeholder was invalid output, so the span was asked again
    [data] = stored(project)
    assert data["summary"].startswith("Test enrichment for the function add")
    text = json.dumps(data)
    for value in change.values():
        assert json.dumps(value).strip("[]") not in text


def test_a_model_that_only_answers_placeholders_stores_nothing(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_todo(request: RecordedRequest) -> Reply:
        parsed = parse_request(request)
        if parsed is None:
            return valid_reply(request)
        return Reply.json({**valid_enrichment(parsed["spans"][0]), "summary": "TODO"})

    with StandinModelServer(responder=always_todo) as server:
        monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([{"name": "l", "url": server.url}]))
        monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
        monkeypatch.setenv("SPANLENS_ENRICHMENT_BACKOFF_BASE", "0.005")
        monkeypatch.setenv("SPANLENS_ENRICHMENT_MAX_FAILURES", "1")
        cli("enrich", str(project))
        assert server.chat_requests
    assert stored(project) == []
