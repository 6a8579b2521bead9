"""Composition root: builds the store, settings, endpoints, engine and scheduler of one
workspace, for the server and for the commands (`spanlens enrich`, `docgen`, `doctor`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanlens_lsp.config import load_settings
from spanlens_lsp.docgen.job import DocgenJob
from spanlens_lsp.embedding.job import EmbeddingJob
from spanlens_lsp.scheduling.scheduler import Scheduler
from spanlens_lsp.settings import ConfigError, Settings
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.worker import StoreWorker, StoreWrites
from spanlens_lsp.telemetry.gpu import GpuSampler, sampler_for

if TYPE_CHECKING:
    from spanlens_lsp.embedding.run import EmbedRun
    from spanlens_lsp.embedding.run import ProgressFn as EmbedProgressFn
    from spanlens_lsp.enrichment.call.endpoints import Endpoint, GpuProbe
    from spanlens_lsp.enrichment.call.path import CallPath
    from spanlens_lsp.enrichment.engine import EnrichmentEngine
    from spanlens_lsp.enrichment.runner import EnrichRun, ProgressFn
    from spanlens_lsp.store.enrichments import Attempt

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
    #: Span vectors ([[embeddings]]), a job after enrichment and before docgen, and at once
    #: for a saved file's new enrichments.
    embedding: EmbeddingJob
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
    return open_engine(root, settings, writer=writer, gpu=gpu, source_text=source_text)


def open_engine(
    root: Path,
    settings: Settings,
    *,
    gpu: GpuProbe | None = None,
    writer: StoreWrites | None = None,
    endpoints: dict[str, list[Endpoint]] | None = None,
    source_text: SourceText | None = None,
) -> EnrichmentEngine:
    """An enrichment engine with everything it needs: its own read connection, the
    ``endpoints`` (built from ``settings`` when not given; the engine closes them) and
    ``writer`` (without one, a writer thread of its own that the engine closes). ``gpu`` stays
    the caller's to close."""
    from spanlens_lsp.enrichment.call.endpoints import build_endpoints
    from spanlens_lsp.enrichment.engine import EnrichmentEngine

    return EnrichmentEngine(
        root,
        settings,
        store=open_store(root),
        endpoints=endpoints if endpoints is not None else build_endpoints(settings),
        writer=writer if writer is not None else StoreWorker(root, "enrich"),
        owns_writer=writer is None,
        gpu=gpu,
        source_text=source_text,
    )


@contextlib.asynccontextmanager
async def command_endpoints(settings: Settings) -> AsyncIterator[CallPath]:
    """The endpoints of a command that is no server, built once from ``settings``, as a call
    path that records no attempt: the enrich pre-flight and doctor probe through it (doctor
    writes nothing to the index), and :func:`command_engine` takes over its endpoints.
    Their clients are closed when the block ends."""
    from spanlens_lsp.enrichment.call.endpoints import build_endpoints, close_endpoints
    from spanlens_lsp.enrichment.call.path import CallPath

    calls = CallPath(
        build_endpoints(settings), settings.enrichment, _record_nothing, gpu_settings=settings.gpu
    )
    try:
        yield calls
    finally:
        await close_endpoints(calls.all_endpoints())


async def _record_nothing(attempt: Attempt) -> None:
    """A probe's call is not written to the index (doctor and the pre-flight write nothing)."""


@contextlib.asynccontextmanager
async def command_engine(
    root: Path,
    settings: Settings,
    *,
    endpoints: dict[str, list[Endpoint]] | None = None,
    gpu: bool = True,
) -> AsyncIterator[EnrichmentEngine]:
    """The engine of a command that is no server, built as the server builds it, with its own
    writer thread and (when ``gpu`` and ``gpu.enabled``) a GPU sampler; it calls
    ``endpoints`` when given (those the pre-flight probed). Closed when the block ends."""
    sampler = sampler_for(gpu and settings.gpu.enabled)
    engine = open_engine(root, settings, gpu=sampler, endpoints=endpoints)
    try:
        yield engine
    finally:
        await engine.aclose()
        if sampler is not None:
            await asyncio.to_thread(sampler.close)


@contextlib.asynccontextmanager
async def command_calls(root: Path, settings: Settings) -> AsyncIterator[CallPath | None]:
    """The call path of a command that is no server (``spanlens docgen``): the engine's,
    built as the server builds it, recording each call through its own writer thread; None
    without a backend. Closed (clients, writer) when the block ends."""
    if not settings.backends:
        yield None
        return
    async with command_engine(root, settings, gpu=False) as engine:
        yield engine.calls


async def enrich_workspace(
    root: Path,
    settings: Settings,
    *,
    endpoints: dict[str, list[Endpoint]] | None = None,
    limit: int | None = None,
    tier: str | None = None,
    paths: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> EnrichRun:
    """`spanlens enrich`'s run (see :func:`spanlens_lsp.enrichment.runner.run_enrich`) through
    an engine of :func:`command_engine`."""
    from spanlens_lsp.enrichment.runner import run_enrich

    async with command_engine(root, settings, endpoints=endpoints) as engine:
        return await run_enrich(engine, limit=limit, tier=tier, paths=paths, progress=progress)


async def embed_workspace(
    root: Path,
    settings: Settings,
    *,
    paths: list[str] | None = None,
    progress: EmbedProgressFn | None = None,
) -> list[EmbedRun]:
    """The embedding run of a command (`spanlens embed`, `spanlens enrich`): every configured
    embedder in turn, reading and writing through one store thread of its own, each call
    recorded in ``attempts``; [] without an embedding endpoint."""
    import functools

    from spanlens_lsp.embedding.endpoints import close_embedders, embedders_from_settings
    from spanlens_lsp.embedding.run import embed_pending
    from spanlens_lsp.store.enrichments import record_attempt

    worker = StoreWorker(root, "embed")

    async def record(attempt: Attempt) -> None:
        await worker.run_first(functools.partial(record_attempt, attempt=attempt))

    embedders = embedders_from_settings(settings, record)
    try:
        return [
            await embed_pending(
                root,
                embedder,
                worker,
                worker,
                paths=paths,
                exclude=settings.index.exclude,
                progress=progress,
            )
            for embedder in embedders
        ]
    finally:
        await close_embedders(embedders)
        await worker.aclose()


async def probe_backends(settings: Settings, check_output: bool = False) -> list[dict[str, Any]]:
    """Doctor's probe of every configured backend (see
    :func:`spanlens_lsp.enrichment.call.preflight.preflight`), through endpoints built as a run
    builds them."""
    from spanlens_lsp.enrichment.call.preflight import preflight

    async with command_endpoints(settings) as calls:
        return await preflight(calls, check_output=check_output)


async def probe_embeddings(settings: Settings) -> list[dict[str, Any]]:
    """Doctor's check of every embedding endpoint (see
    :func:`spanlens_lsp.embedding.endpoints.check_embedder`); nothing is recorded."""
    from spanlens_lsp.embedding.endpoints import (
        check_embedder,
        close_embedders,
        embedders_from_settings,
    )

    embedders = embedders_from_settings(settings)
    try:
        return [await check_embedder(embedder) for embedder in embedders]
    finally:
        await close_embedders(embedders)


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
    embedding = add_embedding_job(scheduler, root, settings, queries, indexer, gpu)
    return Services(
        root, settings, store, indexer, queries, scheduler, docgen, embedding, gpu, calls
    )


def add_embedding_job(
    scheduler: Scheduler,
    root: Path,
    settings: Settings,
    queries: StoreWorker,
    indexer: StoreWorker,
    gpu: GpuSampler | None,
) -> EmbeddingJob:
    """The embedding job of ``settings``: on the scheduler's embedding lane, and told when a
    saved file's enrichments land."""
    job = EmbeddingJob(root, settings, queries, indexer, gpu=gpu)
    scheduler.add_job(job)
    scheduler.on_saved = job.saved_enriched
    return job


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


def replace_embedding(services: Services, settings: Settings) -> None:
    """New ``[[embeddings]]``: a new embedding job replaces the old one (whose unit in flight
    finishes, then its clients close)."""
    old = services.embedding
    services.embedding = EmbeddingJob(
        services.root, settings, services.queries, services.indexer, gpu=services.gpu
    )
    services.scheduler.replace_job(old, services.embedding)
    services.scheduler.on_saved = services.embedding.saved_enriched


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
    await services.embedding.aclose()
    engine = services.scheduler.engine
    if engine is not None:
        await engine.aclose()  # gives up its claims through the indexer, still open
    if services.gpu is not None:
        await asyncio.to_thread(services.gpu.close)
    await services.indexer.aclose()
    await services.queries.aclose()
    services.store.close()
