"""The status payloads have exactly the fields protocol.md lists (protocol.md: spanlens/status,
spanlens.statusReport)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.lsp.conftest import Editor, wait_for
from tests.support.standin import StandinModelServer

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol.md"


def documented_fields(header: str) -> set[str]:
    """The backticked names in the first column of protocol.md's table whose header row
    starts with ``| <header> |``."""
    lines = PROTOCOL.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"| {header} |")]
    assert len(starts) == 1, f"protocol.md needs exactly one table headed {header!r}"
    fields: set[str] = set()
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        first_cell = line.split("|")[1]
        fields.update(re.findall(r"`([^`]+)`", first_cell))
    assert fields, f"the {header!r} table lists no fields"
    return fields


def check_status(status: dict) -> None:
    """``status`` has exactly the documented fields, nested objects included."""
    assert set(status) == documented_fields("field")
    assert set(status["backends"]) == documented_fields("backends field")
    for endpoint in status["backends"]["endpoints"]:
        assert set(endpoint) == documented_fields("endpoint field")


def test_the_documented_tables_are_found() -> None:
    assert {"state", "queue", "inFlight", "calls", "backends"} <= documented_fields("field")
    assert documented_fields("count field") == {"spans", "fresh", "stale", "pending", "failed"}
    assert documented_fields("report field") == {"status", "counts", "docgen", "markdown"}


async def test_status_payloads_match_protocol_md(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    editor.open("config.py")
    editor.save("config.py")
    await wait_for(lambda: len(standin.chat_requests) > 0, what="a model call")
    await wait_for(lambda: editor.last_status().get("state") == "idle", what="an idle status")
    assert editor.last_status()["backends"]["endpoints"], "one endpoint is configured"
    for status in editor.statuses:
        check_status(status)

    report = await editor.command("spanlens.statusReport")
    assert set(report) == documented_fields("report field")
    assert set(report["counts"]) == documented_fields("count field")
    check_status(report["status"])
    assert report["counts"]["spans"] == 4
    assert set(await editor.command("spanlens.statusReport", {})) == set(report)
    paused = await editor.command("spanlens.pause", {})
    check_status(paused)
    check_status(await editor.command("spanlens.resume"))


async def test_the_end_of_the_quiet_period_is_sent_without_another_event(
    editor: Editor,
) -> None:
    """`idle` turns true by itself, when no edit came for lsp.idle_seconds: the status says so
    then, not at the next unrelated change."""
    (editor.root / "config.py").unlink()  # no backlog: nothing else would send a status
    await editor.start()
    await editor.command("spanlens.pause")  # nothing runs when the period ends
    await editor.hold_open_work()
    busy = len(editor.statuses)
    await wait_for(
        lambda: any(s.get("idle") for s in editor.statuses[busy:]), what="an idle status"
    )
    assert editor.last_status()["idle"] is True
