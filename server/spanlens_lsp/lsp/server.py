"""The pygls server: capability registration and thin handlers that delegate to the session."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from cattrs import transform_error
from cattrs.errors import ClassValidationError
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import JsonRPCRequestMessage

from spanlens_lsp import __version__
from spanlens_lsp.lsp import commands, docs, model_install, symbols
from spanlens_lsp.lsp.commands import CommandError
from spanlens_lsp.lsp.edge import document_root
from spanlens_lsp.lsp.logs import setup_logging
from spanlens_lsp.lsp.session import Session
from spanlens_lsp.lsp.settings import pushed_section

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UnreadableRequest:
    """A request whose params did not match the method's type (answered with InvalidParams)."""

    id: Any
    method: str
    reason: str


class SpanlensProtocol(LanguageServerProtocol):
    """Negotiates UTF-16 positions (the store's columns are UTF-16 offsets), answers requests
    whose params do not deserialise with InvalidParams (pygls logs them and never answers),
    and keeps every error reply to one line without a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The tasks of ``spanlens.installModel`` requests under way, by request id.
        self.running_installs: dict[Any, asyncio.Task[Any]] = {}

    def structure_message(self, data: dict[str, Any]) -> Any:
        """pygls's deserialisation, except that a request with bad params becomes an
        :class:`UnreadableRequest` instead of an exception that leaves it unanswered."""
        if "jsonrpc" not in data or "id" not in data or "method" not in data or "error" in data:
            return super().structure_message(data)
        method = data["method"]
        request_type = self.get_message_type(method) or JsonRPCRequestMessage
        try:
            return self._converter.structure(data, request_type)
        except Exception as exc:
            reason = f"invalid params for {method}: {_structure_error(exc)}"
            log.warning("%s", reason)
            return UnreadableRequest(data["id"], method, reason)

    def handle_message(self, message: Any) -> None:
        """Answer unreadable requests at once; everything else goes to pygls, and
        ``$/cancelRequest`` for a running install also cancels the install's task (pygls
        only answers the request as cancelled: a command runs on once it has started)."""
        if isinstance(message, UnreadableRequest):
            error = JsonRpcInvalidParams(message.reason).to_response_error()
            self._send_response(message.id, None, error)
            return
        super().handle_message(message)
        if getattr(message, "method", None) == types.CANCEL_REQUEST:
            task = self.running_installs.pop(message.params.id, None)
            if task is not None:
                task.cancel()

    def _send_response(
        self, msg_id: Any, result: Any | None = None, error: types.ResponseError | None = None
    ) -> None:
        """Every error reply: one line, no data (pygls puts a traceback in an internal
        error's data)."""
        if error is not None:
            error = types.ResponseError(code=error.code, message=_first_line(error.message))
        super()._send_response(msg_id, result, error)

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: types.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        """pygls's executeCommand, except that ``spanlens.installModel`` also gets the
        request's ``workDoneToken`` (pygls passes a command its arguments only) and can be
        stopped with ``$/cancelRequest``."""
        handler = self.fm.commands.get(params.command)
        if params.command != model_install.INSTALL_MODEL or handler is None:
            return (yield from super().lsp_workspace__execute_command(params))
        arguments = tuple(params.arguments or ())
        msg_id = self.msg_id

        async def install(*args: Any, **kwargs: Any) -> Any:
            # Found by the request's id, for $/cancelRequest (see handle_message).
            task = asyncio.current_task()
            if msg_id is not None and task is not None:
                self.running_installs[msg_id] = task
            try:
                return await handler(*args, **kwargs)
            finally:
                self.running_installs.pop(msg_id, None)

        return (yield install, arguments, {"work_done_token": params.work_done_token})

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        """pygls's initialize, with the client's position encodings narrowed to UTF-16."""
        general = params.capabilities.general
        if general is not None:
            general.position_encodings = [types.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))


def _structure_error(error: Exception) -> str:
    """What was wrong with a message's params, e.g. ``required field missing @ $.params``."""
    try:
        problems = transform_error(error) if isinstance(error, ClassValidationError) else []
    except Exception:
        problems = []
    return "; ".join(problems[:3]) or _first_line(error)


def _first_line(error: object) -> str:
    """The first non-empty line of an error's text, at most 300 characters."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(error).__name__ if isinstance(error, BaseException) else "error"


class SpanlensServer(LanguageServer):
    """A LanguageServer with one workspace session and quiet error reporting."""

    def __init__(self) -> None:
        super().__init__("spanlens", __version__, protocol_cls=SpanlensProtocol)
        self.session: Session | None = None

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log handler failures; never pop an editor message for them (pygls's default)."""
        log.error("%s: %s", getattr(source, "__name__", source), error)

    def require_session(self) -> Session:
        """The session (created by ``initialize``)."""
        if self.session is None:
            raise CommandError("the server is not initialized")
        return self.session


def create_server() -> SpanlensServer:
    """A server with every spanlens feature registered."""
    server = SpanlensServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: SpanlensServer, params: types.InitializeParams) -> None:
        setup_logging(ls, asyncio.get_running_loop())
        ls.session = Session(ls, document_root(params), params.initialization_options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: SpanlensServer, params: types.InitializedParams) -> None:
        await ls.require_session().start()

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: SpanlensServer, params: None) -> None:
        if ls.session is not None:
            await ls.session.close()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: SpanlensServer, params: types.DidChangeConfigurationParams
    ) -> None:
        await ls.require_session().reload_settings(pushed_section(params.settings))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SpanlensServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.require_session().documents.did_open(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SpanlensServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.require_session().documents.did_change(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: SpanlensServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.require_session().documents.did_save(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SpanlensServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.require_session().documents.did_close(params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: SpanlensServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        ls.require_session().documents.watched_files_changed(list(params.changes))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: SpanlensServer, params: types.HoverParams) -> types.Hover | None:
        return ls.require_session().hover.hover(params)

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    async def code_lens(ls: SpanlensServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        return await ls.require_session().code_lenses.code_lenses(params.text_document.uri)

    @server.feature(types.CODE_LENS_RESOLVE)
    def code_lens_resolve(ls: SpanlensServer, lens: types.CodeLens) -> types.CodeLens:
        return ls.require_session().code_lenses.resolve_lens(lens)

    @server.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        ls: SpanlensServer, params: types.WorkspaceSymbolParams
    ) -> list[types.SymbolInformation]:
        return await ls.require_session().symbols.workspace_symbols(params.query)

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(ls: SpanlensServer, params: types.WorkDoneProgressCancelParams) -> None:
        session = ls.require_session()
        if not session.progress.cancelled(params.token):
            session.model_installs.cancelled(params.token)

    @server.command(commands.ENRICH_FILE)
    def enrich_file(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        return ls.require_session().commands.enrich_file(commands.argument(args))

    @server.command(commands.ENRICH_SPAN)
    def enrich_span(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        return ls.require_session().commands.enrich_span(commands.argument(args))

    @server.command(commands.RETRY_FAILED)
    async def retry_failed(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        return await ls.require_session().commands.retry_failed(commands.argument(args))

    @server.command(commands.PAUSE)
    def pause(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        commands.argument(args)
        return ls.require_session().commands.pause()

    @server.command(commands.RESUME)
    def resume(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        commands.argument(args)
        return ls.require_session().commands.resume()

    @server.command(commands.SHOW_SPAN)
    def show_span(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        return ls.require_session().commands.show_span(commands.argument(args))

    @server.command(docs.DOCGEN_FILE)
    async def docgen_file(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        return await ls.require_session().docs.docgen_file(commands.argument(args))

    @server.command(docs.OPEN_DOC)
    def open_doc(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        return ls.require_session().docs.open_doc(commands.argument(args))

    @server.command(model_install.INSTALL_MODEL)
    async def install_model(
        ls: SpanlensServer, *args: Any, work_done_token: types.ProgressToken | None = None
    ) -> dict[str, Any]:
        installs = ls.require_session().model_installs
        return await installs.install_model(commands.argument(args), work_done_token)

    @server.command(symbols.SEARCH)
    async def search(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        return await ls.require_session().symbols.search(commands.argument(args))

    @server.command(commands.STATUS_REPORT)
    async def status_report(ls: SpanlensServer, *args: Any) -> dict[str, Any]:
        commands.argument(args)
        return await ls.require_session().commands.status_report()

    return server


#: How often (seconds) Python lets another thread take the GIL. The default 5 ms is paid by
#: every hand-off between the event loop and the store threads (a save re-indexes in one);
#: a shorter slice keeps save-to-queued latency low while the loop is busy with model replies.
_SWITCH_INTERVAL = 0.0005


def serve_stdio() -> None:
    """Run over stdin/stdout until the client says exit."""
    sys.setswitchinterval(_SWITCH_INTERVAL)
    create_server().start_io()


def serve_tcp(host: str, port: int) -> None:
    """Run as a TCP server on ``host:port`` (one client)."""
    sys.setswitchinterval(_SWITCH_INTERVAL)
    create_server().start_tcp(host, port)
