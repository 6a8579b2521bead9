"""`spanlens search` with a real embedding endpoint (the stand-in on 127.0.0.1): the query is
embedded and meaning ranks; a failing endpoint leaves keywords and a note, never an error."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.standin import Reply, StandinModelServer

Cli = Callable[..., tuple[int, str, str]]
SOURCE = "def helper(y):\n    return y + 1\n\n\ndef main(x):\n    return helper(x)\n"


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer(models=("nomic-embed-text",)) as running:
        yield running


def _workspace(root: Path, url: str) -> None:
    (root / "a.py").write_text(SOURCE)
    (root / "spanlens.toml").write_text(
        f'[gpu]\nenabled = false\n\n[enrichment]\nretries = 0\n\n[[embeddings]]\nname = "vec"\n'
        f'url = "{url}"\nmodel = "nomic-embed-text"\ntimeout = 5.0\n'
    )


def test_search_embeds_the_query_and_ranks_by_meaning(
    tmp_path: Path, cli: Cli, server: StandinModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPANLENS_BACKENDS", raising=False)
    _workspace(tmp_path, server.url)
    assert cli("index", str(tmp_path))[0] == 0
    code, out, err = cli("search", "helper", "--root", str(tmp_path), "--json")
    note = json.loads(out)["note"]
    assert note == "no span has an embedding from nomic-embed-text yet: keywords only"
    assert cli("embed", str(tmp_path))[0] == 0, err
    sent = len(server.embedded_texts)
    code, out, err = cli("search", "helper", "--root", str(tmp_path), "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["meaning"] is True and payload["note"] is None
    assert server.embedded_texts[sent:] == ["helper"]
    assert payload["results"][0]["name"] == "helper"

    server.script_embeddings(Reply.error(500))
    code, out, err = cli("search", "helper", "--root", str(tmp_path), "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["meaning"] is False
    assert payload["note"].startswith("embedding the query with nomic-embed-text failed: ")
    assert payload["note"].endswith(": keywords only")
    assert payload["results"][0]["name"] == "helper"
