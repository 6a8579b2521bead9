"""Spans ranked by how well their name matches a query: exact, prefix, word, substring.

Names and queries are compared as words, whatever their case style: ``parse config``,
``parse_config``, ``parseConfig`` and ``ParseConfig`` are the same name.
"""

from __future__ import annotations

import re

from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.symbols import names_containing, spans_by_ids

#: A word of an identifier: an acronym before a capitalised word, a capitalised or lower-case
#: word, an acronym, or digits (``HTTPServer2`` → http, server, 2).
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

#: Candidates read per query before ranking (shortest names first): enough for the places
#: fusion reads, few enough to stay a few milliseconds at 100,000 spans.
CANDIDATES = 200


def name_words(text: str) -> list[str]:
    """The lower-case words of an identifier or a query (``parseConfig`` → parse, config)."""
    return [word.lower() for word in _WORD.findall(text)]


def name_tier(query_words: list[str], name: str) -> int | None:
    """How a qualified span name matches: 0 exact, 1 prefix, 2 every query word starts a word
    of the name, 3 substring, 4 every word somewhere in the qualified name; None no match.

    The short name (after the last dot) and the qualified name are both tried.
    """
    if not query_words:
        return None
    query = "".join(query_words)
    short_words = name_words(name.rpartition(".")[2])
    full_words = name_words(name)
    best: int | None = None
    for words in (short_words, full_words):
        joined = "".join(words)
        if joined == query:
            tier = 0
        elif joined.startswith(query):
            tier = 1
        elif all(any(w.startswith(q) for w in words) for q in query_words):
            tier = 2
        elif query in joined:
            tier = 3
        elif all(q in joined for q in query_words):
            tier = 4
        else:
            continue
        best = tier if best is None else min(best, tier)
    return best


def name_matches(store: Store, query: str, limit: int) -> list[SpanRow]:
    """Spans whose name matches ``query``, best first (see :func:`name_match_ids`)."""
    return spans_by_ids(store, name_match_ids(store, query, limit))


def name_match_ids(store: Store, query: str, limit: int) -> list[int]:
    """Ids of the spans whose name matches ``query``, best first: by :func:`name_tier`, then
    the shorter short name, then the name. Only :data:`CANDIDATES` names are read and
    ranked, whatever the size of the index."""
    words = name_words(query)
    if not words:
        return []
    ranked: list[tuple[int, int, str, int]] = []
    for span_id, name in names_containing(store, words, CANDIDATES):
        tier = name_tier(words, name)
        if tier is not None:
            ranked.append((tier, len(name.rpartition(".")[2]), name, span_id))
    ranked.sort()
    return [entry[3] for entry in ranked[:limit]]
