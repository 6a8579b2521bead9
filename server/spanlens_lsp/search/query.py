"""A search as the editor and the command line run it: the query's embedding from the first
configured endpoint that answers in time, then :func:`~spanlens_lsp.search.hybrid.rank`.

Embedding the query is an HTTP call on a request path: it gets a short deadline, and when it
fails or runs out the search answers by names and keywords with a note, never an error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from functools import partial
from typing import Protocol, TypeVar

from spanlens_lsp.embedding.endpoints import Embedder, EmbedFailure, embedders_from_settings
from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.search.hybrid import SearchResult, rank
from spanlens_lsp.search.vectors import vector_index
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.handle import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds the query's embedding may take, all endpoints together, before keywords answer.
QUERY_EMBED_TIMEOUT = 2.0

NO_ENDPOINT_NOTE = "no embedding endpoint configured: keywords only"


class StoreRunner(Protocol):
    """Runs a function with a store on the thread that owns it (a store worker)."""

    async def run(self, fn: Callable[[Store], T]) -> T: ...


async def search_workspace(
    store: StoreRunner | Store,
    settings: Settings,
    query: str,
    limit: int,
    *,
    embedders: list[Embedder] | None = None,
    timeout: float = QUERY_EMBED_TIMEOUT,
) -> SearchResult:
    """Rank ``query`` over the index: with meaning when an embedder (from ``settings``
    unless given) embeds it within ``timeout`` seconds and the index holds vectors of its
    model; else by names and keywords, with a note saying why."""
    if not query.strip() or limit <= 0:
        return SearchResult([], False, None)
    if embedders is None:
        embedders = embedders_from_settings(settings)
    if not embedders:
        result = await _on_store(store, partial(rank, query=query, limit=limit))
        return dataclasses.replace(result, note=NO_ENDPOINT_NOTE)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    problems: list[str] = []
    for embedder in embedders:
        model = embedder.model
        stored = await _on_store(store, partial(_stored_vectors, model=model))
        if stored == 0:
            problems.append(f"no span has an embedding from {model} yet")
            continue
        left = deadline - loop.time()
        if left <= 0:
            problems.append(f"{model} ran out of time")
            break
        try:
            reply = await asyncio.wait_for(embedder.embed([query]), left)
            vector = reply.vectors[0]
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
            problems.append(f"embedding the query with {model} took over {timeout:g} s")
            continue
        except (EmbedFailure, IndexError) as exc:
            # The reason may quote the endpoint's reply: shown on one inert line.
            why = clean_text(exc, one_line=True)
            problems.append(f"embedding the query with {model} failed: {why}")
            continue
        except Exception as exc:  # an endpoint's bug must not fail the search: logged
            log.warning("search: embedding the query with %s", model, exc_info=True)
            problems.append(f"embedding the query with {model} failed: {type(exc).__name__}")
            continue
        ranked = partial(rank, query=query, query_vector=vector, model=model, limit=limit)
        return await _on_store(store, ranked)
    for problem in problems:
        log.info("search: %s", problem)
    result = await _on_store(store, partial(rank, query=query, limit=limit))
    return dataclasses.replace(result, note=f"{problems[-1]}: keywords only")


def _stored_vectors(store: Store, model: str) -> int:
    # Through the kept index: no count over the table while nothing was written.
    return len(vector_index(store, model))


async def _on_store(store: StoreRunner | Store, fn: Callable[[Store], T]) -> T:
    if isinstance(store, Store):
        return fn(store)
    return await store.run(fn)
