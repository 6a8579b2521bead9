"""Enrichment pipeline overhead and batching savings, against the stand-in model server.

1. Overhead: a backend with a fixed latency per call and P parallel slots (stand-in
   ``max_concurrency=P``, backend ``max_parallel=P``), batching off. The ideal throughput is
   P / latency calls per second; spanlens' whole loop (pending query, prompts, HTTP, parsing,
   validation, store writes) should reach at least 90% of it.
2. Batching: about 150 files of this machine's standard library, every span enriched through
   the real `spanlens enrich` loop with batching on; model calls per enriched span should be
   at most 0.5, and every stored row must validate against its span.
3. Faults: one endpoint that answers 30% of calls with a mixed fault (500, 429 with
   Retry-After 1 s, malformed body, prose, truncated reply, dropped connection), beside the
   same workspace against a healthy endpoint. ONE run must enrich every span (target 100%,
   0 invalid rows); calls and seconds are reported relative to the healthy run.

Ratios within one run; absolute times are context only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tests.support.faults import FaultyResponder
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

from run import print_table
from spanlens_lsp.app import enrich_workspace
from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.enrichment.prompt.names import WorkspaceNames
from spanlens_lsp.enrichment.prompt.source import SpanSource, enclosing_context
from spanlens_lsp.enrichment.reply.validate import validate_enrichment
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store

#: Seconds per model call. Real calls take seconds; 200 ms keeps the run short while the
#: transport's own cost per call (several ms for Python HTTP on both ends, measured as the
#: bare-httpx baseline) stays small next to it.
LATENCY = 0.2
PARALLEL = 16
OVERHEAD_FILES = 10
FUNCTIONS_PER_FILE = 40
#: The fault run: share of faulty calls, latency of every call, the endpoint's parallelism.
FAULT_RATE = 0.3
FAULT_LATENCY = 0.05
FAULT_PARALLEL = 4
FAULT_FILES = 10
STDLIB_FILES = 150
STDLIB_MAX_BYTES = 120_000
REPO = Path(__file__).resolve().parent.parent


def settings_for(url: str, *, batch: bool, parallel: int) -> Settings:
    """One local backend at ``url``; GPU sampling off (the stand-in has no GPU)."""
    return settings_from_dict(
        {
            "enrichment": {"batch": batch},
            "gpu": {"enabled": False},
            "backends": [{"name": "standin", "url": url, "max_parallel": parallel}],
        }
    )


def index(root: Path) -> int:
    """Index ``root``; returns the number of spans."""
    store = open_store(root)
    try:
        return index_files(root, store).spans_total
    finally:
        store.close()


def write_functions(root: Path, files: int, per_file: int) -> int:
    """A workspace of small functions; returns the number of spans indexed."""
    root.mkdir()
    for f in range(files):
        functions = [
            f"def f{f}_{i}(x, y={i}):\n    if x > y:\n        return x - y\n    return x + y\n"
            for i in range(per_file)
        ]
        (root / f"module_{f}.py").write_text("\n\n".join(functions))
    return index(root)


@contextlib.contextmanager
def standin_process(latency: float, slots: int) -> Iterator[str]:
    """A stand-in model server in its own process, as a real backend would be; yields its URL.

    In-process, its request handling would compete with spanlens for the interpreter lock
    and be counted as spanlens overhead.
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _STANDIN_MAIN, str(latency), str(slots)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the stand-in model server did not start")
        yield url
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=10)


_STANDIN_MAIN = """
import sys
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer
server = StandinModelServer(
    latency=float(sys.argv[1]), max_concurrency=int(sys.argv[2]), responder=valid_responder
).start()
print(server.url, flush=True)
sys.stdin.read()
server.stop()
"""


def overhead(workdir: Path) -> dict[str, Any]:
    """Throughput against a fixed-latency backend, as a fraction of P / latency."""
    warmup = workdir / "warmup"
    root = workdir / "overhead"
    write_functions(warmup, 1, 2 * PARALLEL)
    spans = write_functions(root, OVERHEAD_FILES, FUNCTIONS_PER_FILE)
    with standin_process(LATENCY, PARALLEL) as url:
        settings = settings_for(url, batch=False, parallel=PARALLEL)
        asyncio.run(enrich_workspace(warmup, settings))  # imports and first connections
        run = asyncio.run(enrich_workspace(root, settings))
        transport = asyncio.run(transport_baseline(url, run.calls))
    ideal = PARALLEL / LATENCY
    throughput = run.calls / run.seconds
    return {
        "transport_calls_per_second": round(transport, 1),
        "fraction_of_transport": round(throughput / transport, 3),
        "spans": spans,
        "enriched": run.succeeded,
        "calls": run.calls,
        "seconds": round(run.seconds, 3),
        "calls_per_second": round(throughput, 1),
        "ideal_calls_per_second": round(ideal, 1),
        "fraction_of_ideal": round(throughput / ideal, 3),
    }


async def transport_baseline(url: str, calls: int) -> float:
    """Calls per second of bare httpx posts to the same server: the transport's own ceiling."""
    body = {
        "model": "qwen2.5-coder:7b",
        "stream": False,
        "messages": [{"role": "user", "content": _BARE_REQUEST}],
    }
    limits = httpx.Limits(max_connections=PARALLEL + 2)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        slots = asyncio.Semaphore(PARALLEL)

        async def one() -> None:
            async with slots:
                (await client.post("/api/chat", json=body)).json()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
        return calls / (time.perf_counter() - started)


_BARE_REQUEST = (
    '<spanlens-request>{"mode": "single", "spans": [{"span_id": 1, "path": "a.py", '
    '"kind": "function", "name": "f", "lines": [1, 3], "parameters": ["x"]}]}'
    "</spanlens-request>"
)


def copy_stdlib(dest: Path) -> int:
    """Copy the first ~150 top-level stdlib modules (by name, size-capped); returns count."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    chosen = [p for p in sorted(stdlib.glob("*.py")) if p.stat().st_size <= STDLIB_MAX_BYTES][
        :STDLIB_FILES
    ]
    for path in chosen:
        shutil.copyfile(path, dest / path.name)
    return len(chosen)


def batching(workdir: Path) -> dict[str, Any]:
    """Model calls per enriched span on the stdlib corpus, and validity of every row."""
    root = workdir / "stdlib"
    root.mkdir()
    files = copy_stdlib(root)
    spans = index(root)
    with StandinModelServer(responder=valid_responder) as server:
        settings = settings_for(server.url, batch=True, parallel=PARALLEL)
        run = asyncio.run(enrich_workspace(root, settings))
    valid, invalid = check_rows(root)
    return {
        "files": files,
        "spans": spans,
        "enriched": run.succeeded,
        "failed": run.failed,
        "calls": run.calls,
        "calls_per_span": round(run.calls / max(1, run.succeeded), 3),
        "rows_valid": valid,
        "rows_invalid": invalid,
        "seconds": round(run.seconds, 2),
    }


def check_rows(root: Path) -> tuple[int, int]:
    """(valid, invalid) stored enrichments, each validated against a span with its hash."""
    store = open_store(root)
    try:
        by_hash = {s.content_hash: s for p in store.file_rows() for s in store.spans_in_file(p)}
        texts: dict[str, list[str]] = {}
        workspace = WorkspaceNames()
        valid = invalid = 0
        for content_hash, data in queries.enrichment_rows(store, ENRICHMENT_VERSION):
            span = by_hash[content_hash]
            lines = texts.setdefault(span.path, (root / span.path).read_text().split("\n"))
            file_spans = store.spans_in_file(span.path)
            source = SpanSource(
                span,
                lines[span.start_line : span.end_line + 1],
                enclosing_context(span, file_spans, lines),
                workspace.for_file(store, "\n".join(lines), file_spans),
            )
            if validate_enrichment(data, source.stored_context()).ok:
                valid += 1
            else:
                invalid += 1
        return valid, invalid
    finally:
        store.close()


def faults(workdir: Path) -> dict[str, Any]:
    """One run against a healthy endpoint and one against a faulty one, same workspace."""
    figures: dict[str, Any] = {}
    for name in ("healthy", "faulty"):
        root = workdir / f"faults-{name}"
        spans = write_functions(root, FAULT_FILES, FUNCTIONS_PER_FILE)
        responder = (
            FaultyResponder(FAULT_RATE, retry_after=1.0) if name == "faulty" else valid_responder
        )
        with StandinModelServer(latency=FAULT_LATENCY, responder=responder) as server:
            settings = settings_for(server.url, batch=True, parallel=FAULT_PARALLEL)
            run = asyncio.run(enrich_workspace(root, settings))
            requests = len(server.chat_requests)
        valid, invalid = check_rows(root)
        figures[name] = {
            "spans": spans,
            "enriched": run.succeeded,
            "failed": run.failed,
            "deferred": run.deferred,
            "pending": run.pending,
            "share_enriched": round(run.succeeded / max(1, spans), 4),
            "calls": run.calls,
            "requests_seen_by_server": requests,
            "seconds": round(run.seconds, 2),
            "rows_valid": valid,
            "rows_invalid": invalid,
            "stopped": run.stopped,
        }
        if isinstance(responder, FaultyResponder):
            figures[name]["faults_served"] = dict(responder.counts)
    healthy, faulty = figures["healthy"], figures["faulty"]
    figures["calls_vs_healthy"] = round(faulty["calls"] / max(1, healthy["calls"]), 2)
    figures["seconds_vs_healthy"] = round(faulty["seconds"] / max(1e-6, healthy["seconds"]), 2)
    return figures


def run() -> dict[str, Any]:
    """All three measurements; prints a table and returns the figures."""
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-enrich-") as tmp:
        workdir = Path(tmp)
        over = overhead(workdir)
        batch = batching(workdir)
        fault = faults(workdir)
    faulty = fault["faulty"]
    print_table(
        [
            (
                "overhead: throughput / ideal",
                f"{over['fraction_of_ideal']:.1%}",
                f">= 90% (P={PARALLEL}, {LATENCY * 1000:.0f} ms/call, {over['calls']} calls)",
            ),
            ("overhead: calls per second", f"{over['calls_per_second']}", "context"),
            (
                "overhead: throughput / bare httpx",
                f"{over['fraction_of_transport']:.1%}",
                f"context ({over['transport_calls_per_second']} calls/s bare)",
            ),
            (
                "batching: model calls per span",
                f"{batch['calls_per_span']:.3f}",
                f"<= 0.5 ({batch['calls']} calls, {batch['enriched']} spans)",
            ),
            ("batching: stored rows invalid", str(batch["rows_invalid"]), "0"),
            (
                "faults: share enriched in one run",
                f"{faulty['share_enriched']:.1%}",
                f"100% ({FAULT_RATE:.0%} mixed faults, {faulty['spans']} spans, "
                f"{faulty['failed']} failed, {faulty['pending']} pending)",
            ),
            ("faults: stored rows invalid", str(faulty["rows_invalid"]), "0"),
            (
                "faults: calls vs healthy run",
                f"{fault['calls_vs_healthy']:.2f}x",
                f"context ({faulty['calls']} vs {fault['healthy']['calls']})",
            ),
            (
                "faults: seconds vs healthy run",
                f"{fault['seconds_vs_healthy']:.2f}x",
                f"context ({faulty['seconds']} s vs {fault['healthy']['seconds']} s)",
            ),
        ]
    )
    return {
        "overhead": over,
        "batching": batch,
        "faults": fault,
        "ok": over["fraction_of_ideal"] >= 0.9
        and batch["calls_per_span"] <= 0.5
        and batch["rows_invalid"] == 0
        and faulty["share_enriched"] == 1.0
        and faulty["rows_invalid"] == 0,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
