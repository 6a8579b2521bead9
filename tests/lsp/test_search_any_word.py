"""spanlens.search over stdio, protocol.md's keyword rule: a span whose name or summary holds
only some words of the query is listed by keywords without meaning, and never beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.lsp.conftest import SAMPLE, SUMMARY, Editor, toml_settings, wait_for
from tests.support.replies import valid_reply
from tests.support.standin import StandinModelServer

#: One word of every summary ("Test enrichment for the ...") and one of none, nor of any name.
QUERY = "enrichment zeppelin"


async def _search(editor: Editor, query: str) -> dict[str, Any]:
    reply: dict[str, Any] = await editor.command("spanlens.search", {"query": query})
    return reply


async def _summarised(editor: Editor) -> bool:
    reply = await _search(editor, "parse_config")
    return any(r["name"] == "parse_config" and r["summary"] for r in reply["results"])


async def test_without_meaning_a_span_with_one_word_of_the_query_is_found(
    editor: Editor,
) -> None:
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: _summarised(editor), what="parse_config's summary in search")
    reply = await _search(editor, QUERY)
    assert reply["meaning"] is False
    assert reply["results"], "no span found by one word of the query"
    assert all(r["why"] == ["keywords"] for r in reply["results"])
    assert all(r["summary"].startswith(SUMMARY) for r in reply["results"])


async def test_beside_meaning_keywords_list_only_spans_with_every_word(tmp_path: Path) -> None:
    with StandinModelServer(
        models=("qwen2.5-coder:7b", "nomic-embed-text"), responder=valid_reply
    ) as server:
        root = tmp_path / "ws"
        root.mkdir()
        (root / "config.py").write_text(SAMPLE)
        embeddings = f'\n[[embeddings]]\nname = "vec"\nurl = "{server.url}"\n'
        (root / "spanlens.toml").write_text(
            toml_settings(server.url) + embeddings + 'model = "nomic-embed-text"\n'
        )
        editor = Editor(profile="neovim", root=root)
        try:
            await editor.start()
            editor.open("config.py")
            await wait_for(lambda: _summarised(editor), what="parse_config's summary in search")

            async def embedded() -> bool:
                return (await _search(editor, "parse_config"))["note"] is None

            await wait_for(embedded, 30, "every span embedded (no note beside the results)")
            reply = await _search(editor, QUERY)
            assert reply["meaning"] is True
            # The same spans may come back by meaning, never by one word of the query.
            assert all("keywords" not in r["why"] for r in reply["results"]), reply["results"]
            # A query whose every word a summary holds is still matched by keywords.
            every = await _search(editor, "enrichment for")
            assert any("keywords" in r["why"] for r in every["results"])
        finally:
            await editor.stop()
