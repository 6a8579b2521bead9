"""`spanlens search`: ranked spans with path:line, name, summary, score and why; one line on
errors; model text printed inert."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.presentation.text import has_unsafe_chars
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments
from spanlens_lsp.store.db import open_store

Cli = Callable[..., tuple[int, str, str]]
HOSTILE = "Parses\x1b[2J\x1b]0;pwned\x07 key=value \u202elines\r into\nsettings."
SOURCE = """\
class Config:
    def load(self, path):
        return open(path).read()


def parse_config(text):
    return dict(line.split("=", 1) for line in text.splitlines())
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "config.py").write_text(SOURCE)
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        [parse] = [s for s in store.spans_in_file("config.py") if s.name == "parse_config"]
        fields = ("inputs", "outputs", "side_effects", "pitfalls", "tags", "evidence")
        data: dict[str, object] = {"summary": HOSTILE, "usage_snippet": ""}
        data.update({field: [] for field in fields})
        enrichments.put_enrichment(
            store, parse.content_hash, ENRICHMENT_VERSION, data,
            model="m", tier="small", backend="b", host="127.0.0.1",
        )  # fmt: skip
    finally:
        store.close()
    return tmp_path


def test_search_prints_ranked_spans_with_where_why_and_a_clean_summary(
    project: Path, cli: Cli
) -> None:
    code, out, err = cli("search", "parse config", "--root", str(project))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("  1. config.py:6  parse_config  (function)  0.")
    assert lines[0].endswith("  name+keywords")
    assert lines[1] == "     Parses key=value lines into settings."
    assert not has_unsafe_chars(out), ascii(out)
    assert err == "spanlens: no embedding endpoint configured: keywords only\n"


def test_search_json_lists_results_with_meaning_and_note(project: Path, cli: Cli) -> None:
    code, out, _ = cli("search", "settings", "--root", str(project), "--json", "--limit", "1")
    assert code == 0
    payload = json.loads(out)
    assert payload["meaning"] is False
    assert payload["note"] == "no embedding endpoint configured: keywords only"
    [hit] = payload["results"]
    assert set(hit) == {"path", "line", "name", "kind", "summary", "score", "why"}
    # Found by a word of its summary alone.
    assert (hit["path"], hit["line"], hit["name"], hit["kind"]) == (
        "config.py",
        6,
        "parse_config",
        "function",
    )
    assert hit["why"] == ["keywords"]
    assert hit["summary"] == "Parses key=value lines into settings."


def test_search_names_what_is_wrong_in_one_line(tmp_path: Path, cli: Cli) -> None:
    code, out, err = cli("search", "anything", "--root", str(tmp_path))
    assert code == 1 and out == ""
    assert err == f"spanlens: no index at {tmp_path / '.spanlens' / 'index.db'}: run " + (
        f"`spanlens index {tmp_path}` first\n"
    )
    code, _, err = cli("search", "  ", "--root", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "the query is empty" in err
    code, _, err = cli("search", "x", "--limit", "0", "--root", str(tmp_path))
    assert code == 2 and err == "spanlens: --limit must be 1 or more, got 0\n"


def test_search_without_a_match_says_so(project: Path, cli: Cli) -> None:
    code, out, err = cli("search", "zebra", "--root", str(project))
    assert code == 0 and out == ""
    assert "spanlens: no span matches 'zebra'\n" in err
