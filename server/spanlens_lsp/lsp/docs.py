"""The docgen commands: ``spanlens.docgenFile`` (write this file's doc now) and
``spanlens.openDoc`` (the URI of its doc). Arguments and results are in protocol.md."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path

from spanlens_lsp.docgen.job import DocgenJob
from spanlens_lsp.lsp.commands import CommandError
from spanlens_lsp.lsp.edge import Edge

DOCGEN_FILE = "spanlens.docgenFile"
OPEN_DOC = "spanlens.openDoc"


class DocgenFailed(JsonRpcException):
    """The doc could not be written or does not exist yet (a readable message, no data)."""

    CODE = int(types.LSPErrorCodes.RequestFailed)


class DocCommands:
    """The two docgen commands, given the docgen job (None until the workspace opens)."""

    def __init__(self, edge: Edge, docgen: Callable[[], DocgenJob | None]) -> None:
        self.edge = edge
        self.docgen = docgen

    def _job(self) -> DocgenJob:
        job = self.docgen()
        if job is None:
            raise CommandError(self.edge.not_ready())
        return job

    def _path(self, arg: dict[str, Any]) -> str:
        uri = arg.get("uri")
        path = self.edge.path_of(uri) if isinstance(uri, str) else None
        if path is None:
            raise CommandError('expected {"uri": <a file in the workspace>}')
        return str(path)

    async def docgen_file(self, arg: dict[str, Any]) -> dict[str, Any]:
        """Write the file's doc now (even while paused); an error says why it cannot be."""
        job = self._job()
        result = await job.document_path(self._path(arg))
        if not result.written or result.doc is None:
            raise DocgenFailed(f"spanlens: no doc written: {result.error}")
        return {"uri": _uri(result.doc), "written": True, "modelCalls": result.model_calls}

    def open_doc(self, arg: dict[str, Any]) -> dict[str, Any]:
        """The URI of the file's doc, for the client to open; an error when there is none."""
        job = self._job()
        path = self._path(arg)
        doc = job.existing_doc(path)
        if doc is None:
            raise DocgenFailed(f"no doc yet for {path}")
        return {"uri": _uri(doc)}


def _uri(path: Path) -> str:
    return from_fs_path(str(path)) or path.as_uri()
