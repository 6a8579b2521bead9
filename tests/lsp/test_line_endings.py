"""Files with CRLF, lone-CR and BOM line endings are enriched like any other in the server.

The engine checks a span against the file's current text before sending it; that text is
read the way the indexer read it (one function for both), so a CRLF file not open in the
editor keeps its classes (they were discarded as "file changed since it was indexed").
"""

from __future__ import annotations

import sqlite3

from tests.lsp.conftest import Editor, wait_for

from spanlens_lsp.store.db import db_path_for

CLASS_FILE = (
    'class Ledger:\n    """Money in, money out."""\n\n    def add(self, amount):\n'
    "        self.total = amount\n        return amount\n\n\ndef fresh():\n    return Ledger()\n"
)


def _enriched_names(editor: Editor, path: str) -> set[str]:
    db = db_path_for(editor.root)
    if not db.exists():
        return set()
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT s.name FROM spans s JOIN files f ON f.id = s.file_id "
            "JOIN enrichments e ON e.content_hash = s.content_hash WHERE f.path = ?",
            (path,),
        ).fetchall()
    except sqlite3.Error:
        return set()
    finally:
        conn.close()
    return {row[0] for row in rows}


async def test_every_span_of_crlf_lone_cr_and_bom_files_is_enriched(editor: Editor) -> None:
    files = {
        "crlf.py": CLASS_FILE.replace("\n", "\r\n").encode(),
        "lone_cr.py": CLASS_FILE.replace("\n", "\r").encode(),
        "bom.py": b"\xef\xbb\xbf" + CLASS_FILE.encode(),
    }
    for name, data in files.items():
        (editor.root / name).write_bytes(data)
    await editor.start()
    wanted = {"Ledger", "Ledger.add", "fresh"}
    for name in files:
        await wait_for(
            lambda name=name: _enriched_names(editor, name) == wanted,
            what=f"every span of {name} enriched",
        )
