"""Composition root: builds the store, settings, engine and scheduler of one workspace."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanlens.config import load_settings
from spanlens.docgen.job import DocgenJob
from spanlens.scheduling.scheduler import Scheduler
from spanlens.settings import ConfigError, Settings
from spanlens.store.db import open_store
from spanlens.store.handle import Store
from spanlens.store.worker import StoreWorker
from spanlens.telemetry.gpu import GpuSampler, sampler_for

if TYPE_CHECKING:
    from spanlens.enrichment.call.path import CallPath
    from spanlens.enrichment.engine import EnrichmentEngine

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
    #: The engine's call path, which docgen's overviews take too (None: no backend).
    calls: CallPath | None = None


def build_engine(
    root: Path,
    settings: Settings,
    writer: StoreWorker,
    gpu: GpuSampler | None,
    source_text: SourceText | None = None,
) -> EnrichmentEngine | None:
    """The enrichment engine, or None when no backend is configured (facts only).

    It reads through its own connection on the event loop and writes through ``writer``;
    ``source_text`` reads a file's current text (the editor's buffer when it is open).
    """
    if not settings.backends:
        return None
    from spanlens.enrichment.call.endpoints import build_endpoints
    from spanlens.enrichment.engine import EnrichmentEngine

    return EnrichmentEngine(
        root,
        settings,
        gpu=gpu,
        source_text=source_text,
        store=open_store(root),
        endpoints=build_endpoints(settings),
        writer=writer,
    )


@contextlib.asynccontextmanager
async def command_calls(root: Path, settings: Settings) -> AsyncIterator[CallPath | None]:
    """The call path of a command that is no server (``spanlens docgen``): built as the
    server builds it, recording each call through its own writer thread; None without a
    backend. Closed (clients, writer) when the block ends."""
    writer = StoreWorker(root, "calls")
    engine = build_engine(root, settings, writer, None)
    try:
        yield engine.calls if engine is not None else None
    finally:
        if engine is not None:
            await engine.aclose()
        await writer.aclose()


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
    # Overviews take the engine's call path: one slot limit, breaker and attempt record per
    # endpoint for every model call.
    calls = engine.calls if engine is not None else None
    docgen = DocgenJob(root, settings, queries, writer=indexer, calls=calls)
    scheduler.add_job(docgen)
    return Services(root, settings, store, indexer, queries, scheduler, docgen, gpu, calls)


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
    services.calls = engine.calls if engine is not None else None
    services.docgen.use(services.calls)


def replace_docgen(services: Services, settings: Settings) -> None:
    """New settings: a new docgen job (new docs folder, tier or model) replaces the old one."""
    old = services.docgen
    services.docgen = DocgenJob(
        services.root,
        settings,
        services.queries,
        writer=services.indexer,
        on_change=old.on_change,
        calls=services.calls,
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
    await services.indexer.aclose()
    await services.queries.aclose()
    services.store.close()
