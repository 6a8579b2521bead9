"""The one fan-out of what happens in the workspace, to the features that show it.

A feature subclasses :class:`Listener` and overrides the events it cares about; the session
subscribes it to the :class:`Events`, which the emitters (document sync, the scheduler's
callbacks, the settings reload) call. Listeners hear an event in the order they subscribed.
A listener that raises is logged and the others still hear the event (esbonio's
``call_features``): one broken feature never silences diagnostics, lenses or status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from spanlens_lsp.store.rows import SpanRow

log = logging.getLogger(__name__)


class Listener:
    """What a feature can hear; every event does nothing unless overridden."""

    def document_opened(self, uri: str, path: str) -> None:
        """The editor opened ``uri`` (workspace-relative ``path``)."""

    def document_closed(self, uri: str) -> None:
        """The editor closed an open document."""

    def document_indexed(self, uri: str, path: str, lenses_moved: bool) -> None:
        """An open document's latest text is in the index (``lenses_moved``: spans were
        added, moved or went stale, or it was just opened)."""

    def document_saved(self, uri: str, path: str, lenses_moved: bool, is_open: bool) -> None:
        """A save was indexed and its changed spans queued first."""

    def files_indexed(self, lenses_moved: bool) -> None:
        """Files were indexed from disk (the workspace walk, or changes outside the editor)."""

    def indexing_progress(self, done: int, total: int) -> None:
        """The workspace walk indexed ``done`` of ``total`` changed files."""

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        """Enrichment outcomes landed (``outcomes`` of the scheduler, for ``spans``)."""

    def queue_changed(self) -> None:
        """The queue or the calls in flight changed."""

    def settings_changed(self, engine_replaced: bool) -> None:
        """New settings are in force (``engine_replaced``: new backends or enrichment)."""


class Events(Listener):
    """Fans each event out to every subscribed listener, isolating their failures."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, *listeners: Listener) -> None:
        """Let ``listeners`` hear every event from now on, in this order."""
        self._listeners.extend(listeners)

    def _fan_out(self, event: str, call: Callable[[Listener], None]) -> None:
        for listener in list(self._listeners):
            try:
                call(listener)
            except Exception:
                log.exception("%s failed on %s", type(listener).__name__, event)

    def document_opened(self, uri: str, path: str) -> None:
        self._fan_out("document_opened", lambda x: x.document_opened(uri, path))

    def document_closed(self, uri: str) -> None:
        self._fan_out("document_closed", lambda x: x.document_closed(uri))

    def document_indexed(self, uri: str, path: str, lenses_moved: bool) -> None:
        self._fan_out("document_indexed", lambda x: x.document_indexed(uri, path, lenses_moved))

    def document_saved(self, uri: str, path: str, lenses_moved: bool, is_open: bool) -> None:
        self._fan_out(
            "document_saved", lambda x: x.document_saved(uri, path, lenses_moved, is_open)
        )

    def files_indexed(self, lenses_moved: bool) -> None:
        self._fan_out("files_indexed", lambda x: x.files_indexed(lenses_moved))

    def indexing_progress(self, done: int, total: int) -> None:
        self._fan_out("indexing_progress", lambda x: x.indexing_progress(done, total))

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        self._fan_out("enriched", lambda x: x.enriched(spans, outcomes))

    def queue_changed(self) -> None:
        self._fan_out("queue_changed", lambda x: x.queue_changed())

    def settings_changed(self, engine_replaced: bool) -> None:
        self._fan_out("settings_changed", lambda x: x.settings_changed(engine_replaced))
