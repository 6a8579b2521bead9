"""Search by meaning at workspace scale: exact nearest neighbours over 20,000 and 100,000
span vectors (384 and 896 dimensions), and the whole hybrid ranking around them.

The stores are filled through the store's own API with random spans and random unit vectors
(parsing 100,000 spans is not what is measured here). Reported per size and dimension: the
query after its embedding (the matrix product and top-k alone, and the whole
:func:`~spanlens_lsp.search.hybrid.rank`: names, keywords, meaning, fusion, summaries) p50/p99,
the first load of the matrix, a refresh with nothing new, a refresh after 100 new vectors,
index growth (MB of SQLite added by the vectors) and RSS. Target (issue 19): p99 <= 50 ms at
100,000 spans for the query after its embedding.
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from run import print_table
from spanlens_lsp.search.hybrid import rank
from spanlens_lsp.search.vectors import nearest_spans, vector_index
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.embeddings import put_embeddings
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.symbols import sync_search_index

SIZES = (20_000, 100_000)
DIMS = (384, 896)
QUERIES = 200
SPANS_PER_FILE = 50
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
    "render",
    "build",
    "fetch",
    "update",
    "delete",
    "merge",
    "split",
    "format",
    "check",
    "validate",
    "open",
    "close",
    "stream",
]


def _rss_mb() -> float:
    """Resident memory now (Linux /proc), else the peak so far."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _unit_vectors(rng: np.random.Generator, count: int, dims: int) -> np.ndarray:
    vectors = rng.standard_normal((count, dims), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def fill_store(store: Store, spans: int, seed: int = 7) -> list[str]:
    """Files of :data:`SPANS_PER_FILE` spans with names made of :data:`WORDS`; their hashes."""
    rng = random.Random(seed)
    hashes = []
    with store.transaction():
        for file_number in range(spans // SPANS_PER_FILE):
            file_id = store.upsert_file(
                f"pkg/mod_{file_number}.py", "python", 1000, 1, f"{file_number:064x}", False
            )
            rows = []
            for i in range(SPANS_PER_FILE):
                name = "_".join(rng.sample(WORDS, 2)) + f"_{i}"
                content_hash = f"{file_number:08x}{i:08x}" + "0" * 48
                hashes.append(content_hash)
                facts = json.dumps({"signature": f"def {name}(x)"})
                line = i * 5
                place = (line, 0, line + 4, 0, line, 4, line, 4 + len(name))
                rows.append((name, "function", 0, *place, content_hash, facts))
            store.insert_spans(file_id, rows)
    return hashes


def _db_mb(store: Store) -> float:
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(store.path)
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def _latency(name: str, seconds: list[float]) -> dict[str, float]:
    """``{name}_p50`` and ``{name}_p99`` in milliseconds."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        f"{name}_p50": round(statistics.median(ordered) * 1000, 2),
        f"{name}_p99": round(p99 * 1000, 2),
    }


def measure(spans: int, dims: int) -> dict[str, Any]:
    """Fill a store with ``spans`` spans and ``dims``-dimension vectors and time searches."""
    rng = np.random.default_rng(spans + dims)
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-search-") as tmp:
        store = open_store(Path(tmp))
        try:
            hashes = fill_store(store, spans)
            sync_search_index(store)
            before_mb = _db_mb(store)
            vectors = _unit_vectors(rng, spans, dims)
            started = time.perf_counter()
            put_embeddings(
                store,
                MODEL,
                ((h, h, v.astype("<f4").tobytes()) for h, v in zip(hashes, vectors, strict=True)),
            )
            write_s = time.perf_counter() - started
            growth_mb = _db_mb(store) - before_mb
            del vectors
            rss_before = _rss_mb()
            started = time.perf_counter()
            index = vector_index(store, MODEL)
            load_s = time.perf_counter() - started
            rss_after = _rss_mb()

            unchanged = []
            for _ in range(20):
                started = time.perf_counter()
                vector_index(store, MODEL)
                unchanged.append(time.perf_counter() - started)
            other = []  # a write that is no vector (a file indexed): the marks are read
            for n in range(20):
                store.upsert_file(f"other_{n}.py", "python", 1, 1, f"{n:064x}", False)
                started = time.perf_counter()
                vector_index(store, MODEL)
                other.append(time.perf_counter() - started)
            extra = [f"{spans + i:064x}" for i in range(100)]
            new = _unit_vectors(rng, 100, dims)
            added = zip(extra, new, strict=True)
            put_embeddings(store, MODEL, ((h, h, v.tobytes()) for h, v in added))
            started = time.perf_counter()
            vector_index(store, MODEL)
            added_s = time.perf_counter() - started

            queries = _unit_vectors(rng, QUERIES, dims)
            words = random.Random(1)
            nearest_t, rank_t, product_t = [], [], []
            matrix = index.matrix[: len(index)]
            for query in queries:
                started = time.perf_counter()
                matrix @ query  # the floor: one pass over the matrix, nothing else
                product_t.append(time.perf_counter() - started)
                started = time.perf_counter()
                nearest_spans(store, MODEL, query, 60)
                nearest_t.append(time.perf_counter() - started)
                text = " ".join(words.sample(WORDS, 2))
                started = time.perf_counter()
                rank(store, text, query_vector=query, model=MODEL, limit=20)
                rank_t.append(time.perf_counter() - started)
            keyword_t = []
            for _ in range(50):
                text = " ".join(words.sample(WORDS, 2))
                started = time.perf_counter()
                rank(store, text, limit=20)
                keyword_t.append(time.perf_counter() - started)
            return {
                "spans": spans,
                "dims": dims,
                **_latency("matrix_product_ms", product_t),
                **_latency("nearest_ms", nearest_t),
                **_latency("rank_ms", rank_t),
                **_latency("keywords_only_rank_ms", keyword_t),
                "first_load_s": round(load_s, 3),
                "refresh_unchanged_ms_p50": round(statistics.median(unchanged) * 1000, 3),
                "refresh_other_write_ms_p50": round(statistics.median(other) * 1000, 3),
                "refresh_100_new_ms": round(added_s * 1000, 2),
                "write_vectors_s": round(write_s, 2),
                "index_growth_mb": round(growth_mb, 1),
                "matrix_mb": round(index.memory_bytes() / 1e6, 1),
                "rss_growth_mb": round(rss_after - rss_before, 1),
                "rss_mb": round(rss_after, 1),
            }
        finally:
            store.close()


def run() -> dict[str, Any]:
    """Every size and dimension; print a table; return the figures."""
    figures = [measure(spans, dims) for spans in SIZES for dims in DIMS]
    rows = []
    for f in figures:
        at = f"{f['spans']:,} x {f['dims']}"
        target = "p99 <= 50 ms" if f["spans"] == 100_000 else ""
        rows += [
            (
                f"{at}: nearest p50 / p99 (matrix product alone)",
                f"{f['nearest_ms_p50']} / {f['nearest_ms_p99']} ms "
                f"({f['matrix_product_ms_p50']} / {f['matrix_product_ms_p99']} ms)",
                target,
            ),
            (f"{at}: whole rank p50 / p99", f"{f['rank_ms_p50']} / {f['rank_ms_p99']} ms", ""),
            (
                f"{at}: keywords-only rank p50 / p99",
                f"{f['keywords_only_rank_ms_p50']} / {f['keywords_only_rank_ms_p99']} ms",
                "",
            ),
            (
                f"{at}: first load / refresh (none, other write, +100)",
                f"{f['first_load_s']} s / {f['refresh_unchanged_ms_p50']} ms, "
                f"{f['refresh_other_write_ms_p50']} ms, {f['refresh_100_new_ms']} ms",
                "",
            ),
            (
                f"{at}: index growth / matrix / RSS growth on load",
                f"{f['index_growth_mb']} MB / {f['matrix_mb']} MB / {f['rss_growth_mb']} MB",
                "",
            ),
        ]
    print_table(rows)
    return {"model": "random unit vectors", "queries": QUERIES, "runs": figures}
