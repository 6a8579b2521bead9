"""Work-done progress ($/progress) for indexing and for the queue draining.

Sent only to clients that advertise ``window.workDoneProgress``. The queue's progress is
cancellable: cancelling it pauses the idle backlog (saves and requests still run).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from spanlens_lsp.lsp.edge import Edge
from spanlens_lsp.lsp.events import Listener
from spanlens_lsp.store.rows import SpanRow

if TYPE_CHECKING:
    from spanlens_lsp.scheduling.scheduler import Scheduler

log = logging.getLogger(__name__)

#: Reports closer together than this are dropped (the last state is sent at the end anyway).
REPORT_INTERVAL = 0.2
#: The queue's progress ends this long after the last call finished (no flicker between calls).
QUEUE_END_GRACE = 1.0

_tokens = itertools.count(1)


class WorkDone:
    """One progress bar; every method is a no-op without client support.

    The server creates its token, unless the request came with the client's own
    ``workDoneToken`` (``client_token``): the client made that one, so it is used as is.
    """

    def __init__(
        self,
        edge: Edge,
        title: str,
        cancellable: bool = False,
        client_token: types.ProgressToken | None = None,
    ) -> None:
        self.edge = edge
        self.title = title
        self.cancellable = cancellable
        self.client_token = client_token is not None
        self.token: types.ProgressToken = (
            client_token if client_token is not None else f"spanlens-{next(_tokens)}"
        )
        self.active = False
        self._last_report = 0.0

    async def begin(
        self, message: str | None = None, still_running: Callable[[], bool] | None = None
    ) -> bool:
        """Create the token and show the bar; False when the client cannot show one, or when
        ``still_running`` says the work ended while the client was creating the token (a bar
        must never begin after its work ended)."""
        progress = self.edge.server.work_done_progress
        if not self.client_token:
            if not self.edge.supports("window.work_done_progress"):
                return False
            try:
                await progress.create_async(self.token)
            except Exception as exc:
                log.warning("client refused a progress token: %s", exc)
                return False
        if still_running is not None and not still_running():
            progress.tokens.pop(self.token, None)
            return False
        progress.begin(
            self.token,
            types.WorkDoneProgressBegin(
                title=self.title, message=message, cancellable=self.cancellable, percentage=0
            ),
        )
        self.active = True
        return True

    def report(self, message: str, percentage: int | None = None, force: bool = False) -> None:
        """Update the bar (throttled)."""
        now = time.monotonic()
        if not self.active or (not force and now - self._last_report < REPORT_INTERVAL):
            return
        self._last_report = now
        self.edge.server.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    def end(self, message: str | None = None) -> None:
        """Close the bar."""
        if not self.active:
            return
        self.active = False
        progress = self.edge.server.work_done_progress
        progress.end(self.token, types.WorkDoneProgressEnd(message=message))
        progress.tokens.pop(self.token, None)


class QueueProgress(Listener):
    """A cancellable bar while enrichment calls run: "3 in flight, 120 queued"."""

    def __init__(self, edge: Edge, scheduler: Callable[[], Scheduler | None]) -> None:
        self.edge = edge
        self.scheduler = scheduler
        self.bar: WorkDone | None = None
        self._starting = False
        self._end_timer: asyncio.TimerHandle | None = None
        self._done = 0
        self._closed = False

    def update(self) -> None:
        """Follow the scheduler: start, report, or schedule the end of the bar."""
        scheduler = self.scheduler()
        if scheduler is None or self._closed:
            return
        snapshot = scheduler.snapshot()
        running = snapshot["inFlight"] > 0
        if running and self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        if running and self.bar is None and not self._starting:
            self._starting = True
            self.edge.spawn(self._start(), "queue progress")
            return
        if self.bar is None:
            return
        queued = sum(snapshot["queue"].values())
        message = f"{snapshot['inFlight']} in flight, {queued} queued"
        total = self._done + queued + snapshot["inFlight"]
        self.bar.report(message, self._done * 100 // total if total else None)
        if not running and self._end_timer is None:
            loop = asyncio.get_running_loop()
            self._end_timer = loop.call_later(QUEUE_END_GRACE, self._end)

    def count_done(self, spans: int) -> None:
        """Spans finished since the bar began (for the percentage)."""
        self._done += spans

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        self.count_done(len(outcomes))

    def queue_changed(self) -> None:
        self.update()

    def cancelled(self, token: types.ProgressToken) -> bool:
        """window/workDoneProgress/cancel: pause the backlog if it was this bar's token."""
        scheduler = self.scheduler()
        if self.bar is None or token != self.bar.token or scheduler is None:
            return False
        scheduler.pause("backlog")
        log.info("background enrichment paused from the progress bar")
        self._end("paused")
        return True

    def close(self) -> None:
        """Shutdown: end the bar now."""
        self._closed = True
        self._end("stopped")

    def _running(self) -> bool:
        scheduler = self.scheduler()
        if scheduler is None or self._closed or self.edge.closing:
            return False
        return scheduler.snapshot()["inFlight"] > 0

    async def _start(self) -> None:
        bar = WorkDone(self.edge, "spanlens: enriching", cancellable=True)
        try:
            # The client answers the token's creation when it likes; by then the calls may be
            # over (no bar then: the next call starts a new one) or the server shutting down.
            if await bar.begin("starting", still_running=self._running):
                self.bar = bar
                self._done = 0
        finally:
            self._starting = False
        self.update()

    def _end(self, message: str | None = None) -> None:
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        if self.bar is not None:
            self.bar.end(message or f"{self._done} spans done")
            self.bar = None
