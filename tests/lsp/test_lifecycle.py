"""Backend down, settings changes, commands, cancellation, progress and shutdown."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from tests.lsp.conftest import SUMMARY, Editor, toml_settings, wait_for
from tests.support.standin import StandinModelServer, closed_port_url

PARSE_LINE = 12


async def test_backend_down_shows_facts_pending_and_one_message(editor: Editor) -> None:
    down = closed_port_url()
    (editor.root / "spanlens.toml").write_text(toml_settings(down))
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: editor.last_status().get("state") == "offline", what="offline state")

    hover = await editor.hover_text("config.py", PARSE_LINE)
    assert "**Parser facts**" in hover
    assert "… pending" in hover.strip().splitlines()[-1]
    assert SUMMARY not in hover
    titles = await editor.lens_titles("config.py")
    assert len(titles) == 4
    assert set(titles.values()) <= {"… pending enrichment", "… pending (retrying after an error)"}

    # More activity must not bring more popups.
    editor.save("config.py")
    await editor.command("spanlens.enrichFile", {"uri": editor.uri("config.py")})
    await wait_for(lambda: editor.last_status().get("calls") == 0, what="calls to settle")
    warnings = [m for m in editor.client.messages if "no model backend" in m.message]
    assert len(warnings) == 1
    assert warnings[0].type == types.MessageType.Warning
    assert "spanlens.toml" in warnings[0].message and down in warnings[0].message
    assert editor.last_status()["lastError"] == "connection refused"
    assert editor.last_status()["backends"]["unreachable"] is True


async def test_settings_change_turns_diagnostics_off(editor: Editor) -> None:
    await editor.start(configuration={"lsp": {"diagnostics": "information"}})
    uri = editor.open("config.py")
    found = await wait_for(lambda: editor.client.diagnostics.get(uri), what="diagnostics")
    assert found[0].severity == types.DiagnosticSeverity.Information

    pull = bool(editor.client.capabilities and editor.client.capabilities.workspace.configuration)
    editor.client.set_configuration({"lsp": {"diagnostics": "off"}}, section="spanlens")
    pushed = None if pull else {"spanlens": {"lsp": {"diagnostics": "off"}}}
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=pushed)
    )
    await wait_for(lambda: len(editor.client.diagnostics[uri]) == 0, what="cleared diagnostics")


async def test_initialization_options_set_lens_mode(editor: Editor) -> None:
    await editor.start(init_options={"lsp": {"code_lens": "top"}})
    editor.open("config.py")
    titles = await wait_for(lambda: editor.lens_titles("config.py"), what="lenses")
    assert set(titles) == {0, PARSE_LINE}  # the class and the function, not the methods


async def test_commands(editor: Editor, standin: StandinModelServer) -> None:
    source = editor.root / "config.py"
    text = source.read_text()
    source.unlink()  # so that no background work starts before the pause
    await editor.start()
    paused = await editor.command("spanlens.pause")
    assert paused["paused"] == "all"
    source.write_text(text)
    editor.open("config.py")
    await wait_for(lambda: editor.last_status().get("queue", {}).get("open") == 4)
    assert standin.chat_requests == []

    queued = await editor.command(
        "spanlens.enrichSpan", {"uri": editor.uri("config.py"), "line": PARSE_LINE, "character": 5}
    )
    assert queued["queued"] == 1
    shown = await wait_for(
        lambda: _show_if_fresh(editor, queued["spanId"]), what="the requested span enriched"
    )
    assert "parse_config in" in shown["markdown"]
    assert shown["span"]["name"] == "parse_config"
    assert len(standin.chat_requests) == 1  # only the requested span ran while paused

    resumed = await editor.command("spanlens.resume")
    assert resumed["paused"] is None
    await wait_for(lambda: len(standin.chat_requests) >= 2, what="background work resumed")

    report = await editor.command("spanlens.statusReport")
    assert report["counts"]["spans"] == 4
    lines = report["markdown"].splitlines()
    assert lines[0].startswith("**spanlens** · ")
    assert any(line.startswith("- spans: 4 (") for line in lines), lines
    assert any(line.startswith("- backend standin: ") for line in lines), lines
    assert "- in flight: " in report["markdown"] and "paused: no" in report["markdown"]
    retried = await editor.command("spanlens.retryFailed")
    assert retried == {"retried": 0}

    with pytest.raises(JsonRpcInvalidParams, match="spanId") as raised:
        await editor.command("spanlens.showSpan", {"nothing": 1})
    assert raised.value.code == -32602


async def test_cancelled_requests_leave_the_server_working(editor: Editor) -> None:
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: editor.hover_text("config.py", PARSE_LINE), what="a hover")
    hover = types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=editor.uri("config.py")),
        position=types.Position(line=PARSE_LINE, character=5),
    )
    report = types.ExecuteCommandParams(command="spanlens.statusReport", arguments=[])
    # Raw requests: pygls's client cannot take a late answer to a request it cancelled itself.
    for msg_id, method, params in (
        ("cancel-hover", types.TEXT_DOCUMENT_HOVER, hover),
        ("cancel-report", types.WORKSPACE_EXECUTE_COMMAND, report),
    ):
        future = editor.client.protocol.send_request(method, params, msg_id=msg_id)
        editor.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), 10)
        except Exception as exc:  # cancelled: the server answers RequestCancelled
            assert "cancel" in str(exc).lower()
    assert "parse" in await editor.hover_text("config.py", PARSE_LINE)
    assert (await editor.command("spanlens.statusReport"))["counts"]["spans"] == 4
    assert not [m for m in editor.client.messages if m.type == types.MessageType.Error]


async def test_cancelling_queue_progress_pauses_the_backlog(
    editor: Editor, standin: StandinModelServer
) -> None:
    standin.latency = 1.0
    await editor.start()
    editor.open("config.py")

    def enrich_token() -> object:
        for token, reports in editor.client.progress_reports.items():
            if reports and getattr(reports[0], "title", "") == "spanlens: enriching":
                return token
        return None

    token = await wait_for(enrich_token, what="queue progress")
    begin = editor.client.progress_reports[token][0]
    assert begin.cancellable is True
    editor.client.window_work_done_progress_cancel(
        types.WorkDoneProgressCancelParams(token=token)  # type: ignore[arg-type]
    )
    await wait_for(lambda: editor.last_status().get("paused") == "backlog", what="paused backlog")
    # spanlens.resume undoes it.
    resumed = await editor.command("spanlens.resume")
    assert resumed["paused"] is None
    await wait_for(lambda: editor.last_status().get("paused") is None, what="resumed")


async def test_shutdown_while_a_call_is_in_flight(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    standin.latency = 1.0
    editor.open("config.py")
    await wait_for(lambda: standin.in_flight > 0, what="a call in flight")

    started = time.monotonic()
    await editor.client.shutdown_session()
    editor.started = False
    assert time.monotonic() - started < 8
    assert editor.client._server is not None
    assert editor.client._server.returncode == 0

    db = sqlite3.connect(editor.root / ".spanlens" / "index.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT data FROM enrichments").fetchall()
        assert rows, "the call in flight finished and its result landed"
        assert all(row[0].startswith("{") for row in rows)
    finally:
        db.close()


async def _show_if_fresh(editor: Editor, span_id: int) -> dict[str, Any] | None:
    shown = await editor.command("spanlens.showSpan", {"spanId": span_id})
    return shown if shown["span"]["state"] == "fresh" else None
