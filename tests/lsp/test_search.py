"""spanlens.search over stdio: ranked spans with where they are, summary, score and why."""

from __future__ import annotations

from tests.lsp.conftest import SUMMARY, Editor, wait_for

PARSE_LINE = 12  # "def parse_config(text):"


async def test_search_command_ranks_names_and_keywords_without_an_embedding_endpoint(
    editor: Editor,
) -> None:
    await editor.start()
    reply = await editor.command("spanlens.search", {"query": "parse config"})
    assert reply["meaning"] is False
    assert reply["note"] == "no embedding endpoint configured: keywords only"
    first = reply["results"][0]
    assert first["name"] == "parse_config" and first["kind"] == "function"
    assert first["path"] == "config.py" and first["line"] == PARSE_LINE + 1
    assert first["uri"] == editor.uri("config.py")
    assert first["range"]["start"] == {"line": PARSE_LINE, "character": 0}
    assert first["why"] == ["name", "keywords"]
    assert first["score"] > 0

    # A word of the summary finds the span by keywords alone, with its summary.
    editor.open("config.py")
    await wait_for(
        lambda: _summary_of(editor, "Config.save"), what="Config.save's summary in search"
    )
    by_summary = await editor.command("spanlens.search", {"query": "enrichment for", "limit": 2})
    assert len(by_summary["results"]) == 2
    assert all(r["why"] == ["keywords"] for r in by_summary["results"])
    assert all(r["summary"].startswith(SUMMARY) for r in by_summary["results"])


async def _summary_of(editor: Editor, name: str) -> bool:
    reply = await editor.command("spanlens.search", {"query": name})
    return any(r["name"] == name and r["summary"] for r in reply["results"])
