"""The ``spanlens/status`` notification, and the few messages a user must act on.

Status changes are coalesced: at most one notification per :data:`STATUS_INTERVAL`.
``window/showMessage`` is used only for what needs the user: no backend reachable (once per
configuration, with the fix) and invalid settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from spanlens_lsp.embedding.builtin import embedding_source
from spanlens_lsp.enrichment.backends.defaults import backend_source
from spanlens_lsp.localmodel.catalog import EMBEDDING_MODEL
from spanlens_lsp.localmodel.engine import engine_report
from spanlens_lsp.lsp.edge import Edge
from spanlens_lsp.lsp.events import Listener
from spanlens_lsp.scheduling.queue import LANE_NAMES
from spanlens_lsp.store.handle import database_version
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.workspace.report import embedding_progress

if TYPE_CHECKING:
    from spanlens_lsp.docgen.job import DocgenJob
    from spanlens_lsp.embedding.job import EmbeddingJob
    from spanlens_lsp.embedding.run import StoreThread
    from spanlens_lsp.scheduling.scheduler import Scheduler
    from spanlens_lsp.settings import Settings

log = logging.getLogger(__name__)

STATUS_METHOD = "spanlens/status"
STATUS_INTERVAL = 0.1
#: Version of the status payload (protocol.md); bump on incompatible changes.
STATUS_VERSION = 1
#: Seconds between GPU samples for the status payload (NVML calls block: never on the loop).
GPU_SAMPLE_SECONDS = 2.0
#: Seconds between samples of the built-in engine for ``localEngine`` (engine_report reads
#: /proc and asks the engine's /metrics: never on the loop).
ENGINE_SAMPLE_SECONDS = 5.0
#: Seconds between counts of the embedded and pending spans (``embeddings``) at most, and
#: how many times the last count's own duration the next one waits at least: the count reads
#: every span in a store thread and hashes its text in a worker thread, never on the loop.
EMBEDDING_SAMPLE_SECONDS = 5.0
EMBEDDING_SAMPLE_SPACING = 1.0
EMBEDDING_SAMPLE_COST_FACTOR = 10
#: The scheduler's part of the payload before a scheduler exists (see Scheduler.snapshot).
IDLE_SNAPSHOT: dict[str, Any] = {
    "inFlight": 0,
    "calls": 0,
    "paused": None,
    "idle": False,
    "deferredSeconds": 0.0,
    "backlogEmpty": False,
    "lastError": None,
}
#: ``backends`` when no engine exists (facts only).
NO_BACKENDS: dict[str, Any] = {"endpoints": [], "unreachable": False, "misconfigured": []}


class StatusReporter(Listener):
    """Builds and sends the status payload; owns the one-time "unreachable" warning."""

    def __init__(
        self,
        edge: Edge,
        scheduler: Callable[[], Scheduler | None],
        docgen: Callable[[], DocgenJob | None],
        settings: Callable[[], Settings],
        index_fields: Callable[[], dict[str, Any]],
        embedding: Callable[[], EmbeddingJob | None] = lambda: None,
        queries: Callable[[], StoreThread | None] = lambda: None,
    ) -> None:
        self.edge = edge
        self.scheduler = scheduler
        self.docgen = docgen
        self.settings = settings
        #: The payload's ``indexing``, ``indexed`` and ``lastSave`` (document sync's).
        self.index_fields = index_fields
        self._timer: asyncio.TimerHandle | None = None
        self._warned_unreachable = False
        self._setup_hint_shown = False
        self._closed = False
        #: Invalid-settings errors already shown, so each one pops up once.
        self._errors_shown: set[str] = set()
        #: The last GPU state sampled off the loop (``gpu`` in the payload).
        self.gpu: dict[str, Any] | None = None
        self._gpu_task: asyncio.Task[None] | None = None
        #: The built-in engine sampled off the loop (``localEngine``), while it serves.
        self.local_engine: dict[str, Any] | None = None
        self._engine_task: asyncio.Task[None] | None = None
        #: The embedding job in force and the store thread its counts are read in.
        self.embedding = embedding
        self.queries = queries
        #: The last count of the first embedder's spans, sampled off the loop:
        #: ``{"model", "embedded", "pending", "engine"}``.
        self.embedding_sample: dict[str, Any] | None = None
        self._embedding_task: asyncio.Task[None] | None = None
        self._embedding_wake = asyncio.Event()

    def mark(self) -> None:
        """Something changed: send a status notification soon."""
        if self._timer is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(STATUS_INTERVAL, self._send)

    def _send(self) -> None:
        self._timer = None
        if self._closed:
            return
        try:
            self.edge.server.protocol.notify(STATUS_METHOD, self.payload())
        except Exception:
            log.exception("could not send status")

    def payload(self) -> dict[str, Any]:
        """The ``spanlens/status`` params (documented in protocol.md)."""
        root = self.edge.root
        scheduler, docgen = self.scheduler(), self.docgen()
        index = self.index_fields()
        indexing = index["indexing"]
        base: dict[str, Any] = {
            "version": STATUS_VERSION,
            "root": str(root) if root else None,
            "indexing": indexing,
            "indexed": index["indexed"],
            "lastSave": index["lastSave"],
        }
        if scheduler is None or docgen is None:  # the same keys, with nothing going on
            return {
                **base,
                "modelSource": None,
                "localEngine": None,
                "embeddings": None,
                "state": "starting" if root else "no_workspace",
                **IDLE_SNAPSHOT,
                "queue": dict.fromkeys(LANE_NAMES.values(), 0),
                "backends": dict(NO_BACKENDS),
                "gpu": None,
                "docgen": None,
            }
        snapshot = scheduler.snapshot()
        engine = scheduler.engine
        health = dict(engine.health()) if engine is not None else dict(NO_BACKENDS)
        gpu = self.gpu if engine is not None else None
        state = _state(snapshot, indexing, engine is not None, bool(health.get("unreachable")))
        source = backend_source(self.settings())
        return {
            **base,
            "modelSource": source,
            "localEngine": self.local_engine if source == "built-in" else None,
            "embeddings": self.embeddings_field(scheduler),
            "state": state,
            **snapshot,
            "backends": health,
            "gpu": gpu,
            "docgen": docgen.snapshot(),
        }

    def embeddings_field(self, scheduler: Scheduler) -> dict[str, Any] | None:
        """``embeddings`` of the payload: the first embedding endpoint in force, its spans'
        counts as last sampled, whether it embeds now and why it last failed; None without
        an embedding endpoint."""
        job = self.embedding()
        if job is None or not job.embedders:
            return None
        embedder = job.embedders[0]
        sample = self.embedding_sample
        if sample is not None and sample["model"] != embedder.model:
            sample = None  # counted for the endpoint this one replaced
        source = embedding_source(job.settings)
        running = scheduler.job_running is job or any(e.endpoint.in_flight for e in job.embedders)
        return {
            "model": embedder.model,
            "source": source,
            "embedded": sample["embedded"] if sample else None,
            "pending": sample["pending"] if sample else None,
            "running": running,
            "last_error": job.last_error,
            "engine": sample["engine"] if sample and source == "built-in" else None,
        }

    def start_embedding_sampling(self) -> None:
        """Count the embedded and pending spans off the loop, after changes and at least every
        :data:`EMBEDDING_SAMPLE_SECONDS`, never more often than its own cost allows."""
        if self._embedding_task is None and not self._closed:
            self._embedding_task = self.edge.spawn(
                self._sample_embeddings(), "count embedded spans"
            )

    async def _sample_embeddings(self) -> None:
        while not self._closed:
            self._embedding_wake.clear()
            started = time.monotonic()
            try:
                sampled = await self._count_embeddings()
            except Exception:  # a store error must not end the sampling
                log.exception("could not count embedded spans")
                sampled = self.embedding_sample
            cost = time.monotonic() - started
            if sampled != self.embedding_sample:
                self.embedding_sample = sampled
                self.mark()
            await asyncio.sleep(max(EMBEDDING_SAMPLE_SPACING, cost * EMBEDDING_SAMPLE_COST_FACTOR))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._embedding_wake.wait(), EMBEDDING_SAMPLE_SECONDS)

    async def _count_embeddings(self) -> dict[str, Any] | None:
        job, queries, root = self.embedding(), self.queries(), self.edge.root
        if job is None or not job.embedders or queries is None or root is None:
            return None
        embedder = job.embedders[0]
        version = await queries.run(database_version)
        last = self.embedding_sample
        if last is not None and last["model"] == embedder.model and last["version"] == version:
            counts = {"embedded": last["embedded"], "pending": last["pending"]}
        else:
            counts = await embedding_progress(root, embedder, queries, job.settings.index.exclude)
        engine = None
        if embedding_source(job.settings) == "built-in":
            engine = await asyncio.to_thread(local_engine_state, EMBEDDING_MODEL)
        # Counted again only when the index changed (a count reads every pending span).
        return {"model": embedder.model, "version": version, **counts, "engine": engine}

    def check_backends(self) -> None:
        """After results: tell the user once when no backend can be reached, with the fix."""
        scheduler = self.scheduler()
        engine = scheduler.engine if scheduler else None
        if engine is None or self._warned_unreachable:
            return
        if not engine.health().get("unreachable"):
            return
        self._warned_unreachable = True
        urls = ", ".join(sorted({b.url for b in self.settings().backends}))
        message = (
            f"spanlens: no model backend is reachable ({urls}). Start the model server "
            "(for Ollama: `ollama serve`) or set the backend URL in spanlens.toml "
            "([[backends]] url = ...) or in the spanlens settings. Hovers show parser facts "
            "meanwhile."
        )
        log.warning(message)
        self.edge.server.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=message)
        )

    def start_gpu_sampling(self) -> None:
        """Sample the engine's GPU state every :data:`GPU_SAMPLE_SECONDS` in a thread."""
        if self._gpu_task is None and not self._closed:
            self._gpu_task = self.edge.spawn(self._sample_gpu(), "sample GPU state")

    async def _sample_gpu(self) -> None:
        while not self._closed:
            scheduler = self.scheduler()
            engine = scheduler.engine if scheduler else None
            if engine is None or getattr(engine, "gpu", None) is None:
                sampled = None
            else:
                sampled = await asyncio.to_thread(gpu_state, engine, self.settings())
            if sampled != self.gpu:
                self.gpu = sampled
                self.mark()
            await asyncio.sleep(GPU_SAMPLE_SECONDS)

    def start_engine_sampling(self) -> None:
        """Sample the built-in engine every :data:`ENGINE_SAMPLE_SECONDS` in a thread, while
        it is the model in use."""
        if self._engine_task is None and not self._closed:
            self._engine_task = self.edge.spawn(self._sample_engine(), "sample local engine")

    async def _sample_engine(self) -> None:
        while not self._closed:
            settings = self.settings()
            sampled = None
            if backend_source(settings) == "built-in":
                sampled = await asyncio.to_thread(local_engine_state, settings.local.model)
            if sampled != self.local_engine:
                self.local_engine = sampled
                self.mark()
            await asyncio.sleep(ENGINE_SAMPLE_SECONDS)

    def show_setup_hint(self, message: str) -> None:
        """Nothing can enrich and nothing is installed: say once how to set up the model."""
        if self._setup_hint_shown:
            return
        self._setup_hint_shown = True
        log.warning(message)
        self.edge.server.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=f"spanlens: {message}")
        )

    def show_error(self, message: str, key: str | None = None) -> None:
        """An error the user must fix (bad settings); shown once per distinct ``key``."""
        log.error(message)
        key = message if key is None else key
        if key in self._errors_shown:
            return
        self._errors_shown.add(key)
        self.edge.server.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Error, message=message)
        )

    def reset_warnings(self) -> None:
        """New backends configured: warn again if these cannot be reached either."""
        self._warned_unreachable = False

    def close(self) -> None:
        """Stop sending."""
        self._closed = True
        for task in (self._gpu_task, self._engine_task, self._embedding_task):
            if task is not None:
                task.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------ events

    def document_saved(self, uri: str, path: str, lenses_moved: bool, is_open: bool) -> None:
        self.mark()

    def files_indexed(self, lenses_moved: bool) -> None:
        self._embedding_wake.set()  # new or changed spans to embed
        self.mark()

    def indexing_progress(self, done: int, total: int) -> None:
        self.mark()

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        self.check_backends()
        self._embedding_wake.set()  # new summaries: spans to embed again
        self.mark()

    def queue_changed(self) -> None:
        self._embedding_wake.set()  # a unit began or ended, the embedding job's among them
        self.mark()

    def settings_changed(self, engine_replaced: bool) -> None:
        if engine_replaced:
            self.reset_warnings()
        self._embedding_wake.set()  # the embedding endpoint may have changed
        self.mark()


def gpu_state(engine: Any, settings: Any) -> dict[str, Any] | None:
    """Whether a GPU is sampled and why local work waits for it, if it does.

    Calls NVML (blocking): run it in a thread.
    """
    gpu = getattr(engine, "gpu", None)
    if gpu is None:
        return None
    try:
        waiting = gpu.limits_exceeded(settings.gpu.min_free_vram_mb, settings.gpu.max_temperature_c)
        return {"available": bool(gpu.available), "waiting": waiting}
    except Exception as exc:
        return {"available": False, "waiting": None, "error": type(exc).__name__}


def local_engine_state(model: str) -> dict[str, Any]:
    """``localEngine`` of the status payload: the engine's model, state, memory (MiB, whole)
    and generation tokens/s (``None`` until known). Blocking: run it in a thread."""
    report = engine_report(model)
    memory = report.get("memory_mb")
    return {
        "model": report.get("model", model),
        "state": report.get("state"),
        "memory_mb": round(memory) if isinstance(memory, (int, float)) else None,
        "tokens_per_s": report.get("tokens_per_s"),
    }


def _state(snapshot: dict[str, Any], indexing: Any, engine: bool, unreachable: bool) -> str:
    """One word for status lines; protocol.md lists them."""
    if indexing is not None:
        return "indexing"
    if not engine:
        return "facts_only"
    if snapshot["paused"] == "all":
        return "paused"
    if unreachable:
        return "offline"
    if snapshot["inFlight"]:
        return "enriching"
    if any(snapshot["queue"].values()):
        return "waiting"
    return "idle"
