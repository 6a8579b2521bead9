"""Work-done progress is well ordered: begin, reports, end; never a begin after the work it
reports ended, and nothing left open (protocol.md: Progress)."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types
from tests.lsp.conftest import SAMPLE, Editor, wait_for
from tests.lsp.test_lens_freshness import hold_the_walk, release_the_walk
from tests.support.standin import StandinModelServer

ENRICHING = "spanlens: enriching"


def kinds(reports: list[Any]) -> list[str]:
    """The kinds of one token's progress messages, in order."""
    names = {
        types.WorkDoneProgressBegin: "begin",
        types.WorkDoneProgressReport: "report",
        types.WorkDoneProgressEnd: "end",
    }
    return [names[type(r)] for r in reports]


def well_ordered(sequence: list[str]) -> bool:
    """Nothing, or one begin, reports, and one end."""
    if not sequence:
        return True
    middle = sequence[1:-1]
    return sequence[0] == "begin" and sequence[-1] == "end" and set(middle) <= {"report"}


async def test_queue_progress_never_begins_after_its_work_ended(
    editor: Editor, standin: StandinModelServer
) -> None:
    client = editor.client
    created: list[str] = []
    held: list[str] = []
    hold = True

    def work_over() -> bool:
        enriched = sum(len(e["spanIds"]) for e in editor.enriched)
        status = editor.last_status()
        return enriched >= 4 and status.get("inFlight") == 0 and status.get("calls") == 0

    # This client answers window/workDoneProgress/create late: only once every call is over.
    client.protocol.fm.features.pop(types.WINDOW_WORK_DONE_PROGRESS_CREATE)

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    async def create(params: types.WorkDoneProgressCreateParams) -> None:
        created.append(str(params.token))
        if hold and len(created) > 1:  # the first is the workspace index's
            held.append(str(params.token))
            await wait_for(work_over, what="the calls to end")
        client.progress_reports.setdefault(params.token, [])

    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: held, what="the queue's progress token")
    await wait_for(work_over, what="every span enriched")
    # Two round trips after the late reply: a begin would have been sent by now.
    await editor.hover_text("config.py", 12)
    await editor.command("spanlens.statusReport")
    late = [kinds(client.progress_reports.get(token, [])) for token in held]
    assert all(sequence == [] for sequence in late), late

    # An ordinary call still shows its bar, which ends when the work is done.
    hold = False
    standin.latency = 1.0
    editor.replace("config.py", SAMPLE.replace("handle.read()", "handle.read(1)"), version=2)
    editor.save("config.py")

    def enriching_tokens() -> list[str]:
        return [
            str(token)
            for token, reports in client.progress_reports.items()
            if reports
            and isinstance(reports[0], types.WorkDoneProgressBegin)
            and reports[0].title == ENRICHING
        ]

    tokens = await wait_for(enriching_tokens, what="the enriching bar")
    await wait_for(
        lambda: all(kinds(client.progress_reports[t])[-1:] == ["end"] for t in tokens),
        what="the enriching bar to end",
    )
    for token, reports in client.progress_reports.items():
        assert well_ordered(kinds(reports)), (token, kinds(reports))
    assert editor.last_status()["inFlight"] == 0


async def test_shutdown_during_the_workspace_index_ends_its_progress(editor: Editor) -> None:
    fifo = hold_the_walk(editor.root)
    started = asyncio.ensure_future(editor.start())
    client = editor.client
    try:
        await wait_for(lambda: editor.statuses, what="the server to start")

        def index_bar() -> list[str]:
            return [
                str(token)
                for token, reports in client.progress_reports.items()
                if reports and getattr(reports[0], "title", "") == "spanlens: indexing"
            ]

        (token,) = await wait_for(index_bar, what="the indexing bar")
        assert not editor.indexed()
        await asyncio.wait_for(client.shutdown_async(None), 30)
        assert kinds(client.progress_reports[token])[-1] == "end"
        assert client.progress_reports[token][-1].message == "stopped"
    finally:
        await release_the_walk(fifo)  # the blocked walk thread can end, and the process exit
        started.cancel()
        await asyncio.gather(started, return_exceptions=True)
        client.exit(None)
        editor.started = False  # shut down already: the fixture only stops the client
    for reports in client.progress_reports.values():
        assert well_ordered(kinds(reports))
