"""The span state rule is written once in SQL and once in Python: both agree on every state,
and every question "does this span still need a model" asks the one SQL rule."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from spanlens_lsp.enrichment.claims import settled_elsewhere
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.presentation.state import span_view
from spanlens_lsp.scheduling.enrich_jobs import SpanWork
from spanlens_lsp.scheduling.jobs import Backoff
from spanlens_lsp.scheduling.queue import Priority
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION, SpanState, span_state
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.worker import StoreWorker

DATA = {"summary": "Adds one."}


def _enrich(store, content_hash: str, version: str = ENRICHMENT_VERSION) -> None:
    queries.put_enrichment(
        store, content_hash, version, DATA, model="m", tier="small", backend="b", host="h"
    )


def test_sql_counts_and_python_views_agree_on_every_state(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(5))
    )
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    spans = {s.name: s for s in store.spans_in_file("m.py")}
    _enrich(store, spans["f0"].content_hash)  # fresh
    _enrich(store, spans["f1"].content_hash, version="old")  # stale: an earlier version
    for _ in range(3):  # failed for good at max_failures = 3
        queries.record_failure(store, spans["f2"].content_hash, "boom", 0.0, 1.0, 1.0)
    queries.record_failure(store, spans["f3"].content_hash, "boom", 0.0, 1.0, 1.0)  # pending
    views = {name: span_view(store, s, max_failures=3).state for name, s in spans.items()}
    assert views == {
        "f0": SpanState.FRESH,
        "f1": SpanState.STALE,
        "f2": SpanState.FAILED,
        "f3": SpanState.PENDING,
        "f4": SpanState.PENDING,
    }
    counts = queries.state_counts(store, ENRICHMENT_VERSION, 3)
    assert counts == {str(k): v for k, v in Counter(views.values()).items()} | {
        "fresh": 1,
        "stale": 1,
        "failed": 1,
        "pending": 2,
    }


def test_the_python_rule_orders_fresh_above_failed_above_stale() -> None:
    assert span_state(fresh=True, failures=9, max_failures=3, has_previous=True) == "fresh"
    assert span_state(fresh=False, failures=3, max_failures=3, has_previous=True) == "failed"
    assert span_state(fresh=False, failures=2, max_failures=3, has_previous=True) == "stale"
    assert span_state(fresh=False, failures=0, max_failures=3, has_previous=False) == "pending"
    assert (
        span_state(
            fresh=False, failures=3, max_failures=3, has_previous=True, models_configured=False
        )
        == "facts_only"
    )


class _Engine:
    """Enough of an engine for the scheduler to queue and take spans (none is called)."""

    def capacity(self) -> int:
        return 8


async def test_the_pending_listing_and_the_scheduler_ask_one_rule(tmp_path: Path) -> None:
    """Whether a span still needs a model is one rule: the pending listing (backlog, CLI
    runs) and the scheduler's check of each span it takes from its queue give the same
    answer for a fresh, a stale, a never-tried, a retry-due, a waiting and a failed span."""
    (tmp_path / "m.py").write_text(
        "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(6))
    )
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    spans = {s.name: s for s in store.spans_in_file("m.py")}
    settings = Settings()
    limit = settings.enrichment.max_failures
    now = time.time()
    _enrich(store, spans["f0"].content_hash)  # fresh: done
    _enrich(store, spans["f1"].content_hash, version="old")  # stale: needs the new version
    queries.record_failure(store, spans["f2"].content_hash, "boom", now - 7200, 60, 60)  # due
    queries.record_failure(store, spans["f3"].content_hash, "boom", now, 3600, 3600)  # waits
    for _ in range(limit):  # failed for good, though its retry time has passed
        queries.record_failure(store, spans["f4"].content_hash, "boom", now - 7200, 1, 1)
    # f5 was never tried.
    needs_model = {"f1", "f2", "f5"}

    listed = queries.pending_spans(store, ENRICHMENT_VERSION, limit, time.time())
    assert {s.name for s in listed} == needs_model

    worker = StoreWorker(tmp_path, "test")
    work = SpanWork(store, worker, _Engine(), settings, Backoff(), lambda: None)

    def taken(priority: Priority, *, explicit: bool) -> set[str]:
        work.in_flight.clear()
        work.push([s.id for s in spans.values()], priority, front=False, explicit=explicit)
        names: set[str] = set()
        while (unit := work.take(priority, urgent_only=False)) is not None:
            names.update(s.name for s in unit)
        return names

    try:
        assert taken(Priority.SAVED, explicit=False) == needs_model
        # Asked for by a command, a span goes unless it is fresh: failures do not hold it.
        assert taken(Priority.REQUESTED, explicit=True) == set(spans) - {"f0"}
    finally:
        await worker.aclose()
        store.close()


def test_a_span_another_process_held_is_done_by_the_pending_rule(tmp_path: Path) -> None:
    """When another process lets go of a span, the engine decides whether it is done with
    the store's pending rule: it is open exactly when the pending listing, retry times
    aside, still lists it at the hash it had. A span waiting for its retry time is open
    (it only waits); an enriched, failed, changed or deleted one is done."""
    (tmp_path / "m.py").write_text(
        "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(7))
    )
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    spans = {s.name: s for s in store.spans_in_file("m.py")}
    limit = Settings().enrichment.max_failures
    now = time.time()
    _enrich(store, spans["f0"].content_hash)  # fresh: done
    _enrich(store, spans["f1"].content_hash, version="old")  # stale: open
    queries.record_failure(store, spans["f2"].content_hash, "boom", now - 7200, 60, 60)  # due
    queries.record_failure(store, spans["f3"].content_hash, "boom", now, 3600, 3600)  # waits
    for _ in range(limit):  # failed for good
        queries.record_failure(store, spans["f4"].content_hash, "boom", now - 7200, 1, 1)
    held = dict(spans)
    held["f5"] = replace(spans["f5"], content_hash="0" * 64)  # changed since it was claimed
    held["gone"] = replace(spans["f6"], id=10**6)  # deleted since it was claimed
    by_id = {span.id: name for name, span in held.items()}
    try:
        finished, free = settled_elsewhere(
            store, list(held.values()), ENRICHMENT_VERSION, limit, "me"
        )
        listed = queries.pending_spans(store, ENRICHMENT_VERSION, limit, math.inf)
        still_pending = {
            name
            for name, span in held.items()
            if any(s.id == span.id and s.content_hash == span.content_hash for s in listed)
        }
        assert {by_id[i] for i in free} == still_pending == {"f1", "f2", "f3", "f6"}
        assert {by_id[i] for i in finished} == set(held) - still_pending
    finally:
        store.close()
