"""Requests with invalid params are answered: InvalidParams (-32602) with one line and no
traceback, or the null / empty result protocol.md names for documents spanlens does not know
(protocol.md: Invalid requests)."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import Future
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException
from pygls.protocol.json_rpc import JsonRPCRequestMessage
from pytest_lsp import LanguageClient
from tests.lsp.conftest import Editor, wait_for

INVALID_PARAMS = -32602
PARSE_LINE = 12
RANGE = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}


async def raw_request(client: LanguageClient, method: str, params: Any) -> Any:
    """Send ``params`` as they are (the client's typed API would refuse to), await the reply."""
    protocol = client.protocol
    msg_id = str(uuid.uuid4())
    reply: Future[Any] = Future()
    protocol._request_futures[msg_id] = reply
    protocol._send_data(
        JsonRPCRequestMessage(id=msg_id, method=method, params=params, jsonrpc="2.0")
    )
    return await asyncio.wait_for(asyncio.wrap_future(reply), 10)


async def invalid_params(client: LanguageClient, method: str, params: Any) -> str:
    """The error message of a request that must be refused with InvalidParams."""
    with pytest.raises(JsonRpcException) as caught:
        await raw_request(client, method, params)
    error = caught.value
    assert error.code == INVALID_PARAMS, (method, params, error.code, error.message)
    assert "\n" not in error.message and "Traceback" not in error.message
    assert error.data is None
    return error.message


def hover_params(uri: Any, line: Any = 0, character: Any = 0) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


async def test_malformed_requests_get_invalid_params(editor: Editor) -> None:
    await editor.start()
    uri = editor.open("config.py")
    client = editor.client
    message = await invalid_params(client, "textDocument/hover", hover_params(uri, line=-1))
    assert message.startswith("invalid params for textDocument/hover")
    await invalid_params(client, "textDocument/hover", hover_params(uri, character=-3))
    await invalid_params(client, "textDocument/hover", None)
    message = await invalid_params(client, "textDocument/hover", {"position": {"line": 1}})
    assert "text_document" in message or "textDocument" in message
    await invalid_params(client, "textDocument/codeLens", None)
    await invalid_params(client, "textDocument/codeLens", {})
    await invalid_params(client, "codeLens/resolve", None)
    await invalid_params(client, "codeLens/resolve", {"data": {"spanId": 1}})  # no range
    await invalid_params(client, "codeLens/resolve", {"range": RANGE, "data": "bad"})
    await invalid_params(client, "codeLens/resolve", {"range": RANGE, "data": {"spanId": "1"}})
    await invalid_params(client, "codeLens/resolve", {"range": RANGE, "data": {"spanId": True}})
    await invalid_params(client, "codeLens/resolve", {"range": RANGE})
    await invalid_params(client, "workspace/executeCommand", None)
    await invalid_params(client, "workspace/executeCommand", {"arguments": []})

    # The server still answers normally afterwards.
    hover = await wait_for(lambda: editor.hover_text("config.py", PARSE_LINE), what="a hover")
    assert "parse_config" in hover


async def test_unknown_documents_and_positions_answer_null_or_empty(editor: Editor) -> None:
    (editor.root / ".spanlensignore").write_text("ignored.py\n")
    (editor.root / "ignored.py").write_text("def hidden(x):\n    return x\n")
    await editor.start()
    uri = editor.open("config.py")
    ignored = editor.open("ignored.py")  # opened, but still not indexed
    await wait_for(lambda: editor.hover_text("config.py", PARSE_LINE), what="a hover")
    client = editor.client
    outside = "file:///nowhere/else/x.py"
    assert await raw_request(client, "textDocument/hover", hover_params(uri, line=9999)) is None
    assert await raw_request(client, "textDocument/hover", hover_params(uri, 2**31 - 1)) is None
    assert await raw_request(client, "textDocument/hover", hover_params(outside, 1)) is None
    assert await raw_request(client, "textDocument/hover", hover_params("untitled:1")) is None
    unindexed = editor.uri("missing.py")
    assert await raw_request(client, "textDocument/hover", hover_params(unindexed)) is None
    assert await raw_request(client, "textDocument/hover", hover_params(ignored)) is None
    assert await raw_request(client, "textDocument/hover", hover_params("not a uri %%")) is None
    for document in (outside, "untitled:1", unindexed, ignored, "not a uri %%", ""):
        params = {"textDocument": {"uri": document}}
        assert await raw_request(client, "textDocument/codeLens", params) == []
    # A lens of a span that vanished (a well-formed id this server could have given):
    vanished = await raw_request(
        client, "codeLens/resolve", {"range": RANGE, "data": {"spanId": 10**9, "uri": uri}}
    )
    assert vanished.command.title == "spanlens: changed, re-indexing"
    assert vanished.command.command == ""


BAD_COMMAND_ARGUMENTS: list[tuple[str, list[Any]]] = [
    ("spanlens.enrichFile", []),
    ("spanlens.enrichFile", [{"uri": 5}]),
    ("spanlens.enrichFile", [{"uri": "file:///nowhere/else/x.py"}]),
    ("spanlens.enrichFile", ["file:///ws/config.py"]),
    ("spanlens.enrichSpan", []),
    ("spanlens.enrichSpan", [{"spanId": "1"}]),
    ("spanlens.enrichSpan", [{"spanId": True}]),
    ("spanlens.enrichSpan", [{"spanId": -1}]),
    ("spanlens.enrichSpan", [{"spanId": 10**30}]),
    ("spanlens.enrichSpan", [{"uri": "CONFIG", "line": -1, "character": 0}]),
    ("spanlens.enrichSpan", [{"uri": "CONFIG", "line": 10**30, "character": 0}]),
    ("spanlens.enrichSpan", [{"uri": "CONFIG", "line": 12, "character": "x"}]),
    ("spanlens.retryFailed", [{"uri": 5}]),
    ("spanlens.retryFailed", [{"uri": "file:///nowhere/else/x.py"}]),
    ("spanlens.retryFailed", [{}, {}]),
    ("spanlens.pause", [1, 2]),
    ("spanlens.pause", ["all"]),
    ("spanlens.resume", [None]),
    ("spanlens.showSpan", []),
    ("spanlens.showSpan", [{"spanId": 10**9}]),
    ("spanlens.showSpan", [{"spanId": "42"}]),
    ("spanlens.showSpan", [{"uri": "CONFIG", "line": 9999, "character": 0}]),
    ("spanlens.showSpan", [["spanId", 1]]),
    ("spanlens.statusReport", [1]),
    ("spanlens.noSuchCommand", [{}]),
]


async def test_commands_with_bad_arguments_get_one_line_invalid_params(editor: Editor) -> None:
    await editor.start()
    uri = editor.open("config.py")
    await wait_for(lambda: editor.hover_text("config.py", PARSE_LINE), what="a hover")
    failures = []
    for command, arguments in BAD_COMMAND_ARGUMENTS:
        arguments = [
            {k: uri if v == "CONFIG" else v for k, v in a.items()} if isinstance(a, dict) else a
            for a in arguments
        ]
        params = {"command": command, "arguments": arguments}
        try:
            await invalid_params(editor.client, "workspace/executeCommand", params)
        except (AssertionError, pytest.fail.Exception) as exc:
            failures.append(f"{command} {arguments}: {exc}")
    assert failures == []
    message = await invalid_params(
        editor.client,
        "workspace/executeCommand",
        {"command": "spanlens.showSpan", "arguments": [{"spanId": 10**9}]},
    )
    assert message == "no span there (it may have changed)"
    # Good arguments still work after all that.
    shown = await editor.command("spanlens.showSpan", {"uri": uri, "line": PARSE_LINE})
    assert shown["span"]["name"] == "parse_config"
