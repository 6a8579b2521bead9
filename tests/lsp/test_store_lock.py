"""Another process (a CLI run) holding the index's write lock never stalls the editor: hovers
and the status answer while the engine's writes wait in the writer thread, and the model's
reply lands once the lock is released, without a second call."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Awaitable

from tests.lsp.conftest import SUMMARY, Editor, requested_names, wait_for
from tests.support.replies import valid_reply
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

from spanlens_lsp.store.db import db_path_for

PARSE_LINE = 12  # "def parse_config(text):"


async def test_a_write_lock_held_elsewhere_leaves_hovers_and_status_answering(
    editor: Editor, standin: StandinModelServer
) -> None:
    holder: list[sqlite3.Connection] = []

    def lock_then_answer(request: RecordedRequest) -> Reply:
        if not holder:  # the CLI takes the write lock while the first call runs
            conn = sqlite3.connect(db_path_for(editor.root), check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")
            holder.append(conn)
        return valid_reply(request)

    standin.responder = lock_then_answer
    await editor.start()
    try:
        editor.open("config.py")
        await wait_for(lambda: holder, what="a model call while the lock is held")
        # The replies cannot be written yet, but the server still answers the editor.
        hover = await editor.hover_text("config.py", PARSE_LINE)
        assert hover.startswith("```python\ndef parse_config(text)\n```")
        assert SUMMARY not in hover
        report = await editor.command("spanlens.statusReport")
        assert report["counts"]["spans"] == 4
        assert SUMMARY not in await editor.hover_text("config.py", PARSE_LINE)
        holder[0].rollback()  # the other process is done
        enriched = await wait_for(
            lambda: _containing(editor.hover_text("config.py", PARSE_LINE), SUMMARY),
            what="the enriched hover after the lock is released",
        )
        assert "enriched by" in enriched
    finally:
        for conn in holder:
            conn.close()
    # Every reply waited for the lock and landed: no span was asked for twice.
    asked = Counter(name for r in standin.chat_requests for name in requested_names(r))
    assert "parse_config" in asked and max(asked.values()) == 1, asked


async def _containing(text: Awaitable[str], needle: str) -> str | None:
    value = await text
    return value if needle in value else None
