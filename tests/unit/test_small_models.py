"""A tier whose model keeps failing batches falls back to single spans by itself, and
`spanlens stats` says so; validation is the same for every model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.replies import parse_request, valid_reply
from tests.support.standin import RecordedRequest, Reply, StandinModelServer
from tests.unit.test_enrichment_engine import backend, make_settings, workspace

from spanlens_lsp.app import open_engine
from spanlens_lsp.cli import main
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries


def _pair(name: str) -> str:
    return f"def {name}_a(x):\n    return x + 1\n\n\ndef {name}_b(y):\n    return y * 2\n"


def _batches_fail(request: RecordedRequest) -> Reply:
    parsed = parse_request(request)
    if parsed is not None and parsed.get("mode") == "batch":
        return Reply.json({"enrichments": []})  # a small model that cannot do several at once
    return valid_reply(request)


async def _enrich_file(root: Path, settings: Any, path: str) -> None:
    engine = open_engine(root, settings)
    try:
        pending = queries.pending_spans(engine.store, ENRICHMENT_VERSION, 9, 1e12, paths=[path])
        outcomes = await engine.enrich(pending)
    finally:
        await engine.aclose()
    assert [o.status for o in outcomes] == ["enriched", "enriched"]


async def test_a_tier_that_keeps_failing_batches_goes_single_and_stats_says_so(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    files = {f"m{i}.py": _pair(f"f{i}") for i in range(5)}
    workspace(tmp_path, files)
    with StandinModelServer(responder=_batches_fail) as server:
        settings = make_settings(backend(server.url), batch=True)
        for path in files:
            await _enrich_file(tmp_path, settings, path)
        modes = [parse_request(r)["mode"] for r in server.chat_requests]  # type: ignore[index]
    # Two files' batches fail (each asked twice, then its spans land one a call); the
    # last three files go single from the start.
    assert modes.count("batch") == 4
    assert modes[-6:] == ["single"] * 6
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    assert main(["stats", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "batching off for tier small (model qwen2.5-coder:7b)" in out
    assert main(["stats", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["batching_off"] == [{"tier": "small", "model": "qwen2.5-coder:7b"}]
