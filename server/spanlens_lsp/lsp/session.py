"""One workspace as the server sees it: builds the services and the features, and wires them.

Features get an :class:`~spanlens_lsp.lsp.edge.Edge`, the services they use and the events they
hear (:mod:`spanlens_lsp.lsp.events`) passed in here; none of them imports this module.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from spanlens_lsp.app import (
    Services,
    build_services,
    close_services,
    replace_docgen,
    replace_embedding,
    replace_engine,
    workspace_settings,
)
from spanlens_lsp.embedding.builtin import embedding_endpoints
from spanlens_lsp.embedding.endpoints import Embedder
from spanlens_lsp.enrichment.backends.defaults import (
    FACTS_ONLY_NOTE,
    backend_source,
    resolve_default_backends,
)
from spanlens_lsp.lsp.commands import Commands, Started
from spanlens_lsp.lsp.diagnostics import DiagnosticsPublisher
from spanlens_lsp.lsp.docs import DocCommands
from spanlens_lsp.lsp.documents import DocumentSync
from spanlens_lsp.lsp.edge import Edge
from spanlens_lsp.lsp.events import Events
from spanlens_lsp.lsp.hover import Hover
from spanlens_lsp.lsp.lenses import CodeLenses, LensRefresher
from spanlens_lsp.lsp.model_install import ModelInstalls
from spanlens_lsp.lsp.progress import QueueProgress
from spanlens_lsp.lsp.settings import merge_editor_settings, pull_section
from spanlens_lsp.lsp.status import StatusReporter
from spanlens_lsp.lsp.symbols import SymbolSearch
from spanlens_lsp.presentation.state import SpanView, span_view
from spanlens_lsp.scheduling.scheduler import DRAIN_SECONDS
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.rows import SpanRow

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Shown once when the client gave no workspace folder and no rootUri (a single file opened).
NO_ROOT_MESSAGE = (
    "spanlens: no workspace folder, so spanlens is inactive for this session (its index "
    "lives in <folder>/.spanlens). Open a folder instead of a single file (VS Code: File > "
    "Open Folder), or give the client a root (Neovim: root_dir or root_markers, e.g. .git)."
)


class Session:
    """The server's state for one workspace root."""

    def __init__(self, server: LanguageServer, root: Path | None, init_options: Any) -> None:
        self.server = server
        self.root = root
        self.init_options = init_options if isinstance(init_options, dict) else {}
        #: The last ``spanlens`` configuration section the client gave (pulled or pushed).
        self.editor_section: dict[str, Any] | None = None
        self.services: Services | None = None
        self.ready = asyncio.Event()
        self.edge = Edge(server, root)
        self.events = Events()
        # The one place features get what they use. The services exist only once the
        # workspace is open (and settings and docgen are replaced by a settings change), so
        # each feature gets a small provider per thing it uses: None until then.
        store = self._provider(lambda s: s.store)
        scheduler = self._provider(lambda s: s.scheduler)
        indexer = self._provider(lambda s: s.indexer)
        queries = self._provider(lambda s: s.queries)
        docgen = self._provider(lambda s: s.docgen)
        embedding = self._provider(lambda s: s.embedding)
        settings, view, edge = self._settings, self.view, self.edge
        # What renders a whole hover reads a class's methods too; lenses and diagnostics not.
        full_view = functools.partial(self.view, with_methods=True)
        self.documents = DocumentSync(edge, self.events, self.ready, scheduler, indexer, settings)
        self.diagnostics = DiagnosticsPublisher(edge, store, settings, view)
        self.lenses = LensRefresher(edge)
        self.code_lenses = CodeLenses(edge, store, settings, view, self.documents.wait_indexed)
        self.hover = Hover(edge, store, scheduler, full_view)
        self.symbols = SymbolSearch(edge, queries, settings, self._embedders)
        self.status = StatusReporter(
            edge, scheduler, docgen, settings, self.documents.status_fields, embedding, queries
        )
        self.progress = QueueProgress(edge, scheduler)
        self.commands = Commands(edge, self._started, settings, full_view, self.status)
        self.docs = DocCommands(edge, docgen)
        self.model_installs = ModelInstalls(
            edge,
            settings,
            lambda: self.services is not None,
            lambda: self.reload_settings(self.editor_section),
            lambda: bool(self._embedders()),
        )
        # In this order: the bar counts first, the client hears diagnostics before
        # ``spanlens/enriched``, and the status goes out last.
        self.events.subscribe(
            self.progress, self.diagnostics, self.lenses, self.documents, self.status
        )

    def _provider(self, pick: Callable[[Services], T]) -> Callable[[], T | None]:
        return lambda: pick(self.services) if self.services is not None else None

    def _settings(self) -> Settings:
        return self.settings

    def _embedders(self) -> list[Embedder]:
        # The embedding job's long-lived embedders (one HTTP client each, closed with it).
        return self.services.embedding.embedders if self.services is not None else []

    def _started(self) -> Started | None:
        services = self.services
        if services is None:
            return None
        return Started(
            services.store,
            services.scheduler,
            services.indexer,
            services.queries,
            services.docgen,
        )

    # ------------------------------------------------------------ lifecycle

    @property
    def settings(self) -> Settings:
        """The settings in force (defaults until the services exist)."""
        return self.services.settings if self.services else Settings()

    def offers_model_setup(self) -> bool:
        """Whether the client shows its own "set up the local model" guidance (client
        capability ``experimental.spanlens.modelSetup``, protocol.md)."""
        experimental = self.server.client_capabilities.experimental
        spanlens = experimental.get("spanlens") if isinstance(experimental, dict) else None
        return isinstance(spanlens, dict) and spanlens.get("modelSetup") is True

    async def start(self) -> None:
        """After ``initialized``: read settings, build services, index in the background."""
        if self.root is None:
            # Serving the file's own folder would create .spanlens in whatever folder the
            # file happens to be in (a download folder, /tmp, home): say so and stay inactive.
            log.warning("no workspace folder or rootUri: spanlens stays inactive")
            self.server.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message=NO_ROOT_MESSAGE)
            )
            self.status.mark()
            return
        self.editor_section = await pull_section(self.server)
        settings, error = workspace_settings(self.root, self._overrides())
        if error:
            self.status.show_error(
                f"spanlens: invalid setting: {error}. {fallback_description(settings)}", error
            )
        settings = await resolve_default_backends(settings)
        if backend_source(settings) == "none":
            if self.offers_model_setup():
                log.warning("%s", FACTS_ONLY_NOTE)  # the client offers the install itself
            else:
                self.status.show_setup_hint(FACTS_ONLY_NOTE)
        self.services = build_services(self.root, settings, self.documents.source_text)
        scheduler = self.services.scheduler
        scheduler.on_result = self.on_enriched
        scheduler.on_change = self.on_queue_change
        self.services.docgen.on_change = self.on_queue_change
        scheduler.start()
        self.status.start_gpu_sampling()
        self.status.start_engine_sampling()
        self.status.start_embedding_sampling()
        log.info("workspace %s; settings from %s", self.root, ", ".join(settings.sources))
        for note in settings.notes:
            log.warning("%s", note)
        self.ready.set()
        await self.documents.register_watchers()
        self.edge.spawn(self.documents.index_workspace(), "index workspace")
        self.status.mark()

    async def reload_settings(self, pushed: dict[str, Any] | None) -> None:
        """didChangeConfiguration: re-read the editor's settings and apply what changed."""
        if self.services is None:
            return
        self.editor_section = pushed if pushed is not None else await pull_section(self.server)
        old = self.services.settings
        settings, error = workspace_settings(self.services.root, self._overrides())
        if error:
            self.status.show_error(
                f"spanlens: invalid setting: {error}. Kept the previous settings.", error
            )
            return
        settings = await resolve_default_backends(settings)
        self.services.settings = settings
        self.services.scheduler.update_settings(settings)
        engine_replaced = (old.backends, old.enrichment, old.gpu) != (
            settings.backends,
            settings.enrichment,
            settings.gpu,
        )
        if engine_replaced:
            replace_engine(self.services, settings, self.documents.source_text)
        if (old.backends, old.enrichment, old.docgen) != (
            settings.backends,
            settings.enrichment,
            settings.docgen,
        ):
            replace_docgen(self.services, settings)
        in_force = [embedder.settings for embedder in self.services.embedding.embedders]
        if old.embeddings != settings.embeddings or in_force != embedding_endpoints(settings):
            # New [[embeddings]], or the built-in embedding model was installed or removed.
            replace_embedding(self.services, settings)
        log.info("settings reloaded from %s", ", ".join(settings.sources))
        for note in settings.notes:
            log.warning("%s", note)
        self.events.settings_changed(engine_replaced)

    def _overrides(self) -> dict[str, Any]:
        return merge_editor_settings(self.init_options, self.editor_section)

    async def close(self) -> None:
        """Shutdown: stop indexing, drain the queue, close everything; no task left behind."""
        self.edge.closing = True
        self.documents.cancel_timers()
        self.progress.close()
        self.model_installs.close()
        self.status.close()
        tasks = self.edge.running_tasks()
        services = self.services
        if services is not None:
            await close_services_after(services, tasks)
        else:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------ events from the scheduler

    def on_enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        """Results landed: every feature that shows them hears it."""
        if not self.edge.closing:
            self.events.enriched(spans, outcomes)

    def on_queue_change(self) -> None:
        """The queue or the calls in flight changed."""
        if not self.edge.closing:
            self.events.queue_changed()

    # ------------------------------------------------------------ given to features

    def view(self, span: SpanRow, with_methods: bool = False) -> SpanView:
        """What the user is shown about ``span`` (state, enrichment, failure; with
        ``with_methods``, a class's methods' enrichments, which only a hover renders)."""
        assert self.services is not None
        settings = self.services.settings
        models = self.services.scheduler.engine is not None
        return span_view(
            self.services.store,
            span,
            max_failures=settings.enrichment.max_failures,
            models_configured=models,
            with_methods=with_methods,
        )


def fallback_description(settings: Settings) -> str:
    """What is in force after an invalid setting (see ``workspace_settings``)."""
    if settings.sources == ["defaults"]:
        return "Using the defaults."
    return "Ignored the editor's spanlens settings; using " + ", ".join(settings.sources) + "."


async def close_services_after(
    services: Services, tasks: list[asyncio.Task[Any]], budget: float = DRAIN_SECONDS
) -> None:
    """Let indexing see the shutdown flag and stop while calls in flight drain, both within
    ``budget`` seconds (protocol.md: Shutdown), then close the services."""
    drain = asyncio.get_running_loop().create_task(services.scheduler.aclose(budget))
    if tasks:
        _, running = await asyncio.wait(tasks, timeout=budget)
        for task in running:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(drain, return_exceptions=True)
    await close_services(services)
