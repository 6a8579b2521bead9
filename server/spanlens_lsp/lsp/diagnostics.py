"""Pitfall diagnostics: one per pitfall of a freshly enriched span, on the span's name, each
message ending with the model that wrote it.

Only fresh enrichments produce diagnostics, so a span's pitfalls disappear as soon as its code
changes, and come back when the new enrichment lands. Published for open documents only,
when they are indexed or saved, when enrichments land and when the settings change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from spanlens_lsp.lsp.edge import Edge, name_range
from spanlens_lsp.lsp.events import Listener
from spanlens_lsp.presentation.state import FRESH, SpanView, model_label
from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.store.rows import SpanRow

if TYPE_CHECKING:
    from spanlens_lsp.settings import Settings
    from spanlens_lsp.store.handle import Store

SOURCE = "spanlens"
_SEVERITY = {
    "hint": types.DiagnosticSeverity.Hint,
    "information": types.DiagnosticSeverity.Information,
}


class DiagnosticsPublisher(Listener):
    """Computes and publishes pitfall diagnostics per open document."""

    def __init__(
        self,
        edge: Edge,
        store: Callable[[], Store | None],
        settings: Callable[[], Settings],
        view: Callable[[SpanRow], SpanView],
    ) -> None:
        self.edge = edge
        self.store = store
        self.settings = settings
        self.view = view
        #: uri -> workspace-relative path of each open document.
        self.open: dict[str, str] = {}

    def diagnostics_for(self, path: str) -> list[types.Diagnostic]:
        """The pitfall diagnostics of one file under the current setting."""
        store = self.store()
        severity = _SEVERITY.get(self.settings().lsp.diagnostics)
        if store is None or severity is None:
            return []
        result = []
        for span in store.spans_in_file(path, with_facts=False):
            view = self.view(span)
            if view.state != FRESH or not view.enrichment:
                continue
            model = model_label(view.enrichment)
            by = f" · {model}" if model else ""
            for pitfall in view.enrichment["data"].get("pitfalls") or []:
                result.append(
                    types.Diagnostic(
                        range=name_range(span),
                        message=clean_text(f"{span.name}: {pitfall}{by}", one_line=True),
                        severity=severity,
                        source=SOURCE,
                        code="pitfall",
                        data={"spanId": span.id},
                    )
                )
        return result

    def publish(self, uri: str, path: str) -> None:
        """Publish (or clear) one document's diagnostics."""
        self.edge.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=self.diagnostics_for(path))
        )

    def publish_paths(self, paths: list[str]) -> None:
        """Re-publish the open documents among ``paths``."""
        wanted = set(paths)
        for uri, path in list(self.open.items()):
            if path in wanted:
                self.publish(uri, path)

    def publish_open(self) -> None:
        """Re-publish every open document (after a settings change)."""
        for uri, path in list(self.open.items()):
            self.publish(uri, path)

    def clear(self, uri: str) -> None:
        """Remove a document's diagnostics (closed)."""
        self.edge.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    # ------------------------------------------------------------ events

    def document_opened(self, uri: str, path: str) -> None:
        self.open[uri] = path

    def document_closed(self, uri: str) -> None:
        if self.open.pop(uri, None) is not None:
            self.clear(uri)

    def document_indexed(self, uri: str, path: str, lenses_moved: bool) -> None:
        self.publish(uri, path)

    def document_saved(self, uri: str, path: str, lenses_moved: bool, is_open: bool) -> None:
        if is_open:
            self.publish(uri, path)

    def enriched(self, spans: list[SpanRow], outcomes: list[Any]) -> None:
        if any(o.status == "enriched" for o in outcomes):
            self.publish_paths(sorted({s.path for s in spans}))

    def settings_changed(self, engine_replaced: bool) -> None:
        self.publish_open()
