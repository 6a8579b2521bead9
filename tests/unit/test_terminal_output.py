"""What the CLI prints to a terminal carries no control or bidi characters from a model, a
server or a repository file (an ESC sequence could clear the screen or retitle the window)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.presentation.text import has_unsafe_chars
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments
from spanlens_lsp.store.db import open_store

Cli = Callable[..., tuple[int, str, str]]
HOSTILE = "Adds\x00 two\x1b[2J\x1b]0;pwned\x07 \u202enumbers\r and\u2066 returns\x9b the sum."


def test_show_prints_model_text_without_control_characters(
    tmp_path: Path, write: Callable[[str, str], Path], cli: Cli
) -> None:
    source = write("calc.py", "def add(a, b):\n    return a + b\n")
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        [span] = store.spans_in_file("calc.py", with_facts=False)
        empty: list[str] = []
        data = {"summary": HOSTILE, "inputs": empty, "outputs": empty, "side_effects": empty,
                "pitfalls": [HOSTILE], "tags": empty, "usage_snippet": HOSTILE}  # fmt: skip
        data["evidence"] = empty
        enrichments.put_enrichment(
            store, span.content_hash, ENRICHMENT_VERSION, data,
            model="m\x1b[31m\u202e", tier="small", backend="b", host="127.0.0.1",
        )  # fmt: skip
    finally:
        store.close()
    code, out, err = cli("show", f"{source}:1", "--root", str(tmp_path))
    assert code == 0, err
    assert "Adds two numbers and returns the sum." in out
    assert not has_unsafe_chars(out), ascii(out)


def test_doctor_prints_a_repository_backend_name_without_control_characters(
    tmp_path: Path, write: Callable[[str, str], Path], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPANLENS_BACKENDS", raising=False)
    monkeypatch.delenv("SPANLENS_ALLOW_WORKSPACE_REMOTE", raising=False)
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    write(
        "spanlens.toml",
        '[[backends]]\nname = "x\\u001b[2J\\u202ey"\nurl = "https://far.example"\n',
    )
    _, out, err = cli("doctor", str(tmp_path))
    assert "ignored backend 'xy'" in out + err
    assert not has_unsafe_chars(out + err), ascii(out + err)
