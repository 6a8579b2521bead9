"""workspace/symbol: names first, then meaning (protocol.md "Workspace symbols").

The feature runs over a real index on a real store worker; the query's embedding comes from
a stand-in embedder (tests/support/embedder.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pygls.lsp.server import LanguageServer
from tests.support.embedder import BagOfWordsEmbedder, bag_vector

from spanlens_lsp.embedding.text import embedding_text, text_hash
from spanlens_lsp.lsp.edge import Edge
from spanlens_lsp.lsp.symbols import SymbolSearch
from spanlens_lsp.settings import IndexSettings, Settings
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.embeddings import put_embeddings
from spanlens_lsp.store.worker import StoreWorker
from spanlens_lsp.workspace.index import index_workspace

SOURCE = '''\
def load_config(path):
    """Read settings from disk and return them."""
    return open(path).read()


def save_config(path, text):
    """Write the settings back to disk."""
    return path


def render_page(template):
    """Turn a template into HTML."""
    return template
'''


def _names(root: Path, query: str, *, embedder: bool) -> list[str]:
    async def run() -> list[str]:
        worker = StoreWorker(root, "queries")
        try:
            search = SymbolSearch(
                Edge(LanguageServer("test", "0"), root),
                lambda: worker,
                Settings,
                lambda: [BagOfWordsEmbedder("bag")] if embedder else [],
            )
            return [s.name for s in await search.workspace_symbols(query)]
        finally:
            await worker.aclose()

    return asyncio.run(run())


def test_names_first_then_spans_found_only_by_meaning(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SOURCE)
    store = open_store(tmp_path)
    try:
        index_workspace(store, tmp_path, IndexSettings())
        rows = []
        for span in store.spans_in_file("app.py"):
            text = embedding_text(span, None)
            rows.append((span.content_hash, text_hash(text), bag_vector(text)))
        put_embeddings(store, "bag", rows)
    finally:
        store.close()
    # Without an endpoint: the keyword list alone, as before.
    assert _names(tmp_path, "load config", embedder=False) == ["load_config"]
    # With one: the keyword matches first, then what only the meaning found, nearest first.
    # render_page shares no word with the query: its vector is at a right angle, not near.
    assert _names(tmp_path, "load config", embedder=True) == ["load_config", "save_config"]
    assert _names(tmp_path, "write the settings to disk", embedder=True)[0] == "save_config"
