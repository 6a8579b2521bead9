"""``spanlens.installModel``: install the built-in model from the editor (protocol.md).

The install (spanlens_lsp.localmodel.install) runs in a thread; its progress becomes a
cancellable work-done progress bar. Cancelling the bar, or the request (``$/cancelRequest``:
the protocol cancels this command's task, see spanlens_lsp.lsp.server), stops the download at its
next chunk and keeps what was fetched for the next try.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from spanlens_lsp.embedding.builtin import embedding_note
from spanlens_lsp.enrichment.backends.defaults import backend_source
from spanlens_lsp.localmodel.catalog import (
    EMBEDDING,
    CatalogError,
    ModelSpec,
    UnknownModel,
    default_model,
    get_model,
)
from spanlens_lsp.localmodel.install import EXIT_USAGE, InstallCancelled, InstallError, install
from spanlens_lsp.lsp.commands import CommandError
from spanlens_lsp.lsp.edge import Edge
from spanlens_lsp.lsp.progress import WorkDone

if TYPE_CHECKING:
    from spanlens_lsp.settings import Settings

log = logging.getLogger(__name__)

INSTALL_MODEL = "spanlens.installModel"


class ModelInstallFailed(JsonRpcException):
    """Every source failed, or no disk space: one readable line."""

    CODE = int(types.LSPErrorCodes.RequestFailed)


class ModelInstallCancelled(JsonRpcException):
    """The user cancelled the install's progress bar."""

    CODE = int(types.LSPErrorCodes.RequestCancelled)


class ModelInstalls:
    """Runs installs for the editor; maps their progress tokens to cancel events."""

    def __init__(
        self,
        edge: Edge,
        settings: Callable[[], Settings],
        started: Callable[[], bool],
        reload_settings: Callable[[], Awaitable[None]],
        embedding_in_force: Callable[[], bool] = lambda: False,
    ) -> None:
        self.edge = edge
        #: The settings in force, whether the workspace's services exist, and a settings
        #: reload (after an install into a facts-only workspace: the model is used at once).
        self.settings = settings
        self.started = started
        self.reload_settings = reload_settings
        #: Whether the workspace has an embedding endpoint (its embedding job has embedders).
        self.embedding_in_force = embedding_in_force
        self._cancels: dict[str, threading.Event] = {}

    async def install_model(
        self, arg: dict[str, Any], work_done_token: types.ProgressToken | None = None
    ) -> dict[str, Any]:
        """Install ``{"name"?, "from"?}`` (default: the default model); the result says
        whether anything was done and where the model is. The progress goes to the
        request's ``workDoneToken`` when the client sent one, else to a token the server
        creates."""
        name, source = arg.get("name"), arg.get("from")
        if not isinstance(name, (str, type(None))) or not isinstance(source, (str, type(None))):
            raise CommandError('expected {"name"?: <model name>, "from"?: <GGUF path or URL>}')
        try:
            spec = get_model(name or default_model())
        except UnknownModel as exc:
            raise CommandError(str(exc)) from exc
        except CatalogError as exc:
            raise ModelInstallFailed(str(exc)) from exc
        title = f"spanlens: installing {spec.name}"
        bar = WorkDone(self.edge, title, cancellable=True, client_token=work_done_token)
        cancel = threading.Event()
        self._cancels[str(bar.token)] = cancel
        try:
            await bar.begin("starting")
            progress = _BarProgress(bar, asyncio.get_running_loop())
            result = await asyncio.to_thread(
                install, spec, source, progress=progress, cancel=cancel
            )
        except asyncio.CancelledError:
            # $/cancelRequest or shutdown cancelled the task: the thread stops at its next chunk
            cancel.set()
            bar.end("cancelled")
            raise
        except InstallCancelled as exc:
            bar.end("cancelled")
            raise ModelInstallCancelled("install cancelled; run it again to resume") from exc
        except InstallError as exc:
            bar.end("failed")
            if exc.code == EXIT_USAGE:
                raise CommandError(str(exc)) from exc
            log.warning("model install failed: %s", exc)
            raise ModelInstallFailed(str(exc)) from exc
        finally:
            self._cancels.pop(str(bar.token), None)
        bar.end("installed" if result.installed else "already installed")
        note = await self._use(spec) if self.started() else None
        return {
            "name": spec.name,
            "label": spec.label,
            "kind": spec.kind,
            "installed": result.installed,
            "path": str(result.path),
            "source": result.source,
            "note": note,
        }

    async def _use(self, spec: ModelSpec) -> str | None:
        """Serve a model just installed at once, no restart needed, where nothing served its
        part until now (facts only, or keyword search); one line when the server still
        cannot use it (e.g. no engine package here), else None."""
        if spec.kind == EMBEDDING:
            if self.embedding_in_force():
                return None
            await self.reload_settings()
            if self.embedding_in_force():
                return None
            return embedding_note(self.settings()) or (
                "embeddings = [] in the settings: this workspace searches by keywords only"
            )
        if backend_source(self.settings()) != "none":
            return None
        await self.reload_settings()
        if backend_source(self.settings()) != "none":
            return None
        notes = self.settings().notes
        return notes[-1] if notes else "this server cannot use it"

    def cancelled(self, token: types.ProgressToken) -> bool:
        """window/workDoneProgress/cancel: stop the install with this token, if any."""
        cancel = self._cancels.get(str(token))
        if cancel is None:
            return False
        cancel.set()
        return True

    def close(self) -> None:
        """Shutdown: stop every install (their partial files stay for the next try)."""
        for cancel in self._cancels.values():
            cancel.set()


class _BarProgress:
    """An InstallProgress that reports to a WorkDone bar from the install's thread."""

    def __init__(self, bar: WorkDone, loop: asyncio.AbstractEventLoop) -> None:
        self.bar = bar
        self.loop = loop
        self.label = ""
        self.total = 0
        self.done = 0
        self.percent = -1

    def start(self, label: str, total: int, done: int = 0) -> None:
        self.label, self.total, self.done = label, total, done
        self.percent = -1
        self.advance(0)

    def advance(self, amount: int) -> None:
        self.done += amount
        percent = self.done * 100 // max(self.total, 1)
        if percent != self.percent:  # at most a hundred hops to the loop per phase
            self.percent = percent
            message = f"{self.label}: {_mib(self.done)} of {_mib(self.total)}"
            self.loop.call_soon_threadsafe(self.bar.report, message, percent)

    def note(self, line: str) -> None:
        log.info("model install: %s", line)
        self.loop.call_soon_threadsafe(lambda: self.bar.report(line, force=True))


def _mib(size: int) -> str:
    return f"{size / 1024**2:.0f} MiB"
