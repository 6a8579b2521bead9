"""The ``spanlens/status`` notification, and the few messages a user must act on.

Status changes are coalesced: at most one notification per :data:`STATUS_INTERVAL`.
``window/showMessage`` is used only for what needs the user: no backend reachable (once per
configuration, with the fix) and invalid settings.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

if TYPE_CHECKING:
    from spanlens.lsp.session import Session

log = logging.getLogger(__name__)

STATUS_METHOD = "spanlens/status"
STATUS_INTERVAL = 0.1
#: Version of the status payload (protocol.md); bump on incompatible changes.
STATUS_VERSION = 1


class StatusReporter:
    """Builds and sends the status payload; owns the one-time "unreachable" warning."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._timer: asyncio.TimerHandle | None = None
        self._warned_unreachable = False
        self._closed = False

    def mark(self) -> None:
        """Something changed: send a status notification soon."""
        if self._timer is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(STATUS_INTERVAL, self._send)

    def _send(self) -> None:
        self._timer = None
        if self._closed:
            return
        try:
            self.session.server.protocol.notify(STATUS_METHOD, self.payload())
        except Exception:
            log.exception("could not send status")

    def payload(self) -> dict[str, Any]:
        """The ``spanlens/status`` params (documented in protocol.md)."""
        session = self.session
        services = session.services
        documents = session.documents
        indexing = None
        if documents.indexing is not None:
            done, total = documents.indexing
            indexing = {"done": done, "total": total}
        base: dict[str, Any] = {
            "version": STATUS_VERSION,
            "root": str(session.root) if session.root else None,
            "indexing": indexing,
            "indexed": documents.indexed,
            "lastSave": documents.last_save,
        }
        if services is None:
            return {**base, "state": "starting"}
        snapshot = services.scheduler.snapshot()
        engine = services.scheduler.engine
        health = dict(engine.health()) if engine is not None else {}
        gpu = gpu_state(engine, services.settings) if engine is not None else None
        state = _state(snapshot, indexing, engine is not None, bool(health.get("unreachable")))
        return {
            **base,
            "state": state,
            **snapshot,
            "backends": health,
            "gpu": gpu,
        }

    def check_backends(self) -> None:
        """After results: tell the user once when no backend can be reached, with the fix."""
        services = self.session.services
        engine = services.scheduler.engine if services else None
        if engine is None or self._warned_unreachable or services is None:
            return
        if not engine.health().get("unreachable"):
            return
        self._warned_unreachable = True
        urls = ", ".join(sorted({b.url for b in services.settings.backends}))
        message = (
            f"spanlens: no model backend is reachable ({urls}). Start the model server "
            "(for Ollama: `ollama serve`) or set the backend URL in spanlens.toml "
            "([[backends]] url = ...) or in the spanlens settings. Hovers show parser facts "
            "meanwhile."
        )
        log.warning(message)
        self.session.server.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Warning, message=message)
        )

    def show_error(self, message: str) -> None:
        """An error the user must fix (bad settings)."""
        log.error(message)
        self.session.server.window_show_message(
            types.ShowMessageParams(type=types.MessageType.Error, message=message)
        )

    def reset_warnings(self) -> None:
        """New backends configured: warn again if these cannot be reached either."""
        self._warned_unreachable = False

    def close(self) -> None:
        """Stop sending."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def gpu_state(engine: Any, settings: Any) -> dict[str, Any] | None:
    """Whether a GPU is sampled and why local work waits for it, if it does."""
    gpu = getattr(engine, "gpu", None)
    if gpu is None:
        return None
    try:
        waiting = gpu.limits_exceeded(settings.gpu.min_free_vram_mb, settings.gpu.max_temperature_c)
        return {"available": bool(gpu.available), "waiting": waiting}
    except Exception as exc:
        return {"available": False, "waiting": None, "error": type(exc).__name__}


def _state(snapshot: dict[str, Any], indexing: Any, engine: bool, unreachable: bool) -> str:
    """One word for status lines; protocol.md lists them."""
    if indexing is not None:
        return "indexing"
    if not engine:
        return "facts_only"
    if snapshot["paused"] == "all":
        return "paused"
    if unreachable:
        return "offline"
    if snapshot["inFlight"]:
        return "enriching"
    if any(snapshot["queue"].values()):
        return "waiting"
    return "idle"
