"""A single file opened with no workspace folder and no rootUri: one warning with the fix,
harmless answers, and no .spanlens folder made anywhere (protocol.md: Starting the server)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client
from tests.lsp.conftest import PROFILES, SAMPLE, _plain, wait_for
from tests.lsp.test_status_payloads import check_status

INVALID_PARAMS = -32602


@pytest_asyncio.fixture(params=PROFILES)
async def lone_file(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[LanguageClient, Path, list[dict]]]:
    """A server started in ``tmp_path/cwd`` on a file in ``tmp_path/downloads``, no root."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    source = downloads / "config.py"
    source.write_text(SAMPLE)
    statuses: list[dict] = []
    client = make_test_lsp_client()

    @client.feature("spanlens/status")
    def on_status(params: Any) -> None:
        statuses.append(_plain(params))

    await client.start_io(sys.executable, "-m", "spanlens_lsp.cli", "serve", "--stdio", cwd=cwd)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities(request.param),
                root_uri=None,
                workspace_folders=None,
            )
        )
        yield client, source, statuses
        await client.shutdown_session()
    finally:
        await client.stop()


async def test_no_root_warns_once_with_the_fix_and_answers_harmlessly(
    lone_file: tuple[LanguageClient, Path, list[dict]], tmp_path: Path
) -> None:
    client, source, statuses = lone_file
    uri = source.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=SAMPLE
            )
        )
    )
    warning = await wait_for(
        lambda: [m for m in client.messages if m.type == types.MessageType.Warning],
        what="the warning",
    )
    status = await wait_for(lambda: statuses and statuses[-1], what="a status")
    assert status["state"] == "no_workspace"
    check_status(status)  # the same fields as ever, with nothing going on
    assert len(warning) == 1
    assert "no workspace folder" in warning[0].message
    assert "Open a folder" in warning[0].message and "root_dir" in warning[0].message

    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=12, character=5),
        )
    )
    assert hover is None
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert lenses is not None and list(lenses) == []  # an empty list, not null
    report = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="spanlens.statusReport", arguments=[])
    )
    assert report["status"]["state"] == "no_workspace"
    assert report["counts"] is None
    with pytest.raises(JsonRpcException) as caught:
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="spanlens.enrichFile", arguments=[{"uri": uri}])
        )
    assert caught.value.code == INVALID_PARAMS
    assert "no workspace folder" in caught.value.message

    # More activity brings no more popups, and nothing was written anywhere.
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="spanlens.pause", arguments=[])
    )
    assert len([m for m in client.messages if m.type <= types.MessageType.Warning]) == 1
    assert sorted(p.name for p in tmp_path.rglob(".spanlens*")) == []
