"""`spanlens search "QUERY"`: spans ranked by name, keywords and meaning."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

from spanlens_lsp.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    open_workspace_store,
    workspace_root,
)

if TYPE_CHECKING:
    from spanlens_lsp.search.hybrid import SearchHit, SearchResult
    from spanlens_lsp.settings import Settings
    from spanlens_lsp.store.handle import Store


def cmd_search(args: argparse.Namespace) -> int:
    """`spanlens search QUERY [--limit N] [--json] [--root ROOT]`.

    Reads the index as it is (run `spanlens index` to bring it up to date). The query is
    embedded by the first embedding endpoint configured, within 2 seconds; without one, or
    when it fails, spans are found by names and keywords, and a note on stderr says so.
    """
    from spanlens_lsp.config import load_settings

    query = " ".join(args.query.split())
    if not query:
        raise CliError(
            'the query is empty: give words to search for, e.g. "parse config"', EXIT_USAGE
        )
    if args.limit < 1:
        raise CliError(f"--limit must be 1 or more, got {args.limit}", EXIT_USAGE)
    root = workspace_root(args.root)
    settings = load_settings(root)
    store = open_workspace_store(root, readonly=True)
    try:
        result = asyncio.run(_search(store, settings, query, args.limit))
    finally:
        store.close()
    if args.json:
        payload = {
            "query": query,
            "results": [hit.as_json() for hit in result.hits],
            "meaning": result.meaning,
            "note": result.note,
        }
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    print_hits(result.hits)
    if not result.hits:
        print(f"spanlens: no span matches {query!r}", file=sys.stderr)
    if result.note:
        print(f"spanlens: {result.note}", file=sys.stderr)
    return EXIT_OK


async def _search(store: Store, settings: Settings, query: str, limit: int) -> SearchResult:
    from spanlens_lsp.embedding.endpoints import close_embedders, embedders_from_settings
    from spanlens_lsp.search.query import search_workspace

    embedders = embedders_from_settings(settings)
    try:
        return await search_workspace(store, settings, query, limit, embedders=embedders)
    finally:
        await close_embedders(embedders)


def print_hits(hits: list[SearchHit]) -> None:
    """One line per hit (``path:line  name  kind  score  why``), its summary indented below.

    Names, paths and summaries come from the repository and the model: each is printed on
    one line, without control characters or escape sequences.
    """
    from spanlens_lsp.presentation.text import clean_text

    for number, hit in enumerate(hits, start=1):
        fields = hit.as_json()
        where = clean_text(f"{fields['path']}:{fields['line']}", one_line=True)
        name = clean_text(fields["name"], one_line=True)
        why = "+".join(fields["why"])
        print(f"{number:>3}. {where}  {name}  ({fields['kind']})  {hit.score:.4f}  {why}")
        if fields["summary"]:
            print(f"     {fields['summary']}")
