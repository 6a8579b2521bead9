"""Composition root: builds the store, settings, engine and scheduler of one workspace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanlens.config import ConfigError, Settings, load_settings
from spanlens.docgen.job import DocgenJob
from spanlens.scheduling.scheduler import Enricher, Scheduler
from spanlens.store.db import Store, open_store
from spanlens.store.worker import StoreWorker
from spanlens.telemetry.gpu import GpuSampler, sampler_for

#: Reads a workspace-relative file's current text, or None when it cannot.
SourceText = Callable[[str], "str | None"]


@dataclass(slots=True)
class Services:
    """Everything a running server uses, built once per workspace."""

    root: Path
    settings: Settings
    #: The event loop's read connection (hovers, lenses, diagnostics).
    store: Store
    #: The one thread that writes the index (workspace walks, buffers, deletions) and the
    #: engine's enrichments, attempts, failures and claims.
    indexer: StoreWorker
    #: A thread for background queries too slow for the event loop.
    queries: StoreWorker
    scheduler: Scheduler
    #: Per-file docs, a job of the scheduler's lowest lane.
    docgen: DocgenJob
    #: GPU telemetry and limits for the engine (None when ``gpu.enabled`` is off).
    gpu: GpuSampler | None = None


def build_engine(
    root: Path,
    settings: Settings,
    writer: StoreWorker,
    gpu: GpuSampler | None,
    source_text: SourceText | None = None,
) -> Enricher | None:
    """The enrichment engine, or None when no backend is configured (facts only).

    It reads through its own connection on the event loop and writes through ``writer``;
    ``source_text`` reads a file's current text (the editor's buffer when it is open).
    """
    if not settings.backends:
        return None
    from spanlens.enrichment.engine import EnrichmentEngine, build_endpoints

    engine: Enricher = EnrichmentEngine(
        root,
        settings,
        gpu=gpu,
        source_text=source_text,
        store=open_store(root),
        endpoints=build_endpoints(settings),
        writer=writer,
    )
    return engine


def workspace_settings(
    root: Path, overrides: dict[str, Any] | None = None
) -> tuple[Settings, str | None]:
    """Settings of ``root`` with editor ``overrides``; on a bad value, the best valid fallback
    (without the editor's settings, then defaults) and the error to show the user."""
    try:
        return load_settings(root, overrides), None
    except ConfigError as exc:
        error = str(exc)
    try:
        return load_settings(root), error
    except ConfigError as exc:
        return Settings(sources=["defaults"]), f"{error}; {exc}"


def build_services(
    root: Path, settings: Settings, source_text: SourceText | None = None
) -> Services:
    """Open the workspace at ``root``. Call from the event loop thread that will use it."""
    store = open_store(root)
    indexer = StoreWorker(root, "indexer")
    queries = StoreWorker(root, "queries")
    gpu = sampler_for(settings.gpu.enabled and bool(settings.backends))
    engine = build_engine(root, settings, indexer, gpu, source_text)
    scheduler = Scheduler(store, queries, engine, settings)
    docgen = DocgenJob(root, settings, queries, writer=indexer)
    scheduler.add_job(docgen)
    return Services(root, settings, store, indexer, queries, scheduler, docgen, gpu)


def replace_engine(
    services: Services, settings: Settings, source_text: SourceText | None = None
) -> None:
    """New backend, enrichment or GPU settings: a new engine (same writer thread, one GPU
    sampler for the services' life) replaces the old one once its calls have finished."""
    if services.gpu is None:
        services.gpu = sampler_for(settings.gpu.enabled and bool(settings.backends))
    gpu = services.gpu if settings.gpu.enabled else None
    engine = build_engine(services.root, settings, services.indexer, gpu, source_text)
    services.scheduler.replace_engine(engine)


def replace_docgen(services: Services, settings: Settings) -> None:
    """New settings: a new docgen job (new docs folder, tier or model) replaces the old one."""
    old = services.docgen
    services.docgen = DocgenJob(
        services.root,
        settings,
        services.queries,
        writer=services.indexer,
        on_change=old.on_change,
    )
    services.scheduler.replace_job(old, services.docgen)


async def close_services(services: Services) -> None:
    """Drain the scheduler, close the engine and the GPU sampler, then the store connections."""
    await services.scheduler.aclose()
    engine = services.scheduler.engine
    if engine is not None:
        await engine.aclose()  # gives up its claims through the indexer, still open
    if services.gpu is not None:
        await asyncio.to_thread(services.gpu.close)
    await services.docgen.aclose()
    await services.indexer.aclose()
    await services.queries.aclose()
    services.store.close()
