"""Edits and saves: only changed spans reach the model; typing storms do not flood it."""

from __future__ import annotations

from tests.lsp.conftest import SAMPLE, SUMMARY, Editor, requested_names, wait_for
from tests.support.standin import StandinModelServer

SAVE_LINE = 7  # "    def save(self, path, data):"
PARSE_LINE = 12


async def _all_fresh(editor: Editor, rel: str) -> dict[int, str] | None:
    titles = await editor.lens_titles(rel)
    if titles and all(t.startswith(SUMMARY) for t in titles.values()):
        return titles
    return None


async def test_saving_one_method_enriches_exactly_that_span(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: _all_fresh(editor, "config.py"), what="every lens fresh")
    before = len(standin.chat_requests)

    standin.latency = 0.8  # long enough to see the stale lens before the fresh one
    edited = SAMPLE.replace("handle.write(data)", "handle.write(data.strip())")
    editor.replace("config.py", edited, version=2)
    editor.save("config.py")

    async def save_lens(prefix: str) -> str | None:
        title = (await editor.lens_titles("config.py")).get(SAVE_LINE, "")
        return title if title.startswith(prefix) else None

    stale = await wait_for(lambda: save_lens("↻ stale"), what="the stale lens")
    assert "Config.save" in stale
    fresh = await wait_for(lambda: save_lens(SUMMARY), what="the fresh lens")
    assert "Config.save" in fresh

    calls = standin.chat_requests[before:]
    assert len(calls) == 1
    assert requested_names(calls[0]) == ["Config.save"]
    titles = await editor.lens_titles("config.py")
    assert titles[0].startswith(f"{SUMMARY} class Config")  # the class kept its enrichment
    assert editor.last_status().get("lastSave", {}).get("spans") == 1


async def test_a_storm_of_changes_does_not_flood_the_model(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: _all_fresh(editor, "config.py"), what="every lens fresh")
    before = len(standin.chat_requests)

    text = SAMPLE
    for version in range(2, 302):
        text = text.replace("splitlines())", f"splitlines()) + {version} - {version}", 1)
        text = text.replace(f" + {version} - {version}", "", 1) if version % 2 else text
        editor.replace("config.py", text, version=version)
    final = SAMPLE.replace("splitlines())", "splitlines() if line)")
    editor.replace("config.py", final, version=400)

    async def parse_fresh() -> bool:
        hover = await editor.hover_text("config.py", PARSE_LINE)
        return "parse_config in" in hover and "enriched by" in hover

    await wait_for(lambda: len(standin.chat_requests) > before, what="a model call")
    await wait_for(parse_fresh, what="the final version enriched")
    await wait_for(lambda: editor.last_status().get("state") == "idle", what="an idle queue")
    calls = standin.chat_requests[before:]
    assert 1 <= len(calls) <= 3, [requested_names(c) for c in calls]
    assert all(requested_names(c) == ["parse_config"] for c in calls)


async def test_a_file_changed_outside_the_editor(editor: Editor) -> None:
    from lsprotocol import types

    await editor.start()
    other = editor.root / "tools.py"
    other.write_text('def shout(word):\n    """Loud."""\n    return word.upper() + "!"\n')
    editor.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=other.as_uri(), type=types.FileChangeType.Created)]
        )
    )
    facts = await wait_for(lambda: editor.hover_text("tools.py", 0, 5), what="the new span")
    assert "shout" in facts
    await wait_for(
        lambda: _contains(editor.hover_text("tools.py", 0, 5), "shout in `tools.py"),
        what="the backlog to enrich it",
    )

    other.unlink()
    editor.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=other.as_uri(), type=types.FileChangeType.Deleted)]
        )
    )

    async def gone() -> bool:
        return await editor.hover_text("tools.py", 0, 5) == ""

    await wait_for(gone, what="the deleted file to leave the index")


async def _contains(coro, needle: str) -> bool:
    return needle in await coro
