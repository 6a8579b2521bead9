"""Over stdio, as an editor sees it: a class's hover lists its methods' side effects and
pitfalls, each named by its method, in the method's stored words (a class's side effects are
its methods'; the class's own enrichment holds none)."""

from __future__ import annotations

from pathlib import Path

from tests.lsp.conftest import Editor
from tests.support.standin import Reply, StandinModelServer

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments
from spanlens_lsp.store.db import open_store

CLASS_LINE = 0  # "class Config:"
SAVE_EFFECT = "replaces the file at path with data"
LOAD_PITFALL = "FileNotFoundError when path does not exist"


def store_enrichments(root: Path) -> None:
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        for span in store.spans_in_file("config.py", with_facts=False):
            data = {
                "summary": f"Handles {span.name}.",
                "inputs": [],
                "outputs": [],
                "side_effects": [SAVE_EFFECT] if span.name == "Config.save" else [],
                "pitfalls": [LOAD_PITFALL] if span.name == "Config.load" else [],
                "tags": [],
                "usage_snippet": None,
                "evidence": [],
            }
            enrichments.put_enrichment(
                store, span.content_hash, ENRICHMENT_VERSION, data,
                model="m", tier="small", backend="standin", host="127.0.0.1",
            )  # fmt: skip
    finally:
        store.close()


async def test_a_class_hover_shows_its_methods_side_effects_and_pitfalls(
    editor: Editor, standin: StandinModelServer
) -> None:
    standin.responder = lambda request: Reply.error(500)
    store_enrichments(editor.root)
    await editor.start()
    editor.open("config.py")
    hover = await editor.hover_text("config.py", CLASS_LINE, 6)
    assert "Handles Config." in hover, hover
    assert f"**Side effects of its methods**\n- `save`: {SAVE_EFFECT}" in hover, hover
    assert f"**Pitfalls of its methods**\n- ⚠ `load`: {LOAD_PITFALL}" in hover, hover
    # A method's hover shows its own, not a list of the kind.
    save = await editor.hover_text("config.py", 8)
    assert "of its methods" not in save and SAVE_EFFECT in save, save
