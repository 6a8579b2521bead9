"""Hybrid ranking: name matches, keyword matches and nearest meanings fused into one list.

Three ranked lists of spans: names (:mod:`spanlens_lsp.search.names`), keywords (the FTS5 trigram
search over names and summaries, :func:`~spanlens_lsp.store.symbols.search_span_ids`) and meaning
(the spans whose embedding is nearest the query's, :mod:`spanlens_lsp.search.vectors`), fused by
reciprocal rank fusion (:mod:`spanlens_lsp.search.fusion`). The lists are of span ids, each
ranked and cut in SQL or numpy; only the spans of the fused top are read whole. A span
without an embedding can only be found by name or keywords, and the result says how many
spans that is; nothing is invented for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.search.fusion import DEFAULT_K, fuse
from spanlens_lsp.search.names import name_match_ids, name_words
from spanlens_lsp.search.vectors import DimensionMismatch, start_nearest_spans
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.symbols import (
    keyword_match_ids,
    search_span_ids,
    span_ids_with_hashes,
    span_summaries,
    spans_by_ids,
)

#: The lists, in the order ``why`` names them.
NAME, KEYWORDS, MEANING = "name", "keywords", "meaning"

#: Places read from each list per result wanted (at least :data:`MIN_DEPTH`): a span ranked
#: low in two lists can still beat one ranked high in one.
DEPTH_FACTOR = 3
MIN_DEPTH = 50

#: Cosine similarity a span's embedding must exceed to be found by meaning: exact search
#: always has k nearest, and a vector at a right angle to the query's (or further) has
#: nothing in common with it.
MIN_SIMILARITY = 0.0


@dataclass(slots=True, frozen=True)
class SearchHit:
    """One span found: its fused score and which lists found it."""

    span: SpanRow
    score: float
    #: A subset of ("name", "keywords", "meaning"), in that order.
    why: tuple[str, ...]
    #: The span's stored summary (model output: untrusted text), None when it has none.
    summary: str | None

    def as_json(self) -> dict[str, Any]:
        """What `spanlens search --json` and the ``spanlens.search`` command say of a hit:
        path, 1-based line, name, kind, the summary on one sanitised line, score, why."""
        span = self.span
        return {
            "path": span.path,
            "line": span.start_line + 1,
            "name": span.name,
            "kind": span.kind,
            "summary": None if self.summary is None else clean_text(self.summary, one_line=True),
            "score": round(self.score, 6),
            "why": list(self.why),
        }


@dataclass(slots=True, frozen=True)
class SearchResult:
    """The ranked hits of one query."""

    hits: list[SearchHit]
    #: Whether vectors were used (the query had an embedding and the index has some).
    meaning: bool
    #: One line about what the ranking could not use (no endpoint, spans without an
    #: embedding), None when nothing is missing.
    note: str | None


def rank(
    store: Store,
    query: str,
    *,
    query_vector: Sequence[float] | None = None,
    model: str | None = None,
    limit: int = 20,
    k: float = DEFAULT_K,
    weights: Mapping[str, float] | None = None,
) -> SearchResult:
    """The spans that best match ``query``, best first, at most ``limit``.

    Meaning is used when ``query_vector`` (the query's embedding by ``model``, L2-normalised)
    and ``model`` are both given. ``k`` and ``weights`` (by list name) tune the fusion.
    """
    if limit <= 0 or not query.strip():
        return SearchResult([], False, None)
    depth = max(limit * DEPTH_FACTOR, MIN_DEPTH)
    note: str | None = None
    # The matrix product first, on its own thread: names and keywords are read meanwhile.
    pending = None
    if query_vector is not None and model:
        try:
            pending, (total, missing) = start_nearest_spans(store, model, query_vector, depth)
        except DimensionMismatch as exc:
            note = f"{exc}: keywords only"
    meaning = pending is not None
    lists: dict[str, list[int]] = {
        NAME: name_match_ids(store, query, depth) if name_words(query) else [],
        # Spans with any word of a sentence are a useful guess without meaning and noise
        # beside it (bench_retrieval: 0.00 -> 0.45 recall@10 alone, but 0.87 -> 0.82 with
        # MiniLM).
        KEYWORDS: _keyword_ids(store, query, depth, any_word=not meaning),
    }
    if pending is not None:
        try:
            nearest = pending.result()
        except DimensionMismatch as exc:  # the vectors changed length meanwhile
            meaning = False
            note = f"{exc}: keywords only"
        else:
            close = [h for h, similarity in nearest if similarity > MIN_SIMILARITY]
            lists[MEANING] = _ids_in_order(store, close)
            note = missing_note(total, missing)
    top = fuse(lists, k=k, weights=weights)[:limit]
    # Read in one statement after the lists': a span deleted in between is left out.
    spans = {span.id: span for span in spans_by_ids(store, [f.item for f in top])}
    summaries = span_summaries(store, list(spans))
    hits = [
        SearchHit(spans[f.item], f.score, f.sources, summaries.get(f.item))
        for f in top
        if f.item in spans
    ]
    return SearchResult(hits, meaning, note)


def _keyword_ids(store: Store, query: str, depth: int, *, any_word: bool) -> list[int]:
    """Spans with every word of the query first, then (``any_word``) those with any of its
    words, ``depth`` at most."""
    every = search_span_ids(store, query, depth)
    if not any_word or len(every) >= depth:  # no place left for the any-word matches
        return every
    seen = set(every)
    more = [i for i in keyword_match_ids(store, query, depth) if i not in seen]
    return every + more[: depth - len(every)]


def _ids_in_order(store: Store, hashes: list[str]) -> list[int]:
    """Ids of the current spans with ``hashes``, in that order (a hash no span has any more
    is skipped; one that two spans share gives both, by id)."""
    by_hash: dict[str, list[int]] = {}
    for content_hash, span_id in span_ids_with_hashes(store, hashes):
        by_hash.setdefault(content_hash, []).append(span_id)
    return [span_id for h in hashes for span_id in sorted(by_hash.get(h, []))]


def missing_note(total: int, missing: int) -> str | None:
    """ "N of M spans have no embedding yet: found by keywords alone", or None when every
    span has one."""
    if missing <= 0:
        return None
    return f"{missing:,} of {total:,} spans have no embedding yet: found by keywords alone"
