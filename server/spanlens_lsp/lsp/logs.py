"""Server logs go to the editor's log (window/logMessage), never to popups.

pygls logs every message body at INFO, source text included; its logger is held at WARNING.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

_LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}


class EditorLogHandler(logging.Handler):
    """Forwards log records to window/logMessage, from any thread."""

    def __init__(self, server: LanguageServer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(level=logging.INFO)
        self.server = server
        self.loop = loop
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record, unless sending itself is what logged it."""
        if getattr(self._local, "busy", False):
            return
        try:
            message = self.format(record)
        except Exception:
            return
        kind = next((k for level, k in _LEVELS.items() if record.levelno >= level), None)
        params = types.LogMessageParams(type=kind or types.MessageType.Log, message=message)
        if self.loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._send(params)
        else:
            self.loop.call_soon_threadsafe(self._send, params)

    def _send(self, params: types.LogMessageParams) -> None:
        self._local.busy = True
        try:
            self.server.window_log_message(params)
        except Exception:
            pass
        finally:
            self._local.busy = False


def setup_logging(server: LanguageServer, loop: asyncio.AbstractEventLoop) -> EditorLogHandler:
    """Route the ``spanlens`` loggers to the editor and quieten pygls."""
    logging.getLogger("pygls").setLevel(logging.WARNING)
    logger = logging.getLogger("spanlens_lsp")
    for handler in list(logger.handlers):
        if isinstance(handler, EditorLogHandler):
            logger.removeHandler(handler)
    handler = EditorLogHandler(server, loop)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
