"""Code lenses answer for the first file opened, before the workspace index ends, and show a
span's new state (stale) as soon as an edit changes it (protocol.md: Code lenses)."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

from lsprotocol import types
from tests.lsp.conftest import SAMPLE, SUMMARY, Editor, toml_settings, wait_for
from tests.support.standin import StandinModelServer

PARSE_LINE = 12  # "def parse_config(text):"
LENS_LINES = {0, 3, 7, PARSE_LINE}


def hold_the_walk(root: Path) -> Path:
    """A FIFO as ``sub/.spanlensignore``: the workspace walk blocks reading it until the test
    writes to it, so the walk is certainly still running while the test works."""
    sub = root / "sub"
    sub.mkdir()
    (sub / "late.py").write_text("def late(x):\n    return x\n")
    fifo = sub / ".spanlensignore"
    os.mkfifo(fifo)
    return fifo


async def release_the_walk(fifo: Path) -> None:
    """Open the FIFO for writing once the walk has it open for reading, then close it."""

    def try_open() -> bool:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader yet
                return False
            raise
        os.close(fd)
        return True

    await wait_for(try_open, what="the walk to read the ignore file")


async def lens_lines(editor: Editor, rel: str) -> set[int] | None:
    """The lines of the lenses of ``rel`` (None when the server answered null)."""
    lenses = await editor.client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=editor.uri(rel)))
    )
    return None if lenses is None else {lens.range.start.line for lens in lenses}


async def test_first_file_gets_lenses_while_the_workspace_index_runs(
    editor: Editor, standin: StandinModelServer
) -> None:
    facts_only = "backends = []\n" + toml_settings(standin.url).split("[[backends]]")[0]
    (editor.root / "spanlens.toml").write_text(facts_only)  # no enrichment refreshes
    fifo = hold_the_walk(editor.root)
    started = asyncio.ensure_future(editor.start())  # returns when the index is done
    try:
        await wait_for(lambda: editor.statuses, what="the server to start")
        editor.open("config.py")
        # Asked at once, as Neovim 0.12 does on opening: the buffer's spans, not null.
        assert await lens_lines(editor, "config.py") == LENS_LINES
        titles = await editor.lens_titles("config.py")
        assert titles[PARSE_LINE] == "facts only: no model configured"
        assert not editor.indexed(), "the workspace walk must still be running"
        if editor.supports_refresh:
            await wait_for(lambda: editor.lens_refreshes >= 1, what="a refresh after the open")
        refreshes = editor.lens_refreshes

        await release_the_walk(fifo)
        await asyncio.wait_for(started, 30)
    finally:
        if not started.done():  # a failed assertion: let the server finish and shut down
            await release_the_walk(fifo)
            await asyncio.wait_for(started, 30)
    if editor.supports_refresh:
        await wait_for(
            lambda: editor.lens_refreshes > refreshes, what="a refresh after the workspace index"
        )
    else:
        assert editor.lens_refreshes == 0  # never sent to a client that does not support it
    assert await lens_lines(editor, "sub/late.py") == {0}


async def test_codelens_waits_for_the_edited_buffer_and_shows_stale_at_once(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    uri = editor.open("config.py")
    await wait_for(lambda: _all_fresh(editor), what="every lens fresh")
    await wait_for(lambda: len(editor.client.diagnostics.get(uri, [])) == 4, what="diagnostics")
    await editor.command("spanlens.pause")  # the stale state stays until the test looks
    refreshes = editor.lens_refreshes

    edited = SAMPLE.replace("text.splitlines())", "text.strip().splitlines())")
    editor.replace("config.py", edited, version=2)
    # The very next lens request, sent before the server re-indexed the edit (debounce):
    titles = await editor.lens_titles("config.py")
    assert titles[PARSE_LINE].startswith(f"↻ stale: {SUMMARY} function parse_config")
    assert titles[3].startswith(f"{SUMMARY} method Config.load")  # untouched spans stay fresh
    remaining = await wait_for(
        lambda: len(editor.client.diagnostics[uri]) == 3 and editor.client.diagnostics[uri],
        what="the stale span's diagnostic to drop",
    )
    assert PARSE_LINE not in {d.range.start.line for d in remaining}
    if editor.supports_refresh:
        await wait_for(lambda: editor.lens_refreshes > refreshes, what="a refresh after the edit")
    else:
        assert editor.lens_refreshes == 0


async def _all_fresh(editor: Editor) -> dict[int, str] | None:
    titles = await editor.lens_titles("config.py")
    if titles and all(t.startswith(SUMMARY) for t in titles.values()):
        return titles
    return None


async def test_a_file_changed_on_disk_refreshes_its_lenses(
    editor: Editor, standin: StandinModelServer
) -> None:
    facts_only = "backends = []\n" + toml_settings(standin.url).split("[[backends]]")[0]
    (editor.root / "spanlens.toml").write_text(facts_only)  # no enrichment refreshes
    await editor.start()
    if editor.supports_refresh:  # exactly one so far: the workspace index finished
        await wait_for(lambda: editor.lens_refreshes == 1, what="the refresh after the index")
    assert await lens_lines(editor, "config.py") == LENS_LINES
    source = editor.root / "config.py"
    source.write_text(SAMPLE + "\n\ndef added(x):\n    return x\n")
    editor.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=source.as_uri(), type=types.FileChangeType.Changed)]
        )
    )

    async def has_added() -> bool:
        return 17 in (await lens_lines(editor, "config.py") or set())

    await wait_for(has_added, what="the new function's lens")
    if editor.supports_refresh:
        await wait_for(lambda: editor.lens_refreshes == 2, what="a refresh after the change")
    else:
        assert editor.lens_refreshes == 0
