"""workspace/executeCommand: the spanlens.* commands (arguments and results in protocol.md).

Each command takes at most one argument, a JSON object, and returns a JSON object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pygls.exceptions import JsonRpcInvalidParams

from spanlens.enrichment.version import ENRICHMENT_VERSION
from spanlens.presentation.markdown import inline_markdown, render_markdown, render_plaintext
from spanlens.presentation.state import FRESH
from spanlens.scheduling.queue import Priority
from spanlens.store.db import SpanRow
from spanlens.workspace.report import span_counts

if TYPE_CHECKING:
    from spanlens.lsp.session import Session

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


def target_span(session: Session, arg: dict[str, Any]) -> SpanRow:
    """The span named by ``{"spanId": n}`` or ``{"uri": ..., "line": l, "character": c}``."""
    services = session.services
    if services is None:
        raise CommandError(session.not_ready())
    span = None
    character = arg.get("character")
    if _is_int(arg.get("spanId")):
        span = services.store.span_by_id(arg["spanId"])
    elif (
        isinstance(arg.get("uri"), str)
        and _is_int(arg.get("line"))
        and (character is None or _is_int(character))
    ):
        path = session.path_of(arg["uri"])
        if path is not None:
            span = services.store.span_at(path, arg["line"], character)
    else:
        raise CommandError('expected {"spanId": n} or {"uri": ..., "line": n, "character": n}')
    if span is None:
        raise CommandError("no span there (it may have changed)")
    return span


def enrich_file(session: Session, arg: dict[str, Any]) -> dict[str, Any]:
    """Queue every span of a file that has no fresh enrichment, ahead of background work."""
    services = session.services
    if services is None:
        raise CommandError(session.not_ready())
    path = session.path_of(arg["uri"]) if isinstance(arg.get("uri"), str) else None
    if path is None:
        raise CommandError('expected {"uri": <a file in the workspace>}')
    ids = [
        span.id
        for span in services.store.spans_in_file(path)
        if services.store.enrichment_for(span.content_hash, ENRICHMENT_VERSION) is None
    ]
    services.scheduler.push(ids, Priority.REQUESTED, explicit=True)
    return {"queued": len(ids)}


def enrich_span(session: Session, arg: dict[str, Any]) -> dict[str, Any]:
    """Queue one span now (even while background work is paused)."""
    span = target_span(session, arg)
    if session.view(span).state == FRESH:
        return {"queued": 0, "spanId": span.id}
    assert session.services is not None
    session.services.scheduler.push([span.id], Priority.REQUESTED, explicit=True)
    return {"queued": 1, "spanId": span.id}


async def retry_failed(session: Session, arg: dict[str, Any]) -> dict[str, Any]:
    """Forget failure records (of one file, or all) so those spans are tried again now."""
    from spanlens.store.enrichments import retry_failed as clear

    services = session.services
    if services is None:
        raise CommandError(session.not_ready())
    paths = None
    if "uri" in arg:
        path = session.path_of(arg["uri"]) if isinstance(arg["uri"], str) else None
        if path is None:
            raise CommandError("that file is outside the workspace")
        paths = [path]
    cleared = await services.indexer.run(lambda store: clear(store, paths))
    services.scheduler.invalidate_backlog()
    if paths is not None:
        await services.scheduler.queue_pending_of(paths, Priority.REQUESTED)
    return {"retried": cleared}


def pause(session: Session) -> dict[str, Any]:
    """Pause all background enrichment (commands still run)."""
    if session.services is not None:
        session.services.scheduler.pause("all")
    session.status.mark()
    return session.status.payload()


def resume(session: Session) -> dict[str, Any]:
    """Resume background enrichment (also after the progress bar was cancelled)."""
    if session.services is not None:
        session.services.scheduler.resume()
    session.status.mark()
    return session.status.payload()


def show_span(session: Session, arg: dict[str, Any]) -> dict[str, Any]:
    """Everything about one span: Markdown and plain text as the hover, and the raw view."""
    view = session.view(target_span(session, arg))
    return {
        "uri": session.uri_of(view.span.path),
        "markdown": render_markdown(view),
        "plaintext": render_plaintext(view),
        "span": view.as_json(),
    }


async def status_report(session: Session) -> dict[str, Any]:
    """The status payload plus workspace-wide enrichment counts and a Markdown summary."""
    services = session.services
    status = session.status.payload()
    if services is None:
        return {"status": status, "counts": None, "markdown": "spanlens is starting"}
    await services.docgen.refresh_coverage()
    status = session.status.payload()
    max_failures = services.settings.enrichment.max_failures
    counts = await services.queries.run(lambda store: span_counts(store, max_failures))
    lines = [
        f"**spanlens** · {status['state']} · {services.root}",
        "",
        f"- spans: {counts['spans']} ({counts['fresh']} enriched, {counts['stale']} stale, "
        f"{counts['pending']} pending, {counts['failed']} failed)",
        "- queue: " + ", ".join(f"{k} {v}" for k, v in status["queue"].items()),
        f"- in flight: {status['inFlight']}; paused: {status['paused'] or 'no'}",
        f"- last error: {inline_markdown(status['lastError'] or 'none', at_line_start=False)}",
        "- settings from: " + ", ".join(services.settings.sources),
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
    docgen = status.get("docgen")
    if docgen:
        lines.append(
            f"- docs: {docgen['fresh']} fresh, {docgen['stale']} stale, {docgen['missing']} "
            f"missing, {docgen['waiting']} waiting for enrichment"
        )
    return {
        "status": status,
        "counts": counts,
        "docgen": docgen,
        "markdown": "\n".join(lines),
    }
