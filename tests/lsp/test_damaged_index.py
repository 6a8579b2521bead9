"""The server on a damaged index: set aside, rebuilt, said in one log line, and it works."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.lsp.conftest import SAMPLE, Editor, wait_for

from spanlens_lsp.cli import main
from spanlens_lsp.store.db import db_path_for


def _damage_spans(db: Path) -> None:
    conn = sqlite3.connect(db)
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = 'spans'")]
    conn.close()
    with open(db, "r+b") as handle:
        for page in pages:
            handle.seek((page - 1) * 4096)
            handle.write(b"\xa5" * 4096)


async def test_a_damaged_index_is_rebuilt_when_the_server_starts(editor: Editor) -> None:
    assert main(["index", str(editor.root)]) == 0
    db = db_path_for(editor.root)
    _damage_spans(db)
    await editor.start()
    notices = [m.message for m in editor.client.log_messages if "was damaged" in m.message]
    assert len(notices) == 1, [m.message for m in editor.client.log_messages]
    assert [p.name for p in db.parent.iterdir() if p.name.startswith("index.db.corrupt-")]
    line = SAMPLE.splitlines().index("def parse_config(text):")
    editor.open("config.py")
    text = await wait_for(lambda: editor.hover_text("config.py", line), what="a hover")
    assert "parse_config" in text
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


async def test_a_value_sqlite_cannot_decode_is_damage_too(editor: Editor) -> None:
    """Bytes that are not UTF-8 in a TEXT column pass SQLite's checks: the hover that reads
    them finds the damage, the index is rebuilt once, and the hover still answers."""
    assert main(["index", str(editor.root)]) == 0
    db = db_path_for(editor.root)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE spans SET facts = CAST(x'7bff7d' AS TEXT) WHERE name = 'parse_config'")
    conn.commit()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    await editor.start()
    line = SAMPLE.splitlines().index("def parse_config(text):")
    editor.open("config.py")
    text = await wait_for(lambda: editor.hover_text("config.py", line), what="a hover")
    assert "parse_config" in text
    notices = [m.message for m in editor.client.log_messages if "was damaged" in m.message]
    assert len(notices) == 1, [m.message for m in editor.client.log_messages]
    assert "UTF-8" not in " ".join(m.message for m in editor.client.log_messages)
