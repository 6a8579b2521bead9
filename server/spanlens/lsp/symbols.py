"""workspace/symbol over span names and enrichment summaries (SQLite FTS5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types

from spanlens.lsp.edge import Edge, span_range
from spanlens.store.symbols import search_spans

if TYPE_CHECKING:
    from spanlens.store.worker import StoreWorker

MAX_SYMBOLS = 100
_KINDS = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "interface": types.SymbolKind.Interface,
    "struct": types.SymbolKind.Struct,
    "enum": types.SymbolKind.Enum,
    "trait": types.SymbolKind.Interface,
    "impl": types.SymbolKind.Class,
    "constructor": types.SymbolKind.Constructor,
}


class SymbolSearch:
    """workspace/symbol, given the query worker (None until the workspace opens)."""

    def __init__(self, edge: Edge, queries: Callable[[], StoreWorker | None]) -> None:
        self.edge = edge
        self.queries = queries

    async def workspace_symbols(self, query: str) -> list[types.SymbolInformation]:
        """Spans whose name or summary matches every word of ``query``, best first.

        Runs on the query worker thread: the first search after a large index fills the
        search index, which must not hold up the event loop.
        """
        queries = self.queries()
        if queries is None:
            return []
        spans = await queries.run(lambda store: search_spans(store, query, MAX_SYMBOLS))
        symbols = []
        for span in spans:
            container, _, _ = span.name.rpartition(".")
            symbols.append(
                types.SymbolInformation(
                    name=span.name,
                    kind=_KINDS.get(span.kind, types.SymbolKind.Function),
                    location=types.Location(
                        uri=self.edge.uri_of(span.path), range=span_range(span)
                    ),
                    container_name=container or span.path,
                )
            )
        return symbols
