"""Promises about the queue and span states, seen from an editor (both capability profiles).

Hovering a pending span moves it up; stale spans and closed documents lose their pitfall
diagnostics; a span is failed at exactly ``max_failures`` (hover and lens); the retry command
really sends a failed span again; ``enrichFile`` runs while paused; invalid editor settings
pop up exactly once.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from tests.lsp.conftest import SAMPLE, SUMMARY, Editor, requested_names, toml_settings, wait_for
from tests.support.replies import valid_responder
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

PARSE_LINE = 12  # "def parse_config(text):"
LOAD_LINE = 3
EDITED = SAMPLE.replace("splitlines())", "splitlines() if line)")


def _settings(url: str, **enrichment: Any) -> str:
    """The test spanlens.toml with some [enrichment] values replaced."""
    text = toml_settings(url)
    for key, value in enrichment.items():
        if f"{key} = " in text:
            start = text.index(f"{key} = ")
            end = text.index("\n", start)
            text = text[:start] + f"{key} = {value!r}" + text[end:]
        else:
            text = text.replace("[enrichment]\n", f"[enrichment]\n{key} = {value!r}\n")
    return text


async def _open_without_backlog(editor: Editor) -> str:
    """Open config.py as an unsaved buffer (not on disk: no backlog) and mark it edited, so
    that open-document work waits for the quiet period."""
    source = editor.root / "config.py"
    source.unlink()
    await editor.start()
    await editor.hold_open_work()  # an edit: open work waits until idle
    uri = editor.open("config.py", SAMPLE)
    return uri


async def _hover_containing(editor: Editor, needle: str, line: int = PARSE_LINE) -> str | None:
    text = await editor.hover_text("config.py", line)
    return text if needle in text else None


async def _lens_at(editor: Editor, line: int, prefix: str) -> str | None:
    title = (await editor.lens_titles("config.py")).get(line, "")
    return title if title.startswith(prefix) else None


# ------------------------------------------------------------------ hover moves a span up


async def test_hovering_a_pending_span_enriches_it_before_the_others(
    editor: Editor, standin: StandinModelServer
) -> None:
    (editor.root / "spanlens.toml").write_text(
        toml_settings(standin.url).replace("idle_seconds = 0.3", "idle_seconds = 600.0")
    )
    await _open_without_backlog(editor)
    await wait_for(lambda: editor.last_status().get("queue", {}).get("open") == 4, what="open")
    assert standin.chat_requests == []  # open-document work waits for the quiet period

    first = await editor.hover_text("config.py", PARSE_LINE)
    assert "pending: waiting for a model" in first
    hover = await wait_for(lambda: _hover_containing(editor, "enriched by"), what="enriched")
    assert "parse_config in" in hover
    assert [requested_names(r) for r in standin.chat_requests] == [["parse_config"]]
    titles = await editor.lens_titles("config.py")
    assert titles[PARSE_LINE].startswith(SUMMARY)
    assert [titles[line] for line in (0, LOAD_LINE, 7)] == ["… pending enrichment"] * 3


# ------------------------------------------------------------------ diagnostics


async def test_stale_spans_and_closed_documents_lose_their_pitfall_diagnostics(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    uri = editor.open("config.py")
    diagnostics = await wait_for(
        lambda: len(editor.client.diagnostics.get(uri, [])) == 4 and editor.client.diagnostics[uri],
        what="four pitfall diagnostics",
    )
    parse = [d for d in diagnostics if d.range.start.line == PARSE_LINE]
    assert [(d.code, d.source) for d in parse] == [("pitfall", "spanlens")]
    assert isinstance(parse[0].data, dict) and isinstance(parse[0].data.get("spanId"), int)

    # From now on the model fails: parse_config stays stale (its old summary, marked).
    standin.responder = lambda request: Reply.error(500)
    editor.replace("config.py", EDITED, version=2)

    def stale_gone() -> list[types.Diagnostic] | None:
        now = editor.client.diagnostics.get(uri, [])
        lines = sorted(d.range.start.line for d in now)
        return now if lines == [0, LOAD_LINE, 7] else None

    await wait_for(stale_gone, what="the stale span's diagnostic to go")
    hover = await editor.hover_text("config.py", PARSE_LINE)
    assert "stale: code changed since this summary" in hover

    # didClose clears the document's diagnostics (the client keeps each list as the tuple it
    # decoded: compare lengths) ...
    editor.client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await wait_for(lambda: len(editor.client.diagnostics.get(uri, "?")) == 0, what="no diagnostics")
    # ... and an enrichment landing for the closed file publishes nothing for it (the disk
    # now holds the edited text, so the model is really called for it).
    (editor.root / "config.py").write_text(EDITED)
    standin.responder = valid_responder
    before = len(standin.chat_requests)
    retried = await editor.command("spanlens.enrichFile", {"uri": uri})
    assert retried == {"queued": 1}
    await wait_for(lambda: _all_fresh(editor), what="the stale span enriched again")
    await wait_for(lambda: editor.last_status().get("state") == "idle", what="idle")
    assert [requested_names(r) for r in standin.chat_requests[before:]] == [["parse_config"]]
    assert any(n["uris"] == [uri] for n in editor.enriched)  # it landed after the close
    assert len(editor.client.diagnostics[uri]) == 0


# ------------------------------------------------------------------ failed at max_failures


def _invalid(request: RecordedRequest) -> Reply:
    return Reply.content("I cannot produce JSON for this.")


async def test_a_span_is_failed_at_exactly_max_failures_then_retry_sends_it_again(
    editor: Editor, standin: StandinModelServer
) -> None:
    (editor.root / "spanlens.toml").write_text(_settings(standin.url, max_failures=2))
    standin.responder = _invalid
    await editor.start()
    editor.open("config.py")

    # One failure (max_failures - 1): still pending, waiting for its retry time.
    hover = await wait_for(
        lambda: _hover_containing(editor, "pending: last attempt failed"), what="a first failure"
    )
    assert "use the retry command" not in hover
    lens = await wait_for(lambda: _lens_at(editor, PARSE_LINE, "…"), what="a pending lens")
    assert lens == "… pending (retrying after an error)"
    at_parse = {"uri": editor.uri("config.py"), "line": PARSE_LINE, "character": 5}
    shown = await editor.command("spanlens.showSpan", at_parse)
    assert shown["span"]["state"] == "pending"
    assert shown["span"]["failure"]["count"] == 1

    # The second failure (= max_failures): failed, in the hover and in the lens.
    calls = len(standin.chat_requests)
    queued = await editor.command("spanlens.enrichSpan", at_parse)
    assert queued["queued"] == 1
    failed = await wait_for(lambda: _hover_containing(editor, "failed:"), what="failed")
    state_line = failed.strip().splitlines()[-1]
    assert "failed: invalid output" in state_line, state_line
    assert "2 attempts" in state_line and "use the retry command" in state_line
    lens = await wait_for(lambda: _lens_at(editor, PARSE_LINE, "✗"), what="a failed lens")
    assert lens.startswith("✗ enrichment failed: ")
    assert len(standin.chat_requests) > calls
    report = await editor.command("spanlens.statusReport")
    assert report["counts"]["failed"] == 1

    # The retry command forgets the failures: the span goes to the model again and lands.
    standin.responder = valid_responder
    before = len(standin.chat_requests)
    retried = await editor.command("spanlens.retryFailed", {"uri": editor.uri("config.py")})
    assert retried["retried"] >= 1
    await wait_for(lambda: _hover_containing(editor, "enriched by"), what="enriched after retry")
    sent = [n for r in standin.chat_requests[before:] for n in requested_names(r)]
    assert "parse_config" in sent
    report = await editor.command("spanlens.statusReport")
    assert report["counts"]["failed"] == 0


async def test_retry_failed_without_an_argument_clears_every_file(
    editor: Editor, standin: StandinModelServer
) -> None:
    (editor.root / "spanlens.toml").write_text(_settings(standin.url, max_failures=1))
    standin.responder = _invalid
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: _all_failed(editor), what="every span failed")
    standin.responder = valid_responder
    retried = await editor.command("spanlens.retryFailed", {})
    assert retried == {"retried": 4}
    await wait_for(lambda: _all_fresh(editor), what="every span enriched after the retry")


async def _all_failed(editor: Editor) -> bool:
    titles = await editor.lens_titles("config.py")
    return len(titles) == 4 and all(t.startswith("✗ enrichment failed") for t in titles.values())


async def _all_fresh(editor: Editor) -> bool:
    titles = await editor.lens_titles("config.py")
    return len(titles) == 4 and all(t.startswith(SUMMARY) for t in titles.values())


# ------------------------------------------------------------------ commands while paused


async def test_enrich_file_runs_while_paused(editor: Editor, standin: StandinModelServer) -> None:
    source = editor.root / "config.py"
    source.unlink()  # no backlog before the pause
    await editor.start()
    paused = await editor.command("spanlens.pause")
    assert paused["paused"] == "all" and paused["state"] == "paused"
    editor.open("config.py", SAMPLE)
    await wait_for(lambda: editor.last_status().get("queue", {}).get("open") == 4, what="queued")
    assert standin.chat_requests == []

    queued = await editor.command("spanlens.enrichFile", {"uri": editor.uri("config.py")})
    assert queued == {"queued": 4}
    await wait_for(lambda: _all_fresh(editor), what="the file enriched while paused")
    assert editor.last_status()["paused"] == "all"
    again = await editor.command("spanlens.enrichFile", {"uri": editor.uri("config.py")})
    assert again == {"queued": 0}  # nothing without a fresh enrichment is left


# ------------------------------------------------------------------ invalid settings


async def test_invalid_editor_settings_pop_up_once_per_distinct_error(editor: Editor) -> None:
    await editor.start(init_options={"lsp": {"diagnostics": "loud"}})

    def errors() -> list[types.ShowMessageParams]:
        return [m for m in editor.client.messages if m.type == types.MessageType.Error]

    [first] = await wait_for(errors, what="the invalid-setting message")
    assert "lsp.diagnostics" in first.message
    assert "Ignored the editor's spanlens settings" in first.message
    for _ in range(3):
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"spanlens": {"lsp": {"diagnostics": "loud"}}}
            )
        )
    # A valid change after them is applied: the server processed every notification.
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"spanlens": {"lsp": {"code_lens": "top", "diagnostics": "hint"}}}
        )
    )
    editor.open("config.py")
    await wait_for(lambda: _lens_lines(editor, {0, PARSE_LINE}), what="code_lens top applied")
    assert len(errors()) == 1
    assert [m for m in editor.client.messages if m.type != types.MessageType.Error] == []

    # Another error pops up once more, and the previous settings stay in force.
    bad = {"spanlens": {"lsp": {"code_lens": "off", "idle_seconds": "soon"}}}
    for _ in range(2):
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings=bad)
        )
    second = await wait_for(lambda: errors()[1:], what="the second invalid-setting message")
    assert len(second) == 1
    assert "lsp.idle_seconds" in second[0].message
    assert "Kept the previous settings" in second[0].message
    assert await _lens_lines(editor, {0, PARSE_LINE})
    assert len(errors()) == 2


async def _lens_lines(editor: Editor, lines: set[int]) -> bool:
    return set(await editor.lens_titles("config.py")) == lines
