"""The span state rule is written once in SQL and once in Python: both agree on every state."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from spanlens.indexing.indexer import index_workspace
from spanlens.presentation.state import span_view
from spanlens.states import ENRICHMENT_VERSION, SpanState, span_state
from spanlens.store import enrichments as queries
from spanlens.store.db import open_store

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
    index_workspace(tmp_path, store, workers=1)
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
    counts = store.state_counts(ENRICHMENT_VERSION, 3)
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
