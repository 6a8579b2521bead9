"""The embedding run's idle check at workspace scale: what is pending, with nothing to do.

Every idle cycle the server asks each embedding endpoint what it has to embed. Measured at
20,000 and 100,000 spans (half of them with a summary, every one with a vector of its current
text), in one run:

- the check as it is: :func:`~spanlens_lsp.embedding.run.plan_embeddings`, derived in SQL
  (:func:`~spanlens_lsp.store.embeddings.pending_spans`, one query, and a count);
- the check it replaced, re-implemented here: every span read, its embedded text built and
  hashed in Python, and compared with the stored text hash;
- the one check after migration 8, which confirms each stored vector's inputs (Python, once).

The stores are filled through the store's API with made-up spans whose facts have the shape
and size of real ones (parsing 100,000 spans is not what is measured).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from run import print_table
from spanlens_lsp.embedding.run import EmbedPlan, embed_planned, plan_embeddings
from spanlens_lsp.embedding.text import embedding_text, text_hash
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.embeddings import embedded_text_hashes, put_embeddings
from spanlens_lsp.store.enrichments import put_enrichment
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SPAN_SELECT, span_row, stored_json

SIZES = (20_000, 100_000)
SPANS_PER_FILE = 50
DIMS = 384
REPEAT = 5
MODEL = "bench-embedder"
WORDS = [
    "parse",
    "load",
    "save",
    "read",
    "write",
    "config",
    "settings",
    "user",
    "token",
    "cache",
    "index",
    "query",
]

T = TypeVar("T")


class _Direct:
    """A store "thread" that runs each function on the caller's thread (nothing else runs)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn: Callable[[Store], T]) -> T:
        return fn(self.store)

    async def run_first(self, fn: Callable[[Store], T]) -> T:
        return fn(self.store)


def _facts(rng: random.Random, name: str) -> str:
    words = rng.sample(WORDS, 6)
    return json.dumps(
        {
            "signature": f"def {name}(path, settings=None, *, strict=False) -> dict",
            "params": [{"name": "path"}, {"name": "settings"}, {"name": "strict"}],
            "returns": "dict",
            "docstring": f"{words[0].title()} the {words[1]} of {words[2]}.\n\n" * 3,
            "calls": [f"{w}_{n}" for n, w in enumerate(words)],
            "side_effects": ["reads files"],
            "lines": 20,
            "nesting": 2,
            "branches": 4,
            "tokens": 180,
        }
    )


def fill(store: Store, spans: int) -> list[str]:
    """Files of :data:`SPANS_PER_FILE` spans, every other one with a summary; their hashes."""
    rng = random.Random(spans)
    hashes = []
    with store.transaction():
        for file_number in range(spans // SPANS_PER_FILE):
            file_id = store.upsert_file(
                f"pkg/mod_{file_number}.py", "python", 1000, 1, f"{file_number:064x}", False
            )
            rows = []
            for i in range(SPANS_PER_FILE):
                name = "_".join(rng.sample(WORDS, 2)) + f"_{i}"
                content_hash = f"{file_number:08x}{i:024x}"
                hashes.append(content_hash)
                line = i * 5
                place = (line, 0, line + 4, 0, line, 4, line, 4 + len(name))
                rows.append((name, "function", 0, *place, content_hash, _facts(rng, name)))
            store.insert_spans(file_id, rows)
    for content_hash in hashes[::2]:
        summary = {"summary": "Reads the settings file and returns its values as a dict."}
        put_enrichment(
            store, content_hash, ENRICHMENT_VERSION, summary, model="m", tier="t", backend="b",
            host="h",
        )  # fmt: skip
    return hashes


def python_check(store: Store) -> int:
    """The idle check before this change: every span's text built and hashed in Python."""
    spans = [span_row(row, store.conn) for row in store.conn.execute(SPAN_SELECT).fetchall()]
    summaries = {}
    for content_hash, data in store.conn.execute(
        "SELECT content_hash, data FROM enrichments WHERE schema_version = ?",
        (ENRICHMENT_VERSION,),
    ).fetchall():
        summary = stored_json(store.conn, data, "enrichments.data").get("summary")
        summaries[content_hash] = summary if isinstance(summary, str) else None
    stored = embedded_text_hashes(store, MODEL)
    pending = set()
    for span in spans:
        key = text_hash(embedding_text(span, summaries.get(span.content_hash)))
        if stored.get(span.content_hash) != key:
            pending.add(span.content_hash)
    return len(pending)


def _seconds(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def measure(spans: int) -> dict[str, Any]:
    """Fill a store with ``spans`` spans, each with a vector of its text, and time the checks."""
    embedder: Any = SimpleNamespace(
        name="bench",
        model=MODEL,
        remote=False,
        batch_size=32,
        settings=SimpleNamespace(max_parallel=1),
    )
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-embed-idle-") as tmp:
        root = Path(tmp)
        store = open_store(root)
        try:
            fill(store, spans)
            reads = _Direct(store)

            def plan() -> EmbedPlan:
                return asyncio.run(plan_embeddings(root, embedder, reads))

            # Vectors of every span's current text, stored as a spanlens before migration 8
            # wrote them (no inputs beside them): the first check confirms them, once.
            vector = bytes(4 * DIMS)
            first = plan()
            rows = [(h, key, vector) for key, (_, spans_) in first.texts.items() for h in spans_]
            put_embeddings(store, MODEL, rows)
            migration_s, confirming = _seconds(plan)
            asyncio.run(embed_planned(confirming, embedder, reads, reads))

            sql_t, python_t = [], []
            for _ in range(REPEAT):
                seconds, idle = _seconds(plan)
                assert not idle.texts and not idle.confirmed, "the idle check found work"
                sql_t.append(seconds)
                seconds, pending = _seconds(lambda: python_check(store))
                assert pending == 0, "the Python check found work"
                python_t.append(seconds)
            sql_s, python_s = statistics.median(sql_t), statistics.median(python_t)
            return {
                "spans": spans,
                "idle_check_sql_ms_p50": round(sql_s * 1000, 1),
                "idle_check_python_ms_p50": round(python_s * 1000, 1),
                "ratio_python_over_sql": round(python_s / sql_s, 1),
                "first_check_after_migration_s": round(migration_s, 2),
                "confirmed_after_migration": len(confirming.confirmed),
            }
        finally:
            store.close()


def run() -> dict[str, Any]:
    """Both sizes; print a table; return the figures."""
    figures = [measure(spans) for spans in SIZES]
    rows = []
    for f in figures:
        at = f"{f['spans']:,} spans"
        rows += [
            (
                f"{at}: idle check in SQL / in Python (before), p50",
                f"{f['idle_check_sql_ms_p50']} / {f['idle_check_python_ms_p50']} ms "
                f"({f['ratio_python_over_sql']}x)",
                "one query, not a Python pass",
            ),
            (
                f"{at}: first check after migration 8 (once)",
                f"{f['first_check_after_migration_s']} s",
                "",
            ),
        ]
    print_table(rows)
    return {"repeat": REPEAT, "runs": figures}


if __name__ == "__main__":
    run()
