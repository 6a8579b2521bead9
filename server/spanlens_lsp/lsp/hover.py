"""Hover: the innermost span under the cursor, rendered from the store; never waits on a model.

Hovering a span that is pending or stale moves it up the queue (priority "requested").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types

from spanlens_lsp.lsp.edge import Edge, span_range
from spanlens_lsp.presentation.markdown import render_markdown, render_plaintext
from spanlens_lsp.presentation.state import PENDING, STALE, SpanView
from spanlens_lsp.scheduling.queue import Priority
from spanlens_lsp.store.rows import SpanRow

if TYPE_CHECKING:
    from spanlens_lsp.scheduling.scheduler import Scheduler
    from spanlens_lsp.store.handle import Store


class Hover:
    """textDocument/hover, given the store and the scheduler (None until the workspace opens)
    and what a span shows."""

    def __init__(
        self,
        edge: Edge,
        store: Callable[[], Store | None],
        scheduler: Callable[[], Scheduler | None],
        view: Callable[[SpanRow], SpanView],
    ) -> None:
        self.edge = edge
        self.store = store
        self.scheduler = scheduler
        self.view = view

    def hover(self, params: types.HoverParams) -> types.Hover | None:
        """The hover of the span at ``params.position``, or None outside every span."""
        store, scheduler = self.store(), self.scheduler()
        path = self.edge.path_of(params.text_document.uri)
        if store is None or scheduler is None or path is None:
            return None
        position = params.position
        span = store.span_at(path, position.line, position.character)
        if span is None:
            return None
        view = self.view(span)
        if view.state in (PENDING, STALE):
            scheduler.push([span.id], Priority.REQUESTED)
        if prefers_markdown(self.edge):
            content = types.MarkupContent(types.MarkupKind.Markdown, render_markdown(view))
        else:
            content = types.MarkupContent(types.MarkupKind.PlainText, render_plaintext(view))
        return types.Hover(contents=content, range=span_range(span))


def prefers_markdown(edge: Edge) -> bool:
    """Whether the client lists Markdown before plain text in hover.contentFormat."""
    caps = edge.server.client_capabilities
    hover_caps = caps.text_document.hover if caps.text_document else None
    formats = list(hover_caps.content_format or []) if hover_caps else []
    if not formats:
        return True
    for kind in formats:
        if kind == types.MarkupKind.Markdown:
            return True
        if kind == types.MarkupKind.PlainText:
            return False
    return True
