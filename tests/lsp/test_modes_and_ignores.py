"""Work the server must not do: background calls after an edit, model work without a model,
indexing files the workspace walk ignores."""

from __future__ import annotations

import re

from lsprotocol import types
from pytest_lsp import client_capabilities
from tests.lsp.conftest import SAMPLE, Editor, requested_names, toml_settings, wait_for
from tests.support.standin import StandinModelServer

PARSE_LINE = 12

#: A backlog file: a class, its methods and functions (the engine sends each kind apart).
BACKLOG = """\
class Shape{n}:
    def area(self):
        return {n}

    def grow(self, k):
        return k * {n}


def make{n}():
    return Shape{n}()


def show{n}(shape):
    return str(shape.area())
"""


async def test_an_edit_stops_new_backlog_calls(editor: Editor, standin: StandinModelServer) -> None:
    for n in range(6):
        (editor.root / f"a{n}.py").write_text(BACKLOG.format(n=n))
    toml = toml_settings(standin.url).replace("max_parallel = 2", "max_parallel = 1")
    (editor.root / "spanlens.toml").write_text(toml)
    standin.latency = 0.5
    await editor.start()
    await wait_for(lambda: standin.chat_requests, what="the backlog to start")

    editor.open("config.py")
    edited = SAMPLE.replace("splitlines())", "splitlines() if line)")
    editor.replace("config.py", edited, version=2)
    editor.save("config.py")
    before = len(standin.chat_requests)

    def saved_call() -> int | None:
        for index, request in enumerate(standin.chat_requests[before:]):
            if "parse_config" in requested_names(request):
                return index + 1
        return None

    position = await wait_for(saved_call, what="the saved span's call")
    # At most the call that was already waiting on the endpoint goes before the save.
    assert position <= 2, [requested_names(r) for r in standin.chat_requests[before:]]


async def test_facts_only_mode(editor: Editor, standin: StandinModelServer) -> None:
    facts_only = "backends = []\n" + toml_settings(standin.url).split("[[backends]]")[0]
    (editor.root / "spanlens.toml").write_text(facts_only)
    await editor.start()
    editor.open("config.py")
    hover = await wait_for(lambda: editor.hover_text("config.py", PARSE_LINE), what="a hover")
    assert "parse_config" in hover
    assert "facts only" in hover
    titles = await wait_for(lambda: editor.lens_titles("config.py"), what="lenses")
    assert set(titles.values()) == {"facts only: no model configured"}
    shown = await editor.command("spanlens.showSpan", {"uri": editor.uri("config.py"), "line": 0})
    assert shown["span"]["state"] == "facts_only"
    last = shown["markdown"].strip().splitlines()[-1]
    assert re.sub(r"\\(.)", r"\1", last).strip("*") == "… facts only: no model configured"

    editor.replace("config.py", SAMPLE.replace("splitlines())", "splitlines() if line)"), 2)
    editor.save("config.py")
    await wait_for(lambda: editor.last_status().get("lastSave"), what="the save")
    status = editor.last_status()
    assert status["state"] == "facts_only"
    assert not any(status["queue"].values())
    assert status["backends"] == {"endpoints": [], "unreachable": False, "misconfigured": []}
    report = await editor.command("spanlens.statusReport")
    assert "- backends: none (facts only)" in report["markdown"].splitlines()
    assert standin.chat_requests == []


async def test_a_previous_summary_is_not_re_enriched_without_a_model(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    editor.open("config.py")

    async def enriched() -> bool:
        return "enriched by" in await editor.hover_text("config.py", PARSE_LINE)

    await wait_for(enriched, what="an enrichment")
    facts_only = "backends = []\n" + toml_settings(standin.url).split("[[backends]]")[0]
    (editor.root / "spanlens.toml").write_text(facts_only)
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"spanlens": {}})
    )
    await wait_for(
        lambda: editor.last_status().get("state") == "facts_only", what="facts-only mode"
    )
    editor.replace("config.py", SAMPLE.replace("splitlines())", "splitlines() if line)"), 2)
    editor.save("config.py")

    async def facts_only_hover() -> str | None:
        text = await editor.hover_text("config.py", PARSE_LINE)
        return text if "facts only" in text else None

    hover = await wait_for(facts_only_hover, what="a facts-only hover")
    assert "re-enriching" not in hover


async def test_status_report_lists_the_backends(
    editor: Editor, standin: StandinModelServer
) -> None:
    await editor.start()
    report = await editor.command("spanlens.statusReport")
    [line] = [x for x in report["markdown"].splitlines() if x.startswith("- backend standin:")]
    assert f"url={standin.url}" in line and "model=qwen2.5-coder:7b" in line


async def test_watched_files_the_walk_ignores_are_not_indexed(editor: Editor) -> None:
    root = editor.root
    (root / ".gitignore").write_text("generated/\n")
    await editor.start()
    body = 'def hidden(x):\n    """Not for the index."""\n    return x\n'
    ignored = [".venv/lib/python3.12/site-packages/pkg/mod.py", "generated/out.py"]
    env = root / "env"
    env.mkdir()
    (env / "pyvenv.cfg").write_text("home = /usr\n")
    ignored.append("env/lib/tool.py")
    for rel in ignored:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body)
    (root / "kept.py").write_text(body)
    editor.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[
                types.FileEvent(uri=editor.uri(rel), type=types.FileChangeType.Created)
                for rel in [*ignored, "kept.py"]
            ]
        )
    )
    await wait_for(lambda: editor.hover_text("kept.py", 0, 5), what="the kept file")
    for rel in ignored:
        assert await editor.hover_text(rel, 0, 5) == "", rel

    # Opened by the user, an ignored file still stays out of the index.
    editor.open(ignored[1])
    await wait_for(lambda: editor.hover_text("kept.py", 0, 5), what="the server to settle")
    assert await editor.hover_text(ignored[1], 0, 5) == ""


async def test_nothing_configured_nothing_installed_says_once_how_to_set_up(
    editor: Editor, standin: StandinModelServer
) -> None:
    # No [[backends]] at all, no model in the (test's own) cache directory, no Ollama.
    unconfigured = toml_settings(standin.url).split("[[backends]]")[0]
    (editor.root / "spanlens.toml").write_text(unconfigured)
    await editor.start()
    editor.open("config.py")
    titles = await wait_for(lambda: editor.lens_titles("config.py"), what="lenses")
    assert set(titles.values()) == {"facts only: no model configured"}
    editor.save("config.py")
    await wait_for(lambda: editor.last_status().get("lastSave"), what="the save")
    status = editor.last_status()
    assert status["state"] == "facts_only" and status["modelSource"] == "none"
    hints = [m for m in editor.client.messages if "spanlens model install" in m.message]
    assert len(hints) == 1 and hints[0].type == types.MessageType.Warning
    assert standin.chat_requests == []


async def test_a_client_with_its_own_setup_guidance_gets_no_setup_popup(
    editor: Editor, standin: StandinModelServer
) -> None:
    """VS Code offers "Set Up the Local Model" itself (experimental.spanlens.modelSetup): the
    server's own hint would be a second popup, so it goes to the log only."""
    unconfigured = toml_settings(standin.url).split("[[backends]]")[0]
    (editor.root / "spanlens.toml").write_text(unconfigured)
    capabilities = client_capabilities(editor.profile)
    capabilities.experimental = {"spanlens": {"modelSetup": True}}
    await editor.start(capabilities=capabilities)
    status = editor.last_status()
    assert status["state"] == "facts_only" and status["modelSource"] == "none"
    assert [m for m in editor.client.messages if "spanlens model install" in m.message] == []
    logged = [m for m in editor.client.log_messages if "spanlens model install" in m.message]
    assert logged, "the hint still reaches the log"
