"""Embeddings in the server: a scheduler job after every enrichment lane and before docgen,
and an embedding of a saved file's spans right after its enrichments land.

A unit is one embedder's plan (what it has to embed, derived from the store), of which at most
:data:`UNIT_TEXTS` texts are sent; the rest waits for the next idle period. An embedder whose
breaker is open has no unit, and a unit that left spans failed holds the job back for
``failure_retry_base`` seconds: an endpoint that is down never keeps docgen from its turn.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spanlens_lsp.embedding.endpoints import Embedder, close_embedders, embedders_from_settings
from spanlens_lsp.embedding.run import (
    EmbedPlan,
    EmbedRun,
    StoreThread,
    embed_planned,
    plan_embeddings,
)
from spanlens_lsp.enrichment.call.endpoints import GpuProbe
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import Status
from spanlens_lsp.store.enrichments import Attempt, record_attempt
from spanlens_lsp.store.handle import database_version
from spanlens_lsp.store.rows import SpanRow

log = logging.getLogger(__name__)

#: Texts one idle unit sends at most (a few requests); the rest waits for the next unit.
UNIT_TEXTS = 256


class EmbeddingJob:
    """The server's embedding run: units for the scheduler, saved files at once."""

    #: After every enrichment lane (saved 0, requested 1, open 2, backlog 3), before docgen.
    lane = 4

    def __init__(
        self,
        root: Path,
        settings: Settings,
        queries: StoreThread,
        writer: StoreThread,
        *,
        gpu: GpuProbe | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """Read the index through ``queries``; write vectors and attempts through ``writer``
        (the app's writer thread)."""
        self.root = root
        self.settings = settings
        self.queries = queries
        self.writer = writer
        self.on_change = on_change
        self.embedders: list[Embedder] = embedders_from_settings(settings, self._record, gpu=gpu)
        #: The last run's outcome, and why its last call failed.
        self.last: EmbedRun | None = None
        self.last_error: str | None = None
        #: No idle unit before this (monotonic): after a unit left spans failed.
        self._not_before = 0.0
        #: By embedding model: the database version (as the ``queries`` connection sees it)
        #: at which its last plan found nothing to do. While the index is unchanged, an idle
        #: check asks SQLite for that version only.
        self._nothing_at: dict[str, tuple[int, int]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ the Job protocol

    async def next_units(self) -> list[tuple[Embedder, EmbedPlan]]:
        """The first usable embedder's plan, when it has something to embed (not planned
        again while nothing in the index changed since its plan found nothing)."""
        if time.monotonic() < self._not_before:
            return []
        for embedder in self.embedders:
            if not embedder.endpoint.usable(embedder.calls.clock()):
                continue
            version = await self.queries.run(database_version)
            if self._nothing_at.get(embedder.model) == version:
                continue
            plan = await plan_embeddings(
                self.root, embedder, self.queries, exclude=self.settings.index.exclude
            )
            if plan.texts or plan.confirmed:
                return [(embedder, plan)]
            self._nothing_at[embedder.model] = version
        return []

    async def run(self, unit: tuple[Embedder, EmbedPlan]) -> None:
        """Embed up to :data:`UNIT_TEXTS` texts of the plan; failures are logged, not raised."""
        embedder, plan = unit
        run = await embed_planned(plan, embedder, self.queries, self.writer, max_texts=UNIT_TEXTS)
        self._ran(run)

    # ------------------------------------------------------------ saved files

    def saved_enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        """A saved file's enrichments landed: embed its spans now (in a tracked task)."""
        if not self.embedders or not any(o.status == Status.ENRICHED for o in outcomes):
            return
        paths = sorted({span.path for span in spans})
        task = asyncio.get_running_loop().create_task(self.embed_paths(paths))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def embed_paths(self, paths: list[str]) -> list[EmbedRun]:
        """Bring the vectors of ``paths``' spans up to date with every usable embedder."""
        runs = []
        for embedder in self.embedders:
            if not embedder.endpoint.usable(embedder.calls.clock()):
                continue
            try:
                plan = await plan_embeddings(
                    self.root,
                    embedder,
                    self.queries,
                    paths=paths,
                    exclude=self.settings.index.exclude,
                )
                run = await embed_planned(plan, embedder, self.queries, self.writer)
            except Exception:  # a store or engine error must not end the server
                log.exception("embedding of %s failed", ", ".join(paths))
                continue
            self._ran(run)
            runs.append(run)
        return runs

    # ------------------------------------------------------------ life

    async def aclose(self) -> None:
        """Cancel embeddings in flight and close the endpoints' clients."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await close_embedders(self.embedders)

    def _ran(self, run: EmbedRun) -> None:
        self.last = run
        if run.failed:
            self.last_error = run.error
            self._not_before = time.monotonic() + self.settings.enrichment.failure_retry_base
            log.warning("%s", run.summary())
        else:
            self.last_error = None
            if run.changed:
                log.info("%s", run.summary())
        if self.on_change is not None:
            self.on_change()

    async def _record(self, attempt: Attempt) -> None:
        await self.writer.run_first(functools.partial(record_attempt, attempt=attempt))
