"""Code lenses: one per span (all, top-level only, or off), carrying data only.

``textDocument/codeLens`` answers from span positions alone, once the document's latest
text is indexed; ``codeLens/resolve`` fills the title from the store (the span's state now).
When lenses change (a buffer indexed, spans gone stale, the workspace index done, enrichments
landed) the server sends ``workspace/codeLens/refresh`` to clients that support it (others
get the ``spanlens/enriched`` notification when enrichments land, and a right answer on
their next request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from spanlens_lsp.lsp.edge import Edge, name_range
from spanlens_lsp.lsp.events import Listener
from spanlens_lsp.presentation.state import (
    FACTS_ONLY,
    FAILED,
    FRESH,
    PENDING,
    STALE,
    SpanView,
    model_label,
)
from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow

if TYPE_CHECKING:
    from spanlens_lsp.settings import Settings

log = logging.getLogger(__name__)

#: Command run when a lens is clicked.
SHOW_SPAN = "spanlens.showSpan"
#: Longest summary excerpt in a lens title.
TITLE_SUMMARY_CHARS = 60
#: Refresh requests closer together than this are merged.
REFRESH_DELAY = 0.15
#: Sent when enrichments land: the documents and spans whose views changed.
ENRICHED_METHOD = "spanlens/enriched"


class CodeLenses:
    """textDocument/codeLens and codeLens/resolve, given the store, the settings, what a
    span shows, and how to wait until an open document's latest text is indexed."""

    def __init__(
        self,
        edge: Edge,
        store: Callable[[], Store | None],
        settings: Callable[[], Settings],
        view: Callable[[SpanRow], SpanView],
        wait_indexed: Callable[[str], Awaitable[None]],
    ) -> None:
        self.edge = edge
        self.store = store
        self.settings = settings
        self.view = view
        self.wait_indexed = wait_indexed

    async def code_lenses(self, uri: str) -> list[types.CodeLens]:
        """Unresolved lenses for the spans of one document, under the ``lsp.code_lens``
        setting; an open document's pending index is awaited first (briefly, see
        ``wait_indexed``). Empty for documents spanlens does not index (outside the
        workspace, ignored, no root)."""
        await self.wait_indexed(uri)
        store = self.store()
        path = self.edge.path_of(uri)
        if store is None or path is None:
            return []
        mode = self.settings().lsp.code_lens
        if mode == "off":
            return []
        spans = store.spans_in_file(path, with_facts=False)
        if mode == "top":
            spans = top_level(spans)
        return [
            types.CodeLens(
                range=name_range(span),
                data={"spanId": span.id, "uri": uri},
            )
            for span in spans
        ]

    def resolve_lens(self, lens: types.CodeLens) -> types.CodeLens:
        """Fill a lens's title from the store (the span as it is now). A lens whose ``data``
        this server did not write is InvalidParams."""
        store = self.store()
        data = lens.data if isinstance(lens.data, dict) else {}
        span_id = data.get("spanId")
        if type(span_id) is not int:
            raise JsonRpcInvalidParams('codeLens/resolve: expected data {"spanId": <integer>, ...}')
        span = store.span_by_id(span_id) if store else None
        if span is None:
            title = "spanlens: changed, re-indexing"
            lens.command = types.Command(title=title, command="")
            return lens
        lens.command = types.Command(
            title=clean_text(lens_title(self.view(span)), one_line=True),
            command=SHOW_SPAN,
            arguments=[{"spanId": span.id}],
        )
        return lens


def lens_title(view: SpanView) -> str:
    """One short line: summary start, pitfall count and the model that wrote them, or the
    state."""
    data: dict[str, Any] = (view.enrichment or {}).get("data") or {}
    summary = " ".join(str(data.get("summary", "")).split())
    if len(summary) > TITLE_SUMMARY_CHARS:
        summary = summary[: TITLE_SUMMARY_CHARS - 1].rstrip() + "…"
    pitfalls = len(data.get("pitfalls") or [])
    warn = f" · ⚠ {pitfalls} pitfall{'s' if pitfalls != 1 else ''}" if pitfalls else ""
    model = model_label(view.enrichment)
    by = f" · {model}" if model else ""
    if view.state == FRESH:
        return f"{summary}{warn}{by}" if summary else f"enriched{warn}{by}"
    if view.state == STALE:
        return f"↻ stale: {summary}{by}" if summary else f"↻ stale: re-enriching{by}"
    if view.state == FAILED:
        reason = (view.failure or {}).get("last_error") or "unknown error"
        return f"✗ enrichment failed: {reason}"
    if view.state == FACTS_ONLY:
        return "facts only: no model configured"
    if view.state == PENDING and view.failure:
        return "… pending (retrying after an error)"
    return "… pending enrichment"


def top_level(spans: list[SpanRow]) -> list[SpanRow]:
    """Spans not nested in another span of the same file (``spans`` in source order)."""
    result: list[SpanRow] = []
    end: tuple[int, int] | None = None
    for span in spans:
        start = (span.start_line, span.start_col)
        if end is not None and start < end:
            continue
        result.append(span)
        end = (span.end_line, span.end_col)
    return result


class LensRefresher(Listener):
    """Merges refresh requests into one workspace/codeLens/refresh, if the client has it, and
    tells every client which spans were enriched (``spanlens/enriched``)."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self._timer: asyncio.TimerHandle | None = None

    def supported(self) -> bool:
        """Whether the client advertises ``workspace.codeLens.refreshSupport``."""
        return self.edge.supports("workspace.code_lens.refresh_support")

    def refresh(self) -> None:
        """Ask the client to re-request lenses soon."""
        if self._timer is not None or not self.supported():
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(REFRESH_DELAY, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if not self.edge.closing:
            self.edge.spawn(self._send(), "code lens refresh")

    async def _send(self) -> None:
        try:
            await self.edge.server.workspace_code_lens_refresh_async(None)
        except Exception as exc:
            log.warning("workspace/codeLens/refresh failed: %s", exc)

    # ------------------------------------------------------------ events

    def document_indexed(self, uri: str, path: str, lenses_moved: bool) -> None:
        if lenses_moved:
            self.refresh()

    def document_saved(self, uri: str, path: str, lenses_moved: bool, is_open: bool) -> None:
        if lenses_moved:
            self.refresh()

    def files_indexed(self, lenses_moved: bool) -> None:
        if lenses_moved:
            self.refresh()

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        enriched = [o.span_id for o in outcomes if o.status == "enriched"]
        if not enriched:
            return
        self.refresh()
        paths = sorted({s.path for s in spans})
        self.edge.server.protocol.notify(
            ENRICHED_METHOD,
            {"uris": [self.edge.uri_of(p) for p in paths], "spanIds": enriched},
        )

    def settings_changed(self, engine_replaced: bool) -> None:
        self.refresh()
