"""workspace/symbol and the ``spanlens.search`` command: spans by name, keywords and meaning.

Both run on the query worker (the first search after a large index fills the search index,
which must not hold up the event loop); the query's embedding is an async HTTP call with a
short deadline (:mod:`spanlens_lsp.search.query`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from spanlens_lsp.embedding.endpoints import Embedder
from spanlens_lsp.lsp.commands import CommandError
from spanlens_lsp.lsp.edge import Edge, span_range
from spanlens_lsp.search.hybrid import MEANING
from spanlens_lsp.search.query import search_workspace
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.symbols import search_spans

if TYPE_CHECKING:
    from spanlens_lsp.store.worker import StoreWorker

SEARCH = "spanlens.search"

MAX_SYMBOLS = 100
#: Spans found only by meaning that workspace/symbol appends: the nearest few; further down,
#: a list of every span in the workspace would bury the name matches' neighbours.
MAX_MEANING_SYMBOLS = 20
#: Results of ``spanlens.search``: 20 unless the argument says, at most 200.
SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 200
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
    """workspace/symbol and ``spanlens.search``, given the query worker (None until the
    workspace opens) and the settings in force."""

    def __init__(
        self,
        edge: Edge,
        queries: Callable[[], StoreWorker | None],
        settings: Callable[[], Settings],
        embedders: Callable[[], Sequence[Embedder] | None],
    ) -> None:
        self.edge = edge
        self.queries = queries
        self.settings = settings
        #: The configured embedding endpoints, long-lived (None until the workspace opens).
        self.embedders = embedders

    async def workspace_symbols(self, query: str) -> list[types.SymbolInformation]:
        """Names first, then meaning: the spans whose name or summary matches every word of
        ``query`` (best first), then those found only by the meaning of the query."""
        queries = self.queries()
        if queries is None:
            return []
        spans = await queries.run(lambda store: search_spans(store, query, MAX_SYMBOLS))
        settings = self.settings()
        embedders = list(self.embedders() or [])
        if embedders and len(spans) < MAX_SYMBOLS and query.strip():
            result = await search_workspace(
                queries, settings, query, MAX_SYMBOLS, embedders=embedders
            )
            if result.meaning:
                seen = {span.id for span in spans}
                meaning_only = [
                    hit.span
                    for hit in result.hits
                    if hit.why == (MEANING,) and hit.span.id not in seen
                ]
                spans += meaning_only[:MAX_MEANING_SYMBOLS]
        return [self._symbol(span) for span in spans[:MAX_SYMBOLS]]

    def _symbol(self, span: SpanRow) -> types.SymbolInformation:
        container, _, _ = span.name.rpartition(".")
        return types.SymbolInformation(
            name=span.name,
            kind=_KINDS.get(span.kind, types.SymbolKind.Function),
            location=types.Location(uri=self.edge.uri_of(span.path), range=span_range(span)),
            container_name=container or span.path,
        )

    async def search(self, arg: dict[str, Any]) -> dict[str, Any]:
        """``spanlens.search`` with ``{"query": str, "limit": n?}``: ranked spans with where
        they are, their summary, score and why (protocol.md)."""
        query = arg.get("query")
        limit = arg.get("limit", SEARCH_LIMIT)
        if not isinstance(query, str) or not query.strip():
            raise CommandError('expected {"query": "<words>", "limit": n}')
        if type(limit) is not int or not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise CommandError(f"limit must be an integer from 1 to {MAX_SEARCH_LIMIT}")
        queries = self.queries()
        if queries is None:
            raise CommandError(self.edge.not_ready())
        settings = self.settings()
        result = await search_workspace(
            queries, settings, query, limit, embedders=list(self.embedders() or [])
        )
        results = []
        for hit in result.hits:
            entry = hit.as_json()
            entry["uri"] = self.edge.uri_of(hit.span.path)
            entry["range"] = _range_json(span_range(hit.span))
            results.append(entry)
        return {"results": results, "meaning": result.meaning, "note": result.note}


def _range_json(r: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }
