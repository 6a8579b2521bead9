"""A file name that is not UTF-8 does not break the server's index of the workspace."""

from __future__ import annotations

import os

from lsprotocol import types
from tests.lsp.conftest import SAMPLE, Editor, wait_for


async def test_an_undecodable_file_name_is_skipped_and_the_rest_is_served(editor: Editor) -> None:
    (editor.root / os.fsdecode(b"bad\xff.py")).write_text(SAMPLE)
    await editor.start()
    logs = [m.message for m in editor.client.log_messages]
    assert not [m for m in logs if "Traceback" in m or m.startswith("ERROR")], logs
    assert any("indexed" in m and "1 files parsed" in m for m in logs), logs
    line = SAMPLE.splitlines().index("def parse_config(text):")
    editor.open("config.py")
    text = await wait_for(lambda: editor.hover_text("config.py", line), what="a hover")
    assert "parse_config" in text
    # A watched-file event for it (the client percent-encodes the byte) changes nothing.
    editor.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[
                types.FileEvent(
                    uri=editor.root.as_uri() + "/bad%FF.py", type=types.FileChangeType.Changed
                )
            ]
        )
    )
    assert "parse_config" in await editor.hover_text("config.py", line)
