"""workspace/executeCommand: the spanlens.* commands (arguments and results in protocol.md).

Each command takes at most one argument, a JSON object, and returns a JSON object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcInvalidParams

from spanlens_lsp.lsp.edge import Edge
from spanlens_lsp.presentation.markdown import inline_markdown, render_markdown, render_plaintext
from spanlens_lsp.presentation.state import FRESH, SpanView
from spanlens_lsp.scheduling.queue import Priority
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.enrichments import enrichment_for
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.workspace.report import span_counts

if TYPE_CHECKING:
    from spanlens_lsp.docgen.job import DocgenJob
    from spanlens_lsp.lsp.status import StatusReporter
    from spanlens_lsp.scheduling.scheduler import Scheduler
    from spanlens_lsp.settings import Settings
    from spanlens_lsp.store.handle import Store
    from spanlens_lsp.store.worker import StoreWorker

ENRICH_FILE = "spanlens.enrichFile"
ENRICH_SPAN = "spanlens.enrichSpan"
RETRY_FAILED = "spanlens.retryFailed"
PAUSE = "spanlens.pause"
RESUME = "spanlens.resume"
SHOW_SPAN = "spanlens.showSpan"
STATUS_REPORT = "spanlens.statusReport"


class CommandError(JsonRpcInvalidParams):
    """Bad arguments; reported to the client as the request's error (InvalidParams)."""


def argument(args: tuple[Any, ...]) -> dict[str, Any]:
    """The single object argument of a command ({} when none was given)."""
    if not args:
        return {}
    if len(args) > 1 or not isinstance(args[0], dict):
        raise CommandError("spanlens commands take one JSON object argument")
    return args[0]


#: Positions past this are no position (SQLite integers would overflow).
_MAX_POSITION = 2**31 - 1


def _is_int(value: Any) -> bool:
    """A JSON integer that can be a position or an id (not a bool, not negative)."""
    return type(value) is int and 0 <= value <= _MAX_POSITION


@dataclass(frozen=True, slots=True)
class Started:
    """What the commands use once the workspace is open."""

    store: Store
    scheduler: Scheduler
    indexer: StoreWorker
    queries: StoreWorker
    docgen: DocgenJob


class Commands:
    """The spanlens.* commands, given what they use (``started`` is None until the workspace
    opens), the settings in force, what a span shows, and the status they report."""

    def __init__(
        self,
        edge: Edge,
        started: Callable[[], Started | None],
        settings: Callable[[], Settings],
        view: Callable[[SpanRow], SpanView],
        status: StatusReporter,
    ) -> None:
        self.edge = edge
        self.started = started
        self.settings = settings
        self.view = view
        self.status = status

    def _started(self) -> Started:
        started = self.started()
        if started is None:
            raise CommandError(self.edge.not_ready())
        return started

    def target_span(self, arg: dict[str, Any]) -> SpanRow:
        """The span named by ``{"spanId": n}`` or ``{"uri": ..., "line": l, "character": c}``."""
        store = self._started().store
        span = None
        character = arg.get("character")
        if _is_int(arg.get("spanId")):
            span = store.span_by_id(arg["spanId"])
        elif (
            isinstance(arg.get("uri"), str)
            and _is_int(arg.get("line"))
            and (character is None or _is_int(character))
        ):
            path = self.edge.path_of(arg["uri"])
            if path is not None:
                span = store.span_at(path, arg["line"], character)
        else:
            raise CommandError('expected {"spanId": n} or {"uri": ..., "line": n, "character": n}')
        if span is None:
            raise CommandError("no span there (it may have changed)")
        return span

    def enrich_file(self, arg: dict[str, Any]) -> dict[str, Any]:
        """Queue every span of a file that has no fresh enrichment, ahead of background
        work."""
        started = self._started()
        uri = arg.get("uri")
        path = self.edge.path_of(uri) if isinstance(uri, str) else None
        if path is None:
            raise CommandError('expected {"uri": <a file in the workspace>}')
        ids = [
            span.id
            for span in started.store.spans_in_file(path)
            if enrichment_for(started.store, span.content_hash, ENRICHMENT_VERSION) is None
        ]
        started.scheduler.push(ids, Priority.REQUESTED, explicit=True)
        return {"queued": len(ids)}

    def enrich_span(self, arg: dict[str, Any]) -> dict[str, Any]:
        """Queue one span now (even while background work is paused)."""
        span = self.target_span(arg)
        if self.view(span).state == FRESH:
            return {"queued": 0, "spanId": span.id}
        self._started().scheduler.push([span.id], Priority.REQUESTED, explicit=True)
        return {"queued": 1, "spanId": span.id}

    async def retry_failed(self, arg: dict[str, Any]) -> dict[str, Any]:
        """Forget failure records (of one file, or all) so those spans are tried again now."""
        from spanlens_lsp.store.enrichments import retry_failed as clear

        started = self._started()
        paths = None
        if "uri" in arg:
            uri = arg["uri"]
            path = self.edge.path_of(uri) if isinstance(uri, str) else None
            if path is None:
                raise CommandError("that file is outside the workspace")
            paths = [path]
        cleared = await started.indexer.run(lambda store: clear(store, paths))
        started.scheduler.invalidate_backlog()
        if paths is not None:
            await started.scheduler.queue_pending_of(paths, Priority.REQUESTED)
        return {"retried": cleared}

    def pause(self) -> dict[str, Any]:
        """Pause all background enrichment (commands still run)."""
        started = self.started()
        if started is not None:
            started.scheduler.pause("all")
        self.status.mark()
        return self.status.payload()

    def resume(self) -> dict[str, Any]:
        """Resume background enrichment."""
        started = self.started()
        if started is not None:
            started.scheduler.resume()
        self.status.mark()
        return self.status.payload()

    def show_span(self, arg: dict[str, Any]) -> dict[str, Any]:
        """Everything about one span: Markdown and plain text as the hover, and the raw
        view."""
        view = self.view(self.target_span(arg))
        return {
            "uri": self.edge.uri_of(view.span.path),
            "markdown": render_markdown(view),
            "plaintext": render_plaintext(view),
            "span": view.as_json(),
        }

    async def status_report(self) -> dict[str, Any]:
        """The status payload plus workspace-wide enrichment counts and a Markdown summary."""
        started = self.started()
        status = self.status.payload()
        if started is None:
            return {"status": status, "counts": None, "markdown": "spanlens is starting"}
        await started.docgen.refresh_coverage()
        status = self.status.payload()
        settings = self.settings()
        max_failures = settings.enrichment.max_failures
        counts = await started.queries.run(lambda store: span_counts(store, max_failures))
        return {
            "status": status,
            "counts": counts,
            "docgen": status.get("docgen"),
            "markdown": report_markdown(status, counts, self.edge.root, settings.sources),
        }


def report_markdown(
    status: dict[str, Any], counts: dict[str, Any], root: Any, sources: list[str]
) -> str:
    """The statusReport's Markdown summary."""
    lines = [
        f"**spanlens** · {status['state']} · {root}",
        "",
        f"- spans: {counts['spans']} ({counts['fresh']} enriched, {counts['stale']} stale, "
        f"{counts['pending']} pending, {counts['failed']} failed)",
        "- queue: " + ", ".join(f"{k} {v}" for k, v in status["queue"].items()),
        f"- in flight: {status['inFlight']}; paused: {status['paused'] or 'no'}",
        f"- last error: {inline_markdown(status['lastError'] or 'none', at_line_start=False)}",
        "- settings from: " + ", ".join(sources),
    ]
    backends = status.get("backends") or {}
    endpoints = backends.get("endpoints") or []
    if not endpoints:
        lines.append("- backends: none (facts only)")
    for endpoint in endpoints:
        lines.append(
            f"- backend {inline_markdown(endpoint.get('name'), at_line_start=False)}: "
            + inline_markdown(
                ", ".join(f"{k}={v}" for k, v in endpoint.items() if k != "name"),
                at_line_start=False,
            )
        )
    if backends.get("unreachable"):
        lines.append("- no backend is reachable")
    lines.append(embeddings_markdown(status.get("embeddings")))
    docgen = status.get("docgen")
    if docgen:
        lines.append(
            f"- docs: {docgen['fresh']} fresh, {docgen['stale']} stale, {docgen['missing']} "
            f"missing, {docgen['waiting']} waiting for enrichment"
        )
    return "\n".join(lines)


def embeddings_markdown(embeddings: dict[str, Any] | None) -> str:
    """The statusReport's line about the embedding model (``embeddings`` of the status)."""
    if embeddings is None:
        return "- embeddings: none (search by keywords)"
    model = inline_markdown(embeddings["model"], at_line_start=False)
    counts = (
        "not counted yet"
        if embeddings["embedded"] is None
        else f"{embeddings['embedded']} embedded, {embeddings['pending']} pending"
    )
    line = f"- embeddings: {model} ({embeddings['source']}): {counts}"
    if embeddings["running"]:
        line += ", embedding now"
    engine = embeddings.get("engine")
    if engine:
        line += f"; engine {engine.get('state')}"
    if embeddings["last_error"]:
        line += "; last error: " + inline_markdown(embeddings["last_error"], at_line_start=False)
    return line
