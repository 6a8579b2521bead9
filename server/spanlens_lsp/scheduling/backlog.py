"""The idle backlog's pages: pending spans derived from the store, file by file."""

from __future__ import annotations

from collections.abc import Callable

from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.enrichments import pending_spans
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow

#: Spans fetched from the store per backlog page.
BACKLOG_PAGE = 64
#: Files asked about per store query while a backlog page is filled.
BACKLOG_FILES_PER_QUERY = 32


def backlog_page(
    store: Store,
    cursor: str,
    wanted: Callable[[SpanRow], bool],
    max_failures: int,
    now: float,
    size: int = BACKLOG_PAGE,
) -> tuple[list[SpanRow], str]:
    """About ``size`` pending spans that are ``wanted``, from the files after ``cursor`` (then
    from the start again), whole files at a time; and the cursor for the next page.

    An empty list means no file has a wanted pending span. Pages advance by file path, so
    spans that are pending but cannot be sent never bring the same page back.
    """
    paths = sorted(store.file_rows())
    ordered = [p for p in paths if p > cursor] + [p for p in paths if p <= cursor]
    found: list[SpanRow] = []
    last = cursor
    for start in range(0, len(ordered), BACKLOG_FILES_PER_QUERY):
        chunk = ordered[start : start + BACKLOG_FILES_PER_QUERY]
        spans = pending_spans(store, ENRICHMENT_VERSION, max_failures, now, paths=chunk)
        last = chunk[-1]
        found.extend(s for s in spans if wanted(s))
        if len(found) >= size:
            break
    return found, last
