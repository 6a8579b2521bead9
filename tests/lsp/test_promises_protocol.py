"""protocol.md, promise by promise: capabilities, settings layers, lenses, hovers, commands,
notifications and progress, each checked under the Neovim and the VS Code profile.

Other files cover the rest (see the list in each test's name); here sit the promises that no
other test would notice breaking.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import client_capabilities
from tests.lsp.conftest import SAMPLE, SUMMARY, Editor, toml_settings, wait_for
from tests.support.standin import StandinModelServer

PARSE_LINE = 12
LOAD_LINE = 3
COMMANDS = {
    "spanlens.enrichFile",
    "spanlens.enrichSpan",
    "spanlens.retryFailed",
    "spanlens.pause",
    "spanlens.resume",
    "spanlens.showSpan",
    "spanlens.statusReport",
    "spanlens.docgenFile",
    "spanlens.openDoc",
    "spanlens.installModel",
    "spanlens.search",
}
#: Top-level fields of the spanlens/status payload (protocol.md).
STATUS_FIELDS = {
    "version",
    "state",
    "root",
    "indexing",
    "indexed",
    "lastSave",
    "queue",
    "inFlight",
    "calls",
    "paused",
    "idle",
    "deferredSeconds",
    "backlogEmpty",
    "lastError",
    "modelSource",
    "localEngine",
    "embeddings",
    "backends",
    "gpu",
    "docgen",
}
ENDPOINT_FIELDS = {
    "name",
    "tier",
    "provider",
    "url",
    "model",
    "remote",
    "breaker",
    "in_flight",
    "calls",
    "last_error",
}


async def _fresh_lenses(editor: Editor, count: int = 4) -> dict[int, str] | None:
    titles = await editor.lens_titles("config.py")
    if len(titles) == count and all(t.startswith(SUMMARY) for t in titles.values()):
        return titles
    return None


def state_line(markdown: str) -> str:
    """The hover's last line as the user reads it: emphasis and backslash escapes removed."""
    line = markdown.strip().splitlines()[-1]
    return re.sub(r"\\(.)", r"\1", line).strip("*_ ")


def _caps(profile: str, **changes: Any) -> types.ClientCapabilities:
    """The profile's capabilities with some parts replaced (dotted names, snake_case)."""
    caps = copy.deepcopy(client_capabilities(profile))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target: Any = caps
        for name in parents:
            target = getattr(target, name)
        setattr(target, last, value)
    return caps


# ------------------------------------------------------------------ initialize


async def test_initialize_advertises_what_protocol_md_lists(editor: Editor) -> None:
    await editor.start()
    assert editor.init_result is not None
    caps = editor.init_result.capabilities
    assert caps.position_encoding == types.PositionEncodingKind.Utf16
    sync = caps.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.open_close is True
    assert sync.change == types.TextDocumentSyncKind.Incremental
    save = sync.save
    assert isinstance(save, types.SaveOptions) and not save.include_text
    assert caps.hover_provider
    assert caps.code_lens_provider is not None and caps.code_lens_provider.resolve_provider
    assert caps.workspace_symbol_provider
    assert caps.execute_command_provider is not None
    assert set(caps.execute_command_provider.commands) == COMMANDS

    # didChangeWatchedFiles: registered dynamically, one watcher per extension, only when the
    # client can take it.
    dynamic = client_capabilities(editor.profile).workspace.did_change_watched_files
    if dynamic and dynamic.dynamic_registration:
        [registration] = await wait_for(lambda: editor.registrations, what="a registration")
        assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
        options = registration.register_options
        globs = [w["globPattern"] for w in options["watchers"]]  # type: ignore[index]
        assert "**/*.py" in globs and "**/*.ts" in globs and "**/*.go" in globs
        assert len(globs) == len(set(globs))
    else:
        assert editor.registrations == []


async def test_utf16_columns_and_plain_text_hovers_for_clients_that_prefer_them(
    editor: Editor, standin: StandinModelServer
) -> None:
    # "é" is one UTF-16 unit but two UTF-8 bytes: a column counted in bytes would land on "x".
    (editor.root / "config.py").write_text('def café(x):\n    return "é" + x\n')
    general = types.GeneralClientCapabilities(
        position_encodings=[types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16]
    )
    hover = types.HoverClientCapabilities(
        content_format=[types.MarkupKind.PlainText, types.MarkupKind.Markdown]
    )
    caps = _caps(editor.profile, general=general, text_document__hover=hover)
    await editor.start(capabilities=caps)
    assert editor.init_result is not None
    assert editor.init_result.capabilities.position_encoding == types.PositionEncodingKind.Utf16
    editor.open("config.py")
    lenses = await wait_for(
        lambda: editor.client.text_document_code_lens_async(
            types.CodeLensParams(
                text_document=types.TextDocumentIdentifier(editor.uri("config.py"))
            )
        ),
        what="a lens",
    )
    assert (lenses[0].range.start.character, lenses[0].range.end.character) == (4, 8)

    # Plain text first in hover.contentFormat: a plain-text hover, no Markdown in it.
    result = await editor.client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=editor.uri("config.py")),
            position=types.Position(line=0, character=5),
        )
    )
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    assert result.contents.kind == types.MarkupKind.PlainText
    assert "```" not in result.contents.value and "\\" not in result.contents.value
    assert result.contents.value.startswith("def café(x)")


# ------------------------------------------------------------------ code lenses


async def test_lenses_carry_data_only_and_resolve_to_show_span(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    uri = editor.open("config.py")
    await wait_for(lambda: _fresh_lenses(editor), what="fresh lenses")
    lenses = await editor.client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert lenses is not None and len(lenses) == 4
    for lens in lenses:
        assert lens.command is None
        assert set(lens.data) == {"spanId", "uri"} and lens.data["uri"] == uri
    parse = next(lens for lens in lenses if lens.range.start.line == PARSE_LINE)
    # On the span's name, not its whole range.
    assert (parse.range.start.character, parse.range.end.character) == (4, 16)
    resolved = await editor.client.code_lens_resolve_async(parse)
    assert resolved.command is not None
    assert resolved.command.command == "spanlens.showSpan"
    assert list(resolved.command.arguments or []) == [{"spanId": parse.data["spanId"]}]
    title = f"{SUMMARY} function parse_config in config.py. · ⚠ 1 pitfall · qwen2.5-coder:7b"
    assert resolved.command.title == title

    # A lens whose span vanished.
    gone = types.CodeLens(range=parse.range, data={"spanId": 10**9, "uri": uri})
    vanished = await editor.client.code_lens_resolve_async(gone)
    assert vanished.command is not None
    assert vanished.command.title == "spanlens: changed, re-indexing"
    assert vanished.command.command == ""

    # spanlens/enriched names the file and the spans that landed.
    ids = {lens.data["spanId"] for lens in lenses}
    notes = [n for n in editor.enriched if n["uris"] == [uri]]
    assert notes and {i for n in notes for i in n["spanIds"]} == ids
    assert set(notes[0]) == {"uris", "spanIds"}
    # Refresh only for clients that advertise it.
    await wait_for(lambda: editor.last_status().get("state") == "idle", what="idle")
    if editor.supports_refresh:
        await wait_for(lambda: editor.lens_refreshes > 0, what="a codeLens refresh")
    else:
        assert editor.lens_refreshes == 0

    # The model saw the code; the editor's log never does.
    marker = "handle.write(data)"
    assert any(marker in r.body.decode() for r in standin.chat_requests)
    assert all(
        marker not in m.message for m in [*editor.client.log_messages, *editor.client.messages]
    )


# ------------------------------------------------------------------ hover


async def test_hover_and_command_results_have_the_documented_shapes(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    editor.open("config.py")
    await wait_for(lambda: _fresh_lenses(editor), what="fresh lenses")
    result = await editor.client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=editor.uri("config.py")),
            position=types.Position(line=PARSE_LINE + 2, character=10),  # inside the body
        )
    )
    assert result is not None and isinstance(result.contents, types.MarkupContent)
    assert result.contents.kind == types.MarkupKind.Markdown
    # The range is the whole span.
    assert result.range == types.Range(
        start=types.Position(line=PARSE_LINE, character=0),
        end=types.Position(line=PARSE_LINE + 2, character=65),
    )
    text = result.contents.value
    order = [
        text.index("```python\ndef parse_config(text)"),  # the signature, fenced
        text.index("Test enrichment for the function"),  # the summary
        text.index("the text argument"),  # inputs
        text.index("whatever it computes"),  # outputs
        text.index("⚠"),  # pitfalls
        text.index("parse_config(...)"),  # the usage snippet
        text.index("Parser facts"),  # the parser's facts
    ]
    assert order == sorted(order), text
    assert "```" in text[order[4] : order[5]]  # the usage snippet is fenced
    fresh = state_line(text)  # the state line is last
    assert re.fullmatch(
        r"✓ enriched by qwen2\.5-coder:7b \(small\) on \d{4}-\d\d-\d\d( \d\d:\d\d)?", fresh
    ), fresh

    # Hovering a fresh span queues nothing.
    await wait_for(lambda: editor.last_status().get("state") == "idle", what="idle")
    calls = len(standin.chat_requests)
    await editor.hover_text("config.py", PARSE_LINE)
    await wait_for(lambda: editor.last_status().get("state") == "idle", what="idle again")
    assert len(standin.chat_requests) == calls
    assert editor.last_status()["queue"]["requested"] == 0

    at = {"uri": editor.uri("config.py"), "line": PARSE_LINE, "character": 4}
    shown = await editor.command("spanlens.showSpan", at)
    assert set(shown) == {"uri", "markdown", "plaintext", "span"}
    assert shown["uri"] == editor.uri("config.py")
    span = shown["span"]
    assert set(span) >= {
        "path",
        "language",
        "name",
        "kind",
        "range",
        "content_hash",
        "state",
        "facts",
        "enrichment",
        "failure",
    }
    assert (span["path"], span["language"], span["name"], span["kind"]) == (
        "config.py",
        "python",
        "parse_config",
        "function",
    )
    assert span["range"] == {"start": [PARSE_LINE + 1, 0], "end": [PARSE_LINE + 3, 65]}
    assert span["state"] == "fresh" and span["failure"] is None
    assert set(span["enrichment"]) >= {"data", "model", "tier", "backend", "host", "created_at"}
    assert span["enrichment"]["model"] == "qwen2.5-coder:7b"
    assert span["enrichment"]["backend"] == "standin"
    assert span["enrichment"]["host"] == f"127.0.0.1:{standin.port}"
    assert shown["plaintext"].startswith("def parse_config(text)")

    queued = await editor.command("spanlens.enrichSpan", at)
    assert queued["queued"] == 0 and isinstance(queued["spanId"], int)  # already fresh
    same = await editor.command("spanlens.showSpan", {"spanId": queued["spanId"]})
    assert same["span"]["name"] == "parse_config"

    report = await editor.command("spanlens.statusReport")
    assert set(report) == {"status", "counts", "docgen", "markdown"}
    assert report["counts"] == {"spans": 4, "fresh": 4, "stale": 0, "pending": 0, "failed": 0}
    assert set(report["status"]) == STATUS_FIELDS
    assert "- spans: 4 (4 enriched, 0 stale, 0 pending, 0 failed)" in report["markdown"]
    assert "- embeddings: none (search by keywords)" in report["markdown"].splitlines()
    assert editor.root.as_posix() in report["markdown"]

    resumed = await editor.command("spanlens.resume")
    assert set(resumed) == STATUS_FIELDS and resumed["paused"] is None
    assert await editor.command("spanlens.retryFailed") == {"retried": 0}


async def test_hovering_a_stale_span_moves_it_up(
    editor: Editor, standin: StandinModelServer
) -> None:
    (editor.root / "config.py").unlink()  # no backlog
    (editor.root / "spanlens.toml").write_text(
        toml_settings(standin.url).replace("idle_seconds = 0.3", "idle_seconds = 600.0")
    )
    await editor.start()
    await editor.hold_open_work()  # an edit: open-document work waits
    editor.open("config.py", SAMPLE)
    await wait_for(lambda: editor.last_status().get("queue", {}).get("open") == 4, what="open")
    for line in (0, LOAD_LINE, 7, PARSE_LINE):  # hovers alone enrich them
        await editor.hover_text("config.py", line, 6)
    await wait_for(lambda: _fresh_lenses(editor), what="every span enriched through hovers")
    edited = SAMPLE.replace("splitlines())", "splitlines() if line)")
    editor.replace("config.py", edited, version=3)

    async def stale() -> bool:
        return (await editor.lens_titles("config.py")).get(PARSE_LINE, "").startswith("↻")

    await wait_for(stale, what="the stale lens")
    calls = len(standin.chat_requests)
    await editor.hover_text("config.py", PARSE_LINE)
    await wait_for(lambda: _fresh_lenses(editor), what="the stale span enriched again")
    assert len(standin.chat_requests) == calls + 1


# ------------------------------------------------------------------ workspace symbols


async def test_workspace_symbol_container_names_kinds_limit_and_empty_query(
    editor: Editor,
) -> None:
    many = "".join(f"def widget_{i}(x):\n    return x\n\n" for i in range(130))
    (editor.root / "many.py").write_text(many)
    await editor.start()
    symbols = await editor.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="load"))
    assert symbols is not None
    [load] = [s for s in symbols if s.name == "Config.load"]
    assert load.container_name == "Config"
    assert load.kind == types.SymbolKind.Method
    assert isinstance(load.location, types.Location)
    assert load.location.uri == editor.uri("config.py")
    assert load.location.range.start.line == LOAD_LINE
    [parse] = await editor.client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="parse config")
    ) or [None]
    assert parse is not None and parse.container_name == "config.py"
    assert parse.kind == types.SymbolKind.Function
    [config] = [
        s
        for s in await editor.client.workspace_symbol_async(
            types.WorkspaceSymbolParams(query="Config")
        )
        or []
        if s.name == "Config"
    ]
    assert config.kind == types.SymbolKind.Class
    widgets = await editor.client.workspace_symbol_async(
        types.WorkspaceSymbolParams(query="widget")
    )
    assert widgets is not None and len(widgets) == 100
    assert await editor.client.workspace_symbol_async(types.WorkspaceSymbolParams(query="")) in (
        [],
        None,
    )


# ------------------------------------------------------------------ commands


BAD_ARGUMENTS: list[tuple[str, list[Any]]] = [
    ("spanlens.showSpan", [{"nothing": 1}]),
    ("spanlens.showSpan", [{"spanId": 1}, {"spanId": 2}]),
    ("spanlens.showSpan", ["config.py"]),
    ("spanlens.enrichFile", [{}]),
    ("spanlens.enrichFile", [{"uri": "file:///elsewhere/x.py"}]),
    ("spanlens.enrichSpan", [{"line": 3}]),
    ("spanlens.retryFailed", [{"uri": "file:///elsewhere/x.py"}]),
    ("spanlens.search", [{}]),
    ("spanlens.search", [{"query": "  "}]),
    ("spanlens.search", [{"query": "config", "limit": 0}]),
    ("spanlens.search", [{"query": "config", "limit": True}]),
]


async def test_bad_command_arguments_answer_invalid_params(editor: Editor) -> None:
    await editor.start()
    for command, arguments in BAD_ARGUMENTS:
        with pytest.raises(JsonRpcInvalidParams) as raised:
            await editor.command(command, *arguments)
        assert raised.value.code == -32602, (command, arguments)
        message = str(raised.value.message)
        assert message and "\n" not in message and "Traceback" not in message, message
    assert (await editor.command("spanlens.statusReport"))["counts"]["spans"] == 4


# ------------------------------------------------------------------ status and progress


async def test_status_payload_fields_and_states(
    editor: Editor, standin: StandinModelServer
) -> None:
    standin.latency = 0.6  # long enough to see a call in flight
    await editor.start()
    first = editor.statuses[0]
    assert set(first) >= {"version", "state", "root", "indexing", "indexed", "lastSave"}
    editor.open("config.py")
    enriching = await wait_for(
        lambda: next((s for s in editor.statuses if s.get("state") == "enriching"), None),
        what="an enriching status",
    )
    assert enriching["inFlight"] >= 1 and enriching["calls"] >= 1
    editor.save("config.py")
    await wait_for(lambda: _fresh_lenses(editor), what="fresh lenses")
    status = await wait_for(
        lambda: editor.last_status() if editor.last_status().get("state") == "idle" else None,
        what="idle",
    )
    assert set(status) == STATUS_FIELDS
    assert status["version"] == 1
    assert status["root"] == str(editor.root)
    assert status["indexing"] is None and status["indexed"] is True
    assert set(status["lastSave"]) == {"path", "spans", "queuedMs"}
    assert status["lastSave"]["path"] == "config.py"
    assert status["queue"] == {"saved": 0, "requested": 0, "open": 0, "backlog": 0}
    assert (status["inFlight"], status["calls"], status["paused"]) == (0, 0, None)
    assert status["idle"] is True and status["deferredSeconds"] == 0
    assert status["gpu"] is None  # [gpu] enabled = false
    assert status["docgen"] is None  # [docgen] enabled = false
    [endpoint] = status["backends"]["endpoints"]
    assert set(endpoint) >= ENDPOINT_FIELDS
    assert endpoint["url"] == standin.url and endpoint["provider"] == "ollama"
    assert endpoint["remote"] is False and endpoint["breaker"] == "closed"
    assert endpoint["calls"] >= 1 and endpoint["last_error"] is None
    assert status["backends"]["unreachable"] is False
    # Calls in flight never exceeded the tier's max_parallel (2).
    assert 1 <= standin.max_in_flight <= 2


async def test_indexing_progress_and_none_without_work_done_support(editor: Editor) -> None:
    for n in range(3):
        (editor.root / f"m{n}.py").write_text(f"def f{n}(x):\n    return x\n")
    await editor.start()

    def reports(title: str) -> list[Any] | None:
        for values in editor.client.progress_reports.values():
            if values and getattr(values[0], "title", "") == title:
                return values if isinstance(values[-1], types.WorkDoneProgressEnd) else None
        return None

    indexing = await wait_for(lambda: reports("spanlens: indexing"), what="indexing progress")
    assert isinstance(indexing[0], types.WorkDoneProgressBegin)
    assert not indexing[0].cancellable
    assert indexing[-1].message == "7 spans in 4 changed files"
    middle = [r for r in indexing if isinstance(r, types.WorkDoneProgressReport)]
    assert all(re.fullmatch(r"\d+/4 files", r.message or "") for r in middle)
    assert all(r.percentage is None or 0 <= r.percentage <= 100 for r in middle)

    editor.open("config.py")
    queue = await wait_for(lambda: reports("spanlens: enriching"), what="queue progress to end")
    assert queue[0].cancellable is True
    assert all(
        re.fullmatch(r"\d+ in flight, \d+ queued", r.message or "")
        for r in queue
        if isinstance(r, types.WorkDoneProgressReport)
    )


async def test_no_progress_for_clients_without_work_done_progress(
    tmp_path: Path, workspace: Path
) -> None:
    for profile in ("neovim", "visual-studio-code"):
        editor = Editor(profile=profile, root=workspace)
        try:
            window = types.WindowClientCapabilities(work_done_progress=False)
            await editor.start(capabilities=_caps(profile, window=window))
            editor.open("config.py")
            await wait_for(lambda e=editor: _fresh_lenses(e), what="fresh lenses")
            assert editor.client.progress_reports == {}
        finally:
            await editor.stop()
        (workspace / ".spanlens" / "index.db").unlink()


# ------------------------------------------------------------------ settings layers


async def test_settings_layers_later_wins_and_null_means_unset(
    editor: Editor, standin: StandinModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = toml_settings(standin.url).replace("[lsp]\n", '[lsp]\ncode_lens = "off"\n')
    (editor.root / "spanlens.toml").write_text(text)
    monkeypatch.setenv("SPANLENS_LSP_CODE_LENS", "all")  # the environment beats the file
    monkeypatch.setenv("SPANLENS_LSP_DIAGNOSTICS", "off")
    await editor.start(
        init_options={"lsp": {"code_lens": "top", "diagnostics": "information"}},
        # workspace/configuration beats initializationOptions; null means "not set here".
        configuration={"lsp": {"code_lens": None, "diagnostics": "hint"}},
    )
    uri = editor.open("config.py")
    titles = await wait_for(lambda: editor.lens_titles("config.py"), what="lenses")
    assert set(titles) == {0, PARSE_LINE}  # "top" from initializationOptions
    found = await wait_for(lambda: editor.client.diagnostics.get(uri), what="diagnostics")
    assert {d.severity for d in found} == {types.DiagnosticSeverity.Hint}

    # A pushed table is used instead of pulling, even from a client that could be pulled.
    editor.client.set_configuration({"lsp": {"code_lens": "top"}}, section="spanlens")
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"spanlens": {"lsp": {"code_lens": "all"}}})
    )
    await wait_for(
        lambda: _lens_lines(editor, {0, LOAD_LINE, 7, PARSE_LINE}), what="all lenses (pushed)"
    )
    # Without a table, the server pulls.
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings=None)
    )
    await wait_for(lambda: _lens_lines(editor, {0, PARSE_LINE}), what="top lenses (pulled)")


async def _lens_lines(editor: Editor, lines: set[int]) -> bool:
    return set(await editor.lens_titles("config.py")) == lines


async def test_invalid_file_and_editor_settings_fall_back_to_the_defaults(
    editor: Editor, standin: StandinModelServer
) -> None:
    text = toml_settings(standin.url).replace("[lsp]\n", '[lsp]\ncode_lens = "sometimes"\n')
    (editor.root / "spanlens.toml").write_text(text)
    await editor.start(init_options={"lsp": {"diagnostics": "loud"}})
    [error] = await wait_for(
        lambda: [m for m in editor.client.messages if m.type == types.MessageType.Error],
        what="the invalid-setting message",
    )
    assert "Using the defaults." in error.message
    assert "code_lens" in error.message or "diagnostics" in error.message


async def test_a_workspace_file_cannot_send_code_off_the_machine(
    editor: Editor, standin: StandinModelServer
) -> None:
    remote = "http://model.example.com:8000"
    text = toml_settings(standin.url) + (
        f'\n[[backends]]\nname = "offsite"\nprovider = "openai"\nurl = "{remote}"\n'
        'model = "gpt"\ntier = "small"\n'
    )
    (editor.root / "spanlens.toml").write_text(text)
    await editor.start()
    warning = await wait_for(
        lambda: [m for m in editor.client.log_messages if "offsite" in m.message],
        what="a log warning naming the dropped backend",
    )
    assert warning[0].type == types.MessageType.Warning
    report = await editor.command("spanlens.statusReport")
    names = [e["name"] for e in report["status"]["backends"]["endpoints"]]
    assert names == ["standin"]


async def test_changing_backends_replaces_the_engine_after_the_call_in_flight(
    editor: Editor, standin: StandinModelServer
) -> None:
    from tests.support.replies import valid_responder

    standin.latency = 1.0
    await editor.start()
    editor.open("config.py", SAMPLE)
    await wait_for(lambda: standin.in_flight > 0, what="a call in flight")
    with StandinModelServer(responder=valid_responder) as second:
        backends = [
            {"name": "second", "provider": "ollama", "url": second.url, "model": "qwen2.5-coder:7b"}
        ]
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"spanlens": {"backends": backends}})
        )
        await wait_for(lambda: _fresh_lenses(editor), what="every span enriched")
        status = editor.last_status()
        assert [e["name"] for e in status["backends"]["endpoints"]] == ["second"]
        # The old engine finished the work it had started (its calls may queue behind its
        # slots); from now on every call goes to the new backend.
        await wait_for(lambda: standin.in_flight == 0, what="the old engine's calls to end")
        sent_to_first = len(standin.chat_requests)
        edited = SAMPLE.replace("splitlines())", "splitlines() if line)")
        editor.replace("config.py", edited, version=2)
        editor.save("config.py")
        await wait_for(
            lambda: _fresh_lenses(editor) if len(second.chat_requests) else None,
            what="the edited span enriched by the new backend",
        )
        assert len(standin.chat_requests) == sent_to_first  # nothing new went to the old one
    backends_used = set()
    for line in (0, LOAD_LINE, 7, PARSE_LINE):
        at = {"uri": editor.uri("config.py"), "line": line, "character": 6}
        shown = await editor.command("spanlens.showSpan", at)
        backends_used.add(shown["span"]["enrichment"]["backend"])
    # The old engine's call landed (its spans keep that result); the edit came from the new one.
    assert backends_used == {"standin", "second"}
