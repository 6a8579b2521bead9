"""What `spanlens stats` and `spanlens doctor` report, as plain data (the CLI prints it)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from spanlens_lsp.config import load_settings
from spanlens_lsp.embedding.builtin import embedding_endpoints, embedding_note
from spanlens_lsp.enrichment.backends import provider_for
from spanlens_lsp.enrichment.backends.base import FailureKind
from spanlens_lsp.enrichment.backends.defaults import FACTS_ONLY_NOTE, resolve_default_backends
from spanlens_lsp.localmodel.engine import engine_report
from spanlens_lsp.settings import ConfigError, Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import db_path_for
from spanlens_lsp.store.handle import Store

#: Probes every configured backend of the settings (``check_output``: ask each one tiny
#: structured question); one dict per backend (see
#: :func:`spanlens_lsp.enrichment.call.preflight.preflight`).
BackendProbe = Callable[[Settings, bool], Awaitable[list[dict[str, Any]]]]
EmbeddingProbe = Callable[[Settings], Awaitable[list[dict[str, Any]]]]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def stats_report(store: Store) -> dict[str, Any]:
    """Totals and one flat row per (tier, backend) over every recorded attempt."""
    rows: list[dict[str, Any]] = []
    for s in queries.backend_stats(store):
        rows.append(
            {
                "tier": s.tier,
                "backend": s.backend,
                "host": s.host,
                "model": s.model,
                "calls": s.calls,
                "succeeded": s.succeeded,
                "success_rate": round(s.succeeded / s.calls, 3) if s.calls else 0.0,
                "tokens_in": s.tokens_in,
                "tokens_out": s.tokens_out,
                "latency_p50_ms": round(percentile(s.durations_ms, 0.5), 1),
                "latency_p95_ms": round(percentile(s.durations_ms, 0.95), 1),
                "batch_calls": s.batch_calls,
                "calls_saved_by_batching": calls_saved_by_batching(s),
                "failed_batch_calls": s.batch_calls - s.batch_calls_enriching,
                "cost": round(s.cost, 6),
                "failures": ", ".join(f"{k} {v}" for k, v in sorted(s.failures.items())),
                **{f"gpu_peak_{k}": v for k, v in gpu_peaks(s.gpu).items()},
            }
        )
    calls = sum(r["calls"] for r in rows)
    succeeded = sum(r["succeeded"] for r in rows)
    return {
        "calls": calls,
        "succeeded": succeeded,
        "success_rate": round(succeeded / calls, 3) if calls else 0.0,
        "tokens_in": sum(r["tokens_in"] for r in rows),
        "tokens_out": sum(r["tokens_out"] for r in rows),
        "calls_saved_by_batching": sum(r["calls_saved_by_batching"] for r in rows),
        "failed_batch_calls": sum(r["failed_batch_calls"] for r in rows),
        "cost": round(sum(r["cost"] for r in rows), 6),
        "backends": rows,
        #: Tiers that fell back to single spans: their model's last batched calls all failed.
        "batching_off": [
            {"tier": tier, "model": model} for tier, model in queries.batching_off(store)
        ],
        #: Why replies were rejected lately: one line per span, its name and the rule broken.
        "rejections": queries.recent_rejections(store, FailureKind.INVALID_OUTPUT.value),
    }


def calls_saved_by_batching(stats: queries.BackendStats) -> int:
    """Calls that batching made unnecessary: a batched call that stored k spans saved k - 1.

    A batched call that stored nothing saved nothing (never a negative count); it is
    reported as a failed batched call instead, and its spans' later calls count as calls.
    """
    return max(stats.batch_spans - stats.batch_calls_enriching, 0)


def gpu_peaks(summaries: list[dict[str, Any]]) -> dict[str, float]:
    """The highest value of each numeric field over an endpoint's GPU summaries."""
    peaks: dict[str, float] = {}
    for summary in summaries:
        for key, value in summary.items():
            if key == "samples":
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                peaks[key] = max(peaks.get(key, value), value)
    return peaks


async def doctor_report(
    root: Path, probe: BackendProbe, probe_embeddings: EmbeddingProbe | None = None
) -> dict[str, Any]:
    """Config, each backend and embedding endpoint, GPU and database, with a list of problems
    and how to fix each. ``probe`` and ``probe_embeddings`` reach the endpoints through
    clients the composition root builds (:func:`spanlens_lsp.app.probe_backends`,
    :func:`spanlens_lsp.app.probe_embeddings`)."""
    problems: list[str] = []
    report: dict[str, Any] = {"root": str(root)}
    try:
        settings = load_settings(root)
    except ConfigError as exc:
        report["config"] = {"error": str(exc)}
        problems.append(f"configuration: {exc} — fix the key named in spanlens.toml")
        report["problems"] = problems
        return report
    notes = settings.notes  # the facts-only note of the default comes once, as a problem
    settings = await resolve_default_backends(settings)
    report["config"] = {
        "sources": settings.sources,
        "tiers": settings.enrichment.tiers,
        "notes": notes,
        "backends_configured": settings.backends_configured,
    }
    report["backends"] = await _backend_checks(settings, probe, problems)
    report["embedding_note"] = await asyncio.to_thread(embedding_note, settings)
    endpoints = await asyncio.to_thread(embedding_endpoints, settings)
    if probe_embeddings is not None and endpoints:
        report["embeddings"] = await probe_embeddings(settings)
        for check in report["embeddings"]:
            where = f"embedding endpoint {check['name']} ({check['provider']}) at {check['url']}"
            if not check["reachable"]:
                fix = provider_for(check["provider"]).start_fix()
                problems.append(f"{where} is unreachable — {fix} or correct embeddings.url")
            elif check["error"]:
                problems.append(f"{check['error']} — check the server, model and api_key_env")
    report["local_engine"] = await asyncio.to_thread(engine_report, settings.local.model)
    report["gpu"] = _gpu_check(settings, problems)
    report["database"] = _database_check(root, settings, problems)
    report["problems"] = problems
    return report


async def _backend_checks(
    settings: Settings, probe_backends: BackendProbe, problems: list[str]
) -> list[dict[str, Any]]:
    if not settings.backends:
        problems.append(
            "no backend configured — add a [[backends]] table to spanlens.toml"
            if settings.backends_configured
            else FACTS_ONLY_NOTE
        )
        return []
    probes = await probe_backends(settings, True)
    for probe in probes:
        where = f"backend {probe['name']} ({probe['provider']}) at {probe['url']}"
        output = probe.get("output_check")
        if output and not output["ok"]:
            problems.append(
                f"{where} did not return a valid structured reply "
                f"({output['detail']}) — check that the server supports JSON output"
            )
        if not probe["reachable"]:
            fix = provider_for(probe["provider"]).start_fix()
            problems.append(f"{where} is unreachable — {fix} or correct backends.url")
        elif probe["error"]:
            problems.append(f"{where}: {probe['error']} — check the server and api_key_env")
        elif probe["model_present"] is False:
            fix = provider_for(probe["provider"]).model_fix(probe["model"])
            problems.append(f"{where} does not serve model {probe['model']} — {fix}")
    tiers_with_backends = {p["tier"] for p in probes}
    first = settings.enrichment.tiers[0] if settings.enrichment.tiers else None
    if first and first not in tiers_with_backends:
        problems.append(
            f"the first tier '{first}' has no backend — spans route past it; "
            "add a backend with that tier or reorder enrichment.tiers"
        )
    return probes


def _gpu_check(settings: Settings, problems: list[str]) -> dict[str, Any]:
    if not settings.gpu.enabled:
        return {"enabled": False}
    try:
        from spanlens_lsp.telemetry.gpu import GpuSampler
    except ImportError:
        return {"enabled": True, "available": False, "note": "GPU telemetry not installed"}
    sampler = GpuSampler()
    available = bool(sampler.available)
    info: dict[str, Any] = {"enabled": True, "available": available}
    if not available:
        info["note"] = "no NVIDIA GPU or driver found (normal on CPU-only machines)"
        return info
    limits = settings.gpu
    reason = sampler.limits_exceeded(limits.min_free_vram_mb, limits.max_temperature_c)
    info["limits_exceeded"] = reason
    if reason:
        problems.append(
            f"GPU past its limits ({reason}) — local enrichment waits; free VRAM or relax "
            "gpu.min_free_vram_mb / gpu.max_temperature_c"
        )
    return info


def _database_check(root: Path, settings: Settings, problems: list[str]) -> dict[str, Any]:
    path = db_path_for(root)
    if not path.exists():
        # Not indexed yet is the normal state of a new workspace, not something to fix.
        return {
            "path": str(path),
            "exists": False,
            "note": f"not indexed yet: run `spanlens index {root}`",
        }
    from spanlens_lsp.store.db import open_store
    from spanlens_lsp.store.errors import StoreError
    from spanlens_lsp.store.migrations import current_version

    try:
        store = open_store(root, readonly=True)
    except StoreError as exc:
        problems.append(f"database: {exc}")
        return {"path": str(path), "exists": True, "error": str(exc)}
    try:
        states = queries.state_counts(store, ENRICHMENT_VERSION, settings.enrichment.max_failures)
        info = {
            "path": str(path),
            "exists": True,
            "migration": current_version(store.conn),
            "spans": store.span_count(),
            "tables": store.table_counts(),
            **states,
        }
        damage = store.integrity_problem()
        if damage is None:
            store.read_every_row()  # damage quick_check cannot see rebuilds, as in any command
    finally:
        store.close()
    if damage:
        info["integrity"] = damage
        problems.append(
            f"database {path} fails SQLite's integrity check ({damage}) — delete it and run "
            f"`spanlens index {root}` to rebuild"
        )
    if states["failed"]:
        problems.append(
            f"{states['failed']} spans failed enrichment — see `spanlens stats`; "
            "`spanlens enrich --retry-failed` tries them again"
        )
    return info
