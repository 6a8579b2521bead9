"""Opening a file: facts at once, then the model's summary and pitfalls; lenses; symbols."""

from __future__ import annotations

from lsprotocol import types
from tests.lsp.conftest import SUMMARY, Editor, wait_for
from tests.support.standin import StandinModelServer

PARSE_LINE = 12  # "def parse_config(text):"
LOAD_LINE = 3  # "    def load(self, path):"


async def test_hover_shows_facts_then_enrichment(editor: Editor) -> None:
    await editor.start()
    editor.open("config.py")

    first = await wait_for(lambda: editor.hover_text("config.py", PARSE_LINE), what="a hover")
    assert first.startswith("```python\ndef parse_config(text)\n```")
    facts = first[first.index("**Parser facts**") :]
    assert "`text`" in facts  # the parameter, from the parser
    assert "calls:" in facts and "`dict`" in facts

    enriched = await wait_for(
        lambda: _containing(editor.hover_text("config.py", PARSE_LINE), "parse_config in"),
        what="the enriched hover",
    )
    assert SUMMARY in enriched
    assert "none known to the stand-in" in enriched
    assert "enriched by" in enriched

    # Innermost span wins: inside Config.load we see the method, not the class.
    method = await editor.hover_text("config.py", LOAD_LINE + 1)
    assert method.startswith("```python\ndef load(self, path)\n```"), method


async def test_lenses_resolve_from_the_store(editor: Editor) -> None:
    await editor.start()
    editor.open("config.py")
    titles = await wait_for(
        lambda: _all_fresh(editor.lens_titles("config.py")), what="fresh lens titles"
    )
    assert titles[PARSE_LINE].startswith(f"{SUMMARY} function parse_config")
    assert titles[PARSE_LINE].endswith("⚠ 1 pitfall · qwen2.5-coder:7b")  # and its model
    assert set(titles) == {0, LOAD_LINE, 7, PARSE_LINE}
    if editor.supports_refresh:
        await wait_for(lambda: editor.lens_refreshes > 0, what="a codeLens refresh")
    else:
        await wait_for(lambda: editor.last_status().get("state") == "idle", what="idle")
        assert editor.lens_refreshes == 0
    # Every client gets spanlens/enriched, naming the file.
    assert editor.enriched and all(n["uris"] == [editor.uri("config.py")] for n in editor.enriched)


async def test_pitfall_diagnostics_on_the_name(editor: Editor) -> None:
    await editor.start()
    uri = editor.open("config.py")
    diagnostics = await wait_for(
        lambda: len(editor.client.diagnostics.get(uri, [])) >= 4 and editor.client.diagnostics[uri],
        what="pitfall diagnostics",
    )
    parse = [d for d in diagnostics if d.range.start.line == PARSE_LINE]
    assert len(parse) == 1
    assert parse[0].message == "parse_config: none known to the stand-in · qwen2.5-coder:7b"
    assert all(d.source == "spanlens" for d in diagnostics)
    assert all(d.severity == types.DiagnosticSeverity.Hint for d in diagnostics)
    assert parse[0].range.start.character == 4  # the name, not the `def`


async def test_workspace_symbol_searches_names_and_summaries(editor: Editor) -> None:
    await editor.start()
    editor.open("config.py")
    result = await editor.client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="parse config")
    )
    assert result and result[0].name == "parse_config"
    await wait_for(lambda: _containing(editor.hover_text("config.py", LOAD_LINE), SUMMARY))
    by_summary = await editor.client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="enrichment Config.load")
    )
    assert by_summary and by_summary[0].name == "Config.load"


async def test_status_notification_reports_the_queue(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: len(standin.chat_requests) > 0, what="a model call")
    await wait_for(lambda: editor.last_status().get("state") == "idle", what="an idle status")
    status = editor.last_status()
    assert set(status["queue"]) == {"saved", "requested", "open", "backlog"}
    assert status["inFlight"] == 0
    assert status["backends"]["endpoints"][0]["name"] == "standin"
    assert status["lastError"] is None


async def _containing(text_coro, needle: str) -> str | None:
    text = await text_coro
    return text if needle in text else None


async def _all_fresh(titles_coro) -> dict[int, str] | None:
    titles = await titles_coro
    if titles and all(t.startswith(SUMMARY) for t in titles.values()):
        return titles
    return None
