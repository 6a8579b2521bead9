"""`spanlens enrich`: pre-flight, then enrich the pending spans with a bounded worker pool.

The pre-flight probes every backend with a short timeout before anything is written: with no
backend reachable the command refuses with one message naming what it tried and how to
configure a backend. The loop feeds the engine one file's pending spans at a time (so related
spans can share batched calls), as many files at once as the starting tier can serve.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanlens.config import Settings
from spanlens.enrichment.backends import create_backend, probe_backends
from spanlens.enrichment.engine import (
    DEFERRED,
    DISCARDED,
    ENRICHED,
    FAILED,
    EnrichmentEngine,
    SpanOutcome,
)
from spanlens.store import enrichments as queries
from spanlens.store.db import SpanRow

#: Spans handed to one ``enrich`` call: one file's pending spans, at most this many.
CHUNK_SPANS = 48
PREFLIGHT_TIMEOUT = 2.0

ProgressFn = Callable[[int, int, str], None]

CONFIG_EXAMPLE = """\
  # spanlens.toml at the workspace root
  [[backends]]
  name = "local"
  tier = "small"
  provider = "ollama"            # or "openai" for llama.cpp, vLLM, LM Studio, LiteLLM
  url = "http://127.0.0.1:11434"
  model = "qwen2.5-coder:7b"

or set SPANLENS_BACKENDS='[{"name": "local", "tier": "small", "provider": "ollama", \
"url": "http://127.0.0.1:11434", "model": "qwen2.5-coder:7b"}]'"""


@dataclass(slots=True)
class EnrichRun:
    """The summary of one `spanlens enrich` run."""

    succeeded: int = 0
    failed: int = 0
    discarded: int = 0
    deferred: int = 0
    #: Spans still without a fresh enrichment after the run (failed ones not counted).
    pending: int = 0
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    by_tier: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    #: Set when the run stopped early because every backend became unreachable.
    stopped: str | None = None

    def add(self, outcomes: list[SpanOutcome]) -> None:
        """Count one ``enrich`` call's outcomes."""
        for outcome in outcomes:
            if outcome.status == ENRICHED:
                self.succeeded += 1
            elif outcome.status == FAILED:
                self.failed += 1
            elif outcome.status == DISCARDED:
                self.discarded += 1
            elif outcome.status == DEFERRED:
                self.deferred += 1
            if outcome.error and outcome.status in (FAILED, DEFERRED):
                self.errors[outcome.error] = self.errors.get(outcome.error, 0) + 1

    def as_json(self) -> dict[str, Any]:
        """One flat object: the documented keys first, then ``tier_<name>`` counts."""
        flat: dict[str, Any] = {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pending": self.pending,
            "calls": self.calls,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "seconds": round(self.seconds, 3),
            "discarded": self.discarded,
            "deferred": self.deferred,
            "stopped": self.stopped,
        }
        flat.update({f"tier_{tier}": count for tier, count in self.by_tier.items()})
        return flat


async def preflight(settings: Settings, timeout: float = PREFLIGHT_TIMEOUT) -> list[dict[str, Any]]:
    """Probe every configured backend (nothing is opened or written); one dict per backend."""
    backends = [create_backend(b) for b in settings.backends]
    try:
        return await probe_backends(backends, timeout)
    finally:
        await asyncio.gather(*(b.aclose() for b in backends), return_exceptions=True)


def refusal_message(probes: list[dict[str, Any]]) -> str:
    """Why `spanlens enrich` will not run: what was tried, and how to configure a backend."""
    if not probes:
        tried = "no backend is configured"
    else:
        tried = "tried " + "; ".join(
            f"{p['name']} ({p['provider']}, tier {p['tier']}) at {p['url']}: "
            f"{_short_error(p['error'])}"
            for p in probes
        )
    return (
        f"no model backend is reachable ({tried}). Nothing was enriched or written. "
        "Start one (for Ollama: `ollama serve` then `ollama pull qwen2.5-coder:7b`) or point "
        f"spanlens at one:\n{CONFIG_EXAMPLE}"
    )


def serves_model(probe: dict[str, Any]) -> bool:
    """Whether a probed backend answered, without error, and serves its model."""
    return bool(probe["reachable"]) and not probe["error"] and probe["model_present"] is not False


def unusable_message(probes: list[dict[str, Any]]) -> str:
    """Why `spanlens enrich` will not run although a backend answers: one line per backend
    with its fix."""
    lines = [fix_for(p) for p in probes]
    return "no model backend can serve its model; nothing was enriched or written:\n" + "\n".join(
        f"  - {line}" for line in lines
    )


def fix_for(probe: dict[str, Any]) -> str:
    """One backend's problem and how to fix it (for a backend that does not serve)."""
    where = f"backend {probe['name']} ({probe['provider']}) at {probe['url']}"
    if not probe["reachable"]:
        start = "start Ollama (`ollama serve`)" if probe["provider"] == "ollama" else "start it"
        return f"{where} is unreachable — {start} or correct backends.url"
    error = probe["error"]
    if error:
        if "api_key_env" in error:
            return f"{where}: {error} — export it before running spanlens"
        if "api key" in error.lower():
            return f"{where}: {error} — set a valid key in the variable named by api_key_env"
        return f"{where}: {error} — check the server and backends.url"
    if probe["provider"] == "ollama":
        return (
            f"{where} does not serve model {probe['model']} — run "
            f"`ollama pull {probe['model']}` or set backends.model"
        )
    return (
        f"{where} does not serve model {probe['model']} — set backends.model to a model "
        "the server lists"
    )


def _short_error(error: str | None) -> str:
    if not error:
        return "no answer"
    lowered = error.lower()
    if "connect" in lowered:
        return "connection refused"
    if "timeout" in lowered:
        return "timed out"
    return error[:80]


async def run_enrich(
    root: Path,
    settings: Settings,
    *,
    limit: int | None = None,
    tier: str | None = None,
    paths: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> EnrichRun:
    """Enrich the workspace's pending spans (at most ``limit``, of ``paths`` when given) and
    summarise the run."""
    run = EnrichRun()
    started_wall = time.time()
    started = time.perf_counter()
    engine = EnrichmentEngine(root, settings)
    try:
        pending = engine.pending(limit=limit, paths=paths)
        chunks = deque(file_chunks(pending))
        total = len(pending)
        done = 0

        async def worker() -> None:
            nonlocal done
            while chunks and run.stopped is None:
                chunk = chunks.popleft()
                run.add(await engine.enrich(chunk, tier=tier))
                done += len(chunk)
                if engine.health()["unreachable"]:
                    run.stopped = "every backend refused the connection"
                if progress:
                    progress(done, total, _progress_text(engine, started_wall, started))

        workers = max(1, min(engine.capacity(), len(chunks)))
        await asyncio.gather(*(worker() for _ in range(workers)))
        totals = queries.attempt_totals(engine.store, started_wall)
        run.calls = totals["calls"]
        run.tokens_in = totals["tokens_in"]
        run.tokens_out = totals["tokens_out"]
        run.by_tier = queries.enriched_by_tier(engine.store, started_wall)
        run.pending = queries.unfinished_count(
            engine.store, engine.version, settings.enrichment.max_failures
        )
    finally:
        await engine.aclose()
    run.seconds = time.perf_counter() - started
    return run


def file_chunks(spans: list[SpanRow], size: int = CHUNK_SPANS) -> list[list[SpanRow]]:
    """Spans cut into chunks of one file each (ordered by path then line), at most ``size``."""
    chunks: list[list[SpanRow]] = []
    for span in spans:
        if chunks and chunks[-1][0].path == span.path and len(chunks[-1]) < size:
            chunks[-1].append(span)
        else:
            chunks.append([span])
    return chunks


def _progress_text(engine: EnrichmentEngine, since: float, started: float) -> str:
    totals = queries.attempt_totals(engine.store, since)
    rate = totals["spans_enriched"] / max(1e-6, time.perf_counter() - started)
    tokens = totals["tokens_in"] + totals["tokens_out"]
    return f"calls {totals['calls']} · tokens {tokens} · {rate:.1f} spans/s"


def summary_lines(run: EnrichRun) -> list[str]:
    """The human summary `spanlens enrich` prints."""
    lines = [
        f"enriched {run.succeeded}, failed {run.failed}, deferred {run.deferred}, "
        f"discarded {run.discarded}; {run.pending} still pending",
        f"calls {run.calls}, tokens {run.tokens_in} in / {run.tokens_out} out, {run.seconds:.1f}s",
    ]
    if run.by_tier:
        lines.append("by tier: " + ", ".join(f"{t} {n}" for t, n in run.by_tier.items()))
    if run.errors:
        lines.append("problems: " + ", ".join(f"{e} ({n})" for e, n in run.errors.items()))
    if run.stopped:
        lines.append(f"stopped early: {run.stopped}; the rest stays pending")
    return lines
