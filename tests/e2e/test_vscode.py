"""Real VS Code (code-server 4.139) with the built .vsix, a multi-file workspace and the
stand-in model server; one editor session for the module, a screenshot of every step under
tests/e2e/artifacts/test_vscode/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.vscode_session import VSCode, vscode
from tests.support.replies import (
    code_facts,
    parse_docgen_request,
    parse_request,
    valid_enrichment,
    valid_overview,
)
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-4f1c9a7d0b2e"
KEY_ENV = "SPANLENS_E2E_KEY"
STALE_KEY = "sk-stale-from-the-environment"

CONFIG_PY = '''\
def parse_config(text):
    """Parse key=value lines."""
    return dict(line.split("=", 1) for line in text.splitlines())


class Config:
    def load(self, path):
        with open(path) as handle:
            return parse_config(handle.read())
'''

BIG_PY = "".join(f"def step_{i}(value):\n    return value + {i}\n\n\n" for i in range(6))

LATER_PY = "".join(f"def later_{i}(value):\n    return value - {i}\n\n\n" for i in range(5))
#: With all=True: no lens is stale / pending.
NO_STALE = "^(?!.*stale)"
NO_PENDING = "^(?!.*pending)"

UTIL_JS = """\
function slugify(title) {
  return title.toLowerCase().replace(/\\s+/g, "-");
}
"""


def enrichment(request: RecordedRequest, span: dict[str, Any]) -> dict[str, Any]:
    """Valid for the span (its effects as its code shows them), with model text that tries
    Markdown: escaped, never a link."""
    data = valid_enrichment(span, code_facts(request, span["span_id"]))
    name = span["name"].rsplit(".", 1)[-1]
    data["summary"] = (
        f"{name} parses key=value lines into a dict; see https://evil.example/x and *this*."
    )
    data["pitfalls"] = [
        "lines without '=' raise ValueError",
        "[click me](https://evil.example/steal) is not a link",
    ]
    return data


def respond(request: RecordedRequest) -> Reply:
    parsed = parse_request(request)
    if parsed is None:
        docgen = parse_docgen_request(request)
        if docgen is not None:  # a file overview for docgen
            return Reply.json(valid_overview(docgen))
        return Reply.error(400, {"error": "not a spanlens request"})
    spans = parsed["spans"]
    if parsed.get("mode") == "batch":
        return Reply.json(
            {"enrichments": [{"span_id": s["span_id"], **enrichment(request, s)} for s in spans]}
        )
    return Reply.json(enrichment(request, spans[0]))


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinModelServer]:
    with StandinModelServer(responder=respond, latency=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def editor(
    tmp_path_factory: pytest.TempPathFactory, standin: StandinModelServer
) -> Iterator[VSCode]:
    home = tmp_path_factory.mktemp("vscode")
    workspace = home / "ws"
    (workspace / "pkg").mkdir(parents=True)
    (workspace / "config.py").write_text(CONFIG_PY)
    (workspace / "pkg" / "__init__.py").write_text("")
    (workspace / "big.py").write_text(BIG_PY)
    (workspace / "util.js").write_text(UTIL_JS)
    settings = {
        # The backlog never runs by itself here: only hovers, commands and saves enrich.
        "spanlens.lsp.idle_seconds": 3600,
        "spanlens.gpu.enabled": False,
        "spanlens.backends": [
            {
                "name": "standin",
                "tier": "small",
                "provider": "openai",
                "url": standin.url,
                "model": "qwen2.5-coder:7b",
                "max_parallel": 1,
                "api_key_env": KEY_ENV,
            }
        ],
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "editor.hover.delay": 100,
        "telemetry.telemetryLevel": "off",
    }
    # The key variable is set, to a stale value: the stored key must win over it.
    env = {KEY_ENV: STALE_KEY}
    with vscode(home, workspace, settings, trust=True, artifacts="test_vscode", env=env) as session:
        yield session


def test_lens_and_hover_show_the_enrichment_as_text(editor: VSCode) -> None:
    editor.call("open", name="config.py")
    lenses = editor.call(
        "lenses", pattern=r"^\S+ parses key=value .* · ⚠ 2 pitfalls · qwen2\.5-coder:7b$", min=3
    )
    assert any(text.startswith("parse_config parses key=value") for text in lenses), lenses
    editor.screenshot("01-lenses")
    assert len(lenses) == 3, lenses  # parse_config, Config, Config.load
    hover = editor.call("hover", line="def parse_config", word="parse_config")
    editor.screenshot("02-hover")
    text = hover["text"]
    assert "parse_config parses key=value lines into a dict" in text, text
    assert "https://evil.example/x" in text and "*this*" in text, text  # shown, literally
    assert "⚠" in text and "lines without '=' raise ValueError" in text, text
    assert "[click me](https://evil.example/steal)" in text, text
    assert "✓ enriched by qwen2.5-coder:7b (small)" in text, text
    assert "\\" not in text, text  # escapes do their job and stay invisible
    assert hover["links"] == [], hover  # no link from model text
    editor.call("unhover")
    # A lens click opens the span's whole enrichment in a Markdown preview.
    tabs = editor.call("clickLens", pattern="^parse_config parses", opens="Preview parse_config")
    editor.screenshot("02b-span-preview")
    assert any("config.py" in t for t in tabs), tabs
    print(f"\nextension host RSS: {editor.extension_host_rss_mb()} MiB")


def test_edit_and_save_shows_stale_then_fresh(editor: VSCode, standin: StandinModelServer) -> None:
    editor.call("open", name="big.py")
    editor.call("lenses", pattern="^step_2 parses")
    before = len(standin.chat_requests)
    standin.latency = 3.0
    try:
        editor.call("typeAfter", line="return value + 2", text=" * 2")
        editor.call("save")
        stale = editor.call("lenses", pattern="^↻ stale: step_2 parses", timeout=30_000)
        editor.screenshot("03-stale")
        assert sum(t.startswith("↻ stale") for t in stale) == 1, stale  # only the edited span
    finally:
        standin.latency = 0.05
    lenses = editor.call("lenses", pattern=NO_STALE, all=True, timeout=60_000)
    editor.screenshot("04-fresh-again")
    assert len(standin.chat_requests) > before
    assert any(t.startswith("step_2 parses") for t in lenses), lenses


def test_enrich_this_file_shows_the_queue_then_fresh_lenses(
    editor: VSCode, standin: StandinModelServer
) -> None:
    # The last edit holds the backlog back (idle_seconds = 3600): a new file stays pending.
    (editor.workspace / "later.py").write_text(LATER_PY)
    editor.call("open", name="later.py")
    editor.call("lenses", pattern="pending", all=True)
    standin.latency = 1.5
    try:
        editor.call("command", title="spanlens: Enrich This File")
        status = editor.call("statusBar", pattern=r"\d+ queued")
        editor.screenshot("05-status-queue")
        assert re.search(r"spanlens (enriching|waiting) · \d+ queued", status), status
        lenses = editor.call("lenses", pattern=NO_PENDING, all=True, timeout=90_000)
    finally:
        standin.latency = 0.05
    editor.screenshot("06-enriched-file")
    assert len(lenses) == 5 and all("⚠ 2 pitfalls" in t for t in lenses), lenses


def test_set_api_key_reaches_the_backend_and_no_file(
    editor: VSCode, standin: StandinModelServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # From now on the backend takes the real key only (the editor's environment has a stale one).
    standin.require_api_key = KEY
    editor.call("open", name="big.py")
    starts = editor.client_log().count("starting the bundled server")
    editor.call("command", title="spanlens: Set API Key")
    asked = editor.call("input", expect="api_key_env", keep=True)
    assert asked["value"] == KEY_ENV, asked  # the backend's api_key_env, offered
    editor.call("input", expect=f"key for {KEY_ENV}", text=KEY)
    editor.screenshot("07-key-set")
    # The server restarts with the key in its environment; then it is up again.
    editor.wait_for_log("starting the bundled server", count=starts + 1)
    editor.wait_for_log("INFO spanlens_lsp.lsp.session: workspace", count=starts + 1)
    editor.call("statusBar", pattern="spanlens (idle|waiting)")
    before = len(standin.chat_requests)
    editor.call("typeAfter", line="return value + 4", text=" - 1")
    editor.call("save")
    deadline = time.monotonic() + 60
    while not standin.chat_requests[before:] and time.monotonic() < deadline:
        time.sleep(0.2)
    editor.call("lenses", pattern=NO_STALE, all=True, timeout=60_000)
    editor.screenshot("08-fresh-with-key")
    chats = [r for r in standin.chat_requests[before:] if r.provider == "openai"]
    assert chats, "no request reached the key-requiring backend"
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in chats), [
        r.headers.get("authorization", "")[:12] for r in chats
    ]
    leaks = [
        str(path)
        for root in (editor.workspace, editor.user_data)
        for path in root.rglob("*")
        if path.is_file() and KEY.encode() in path.read_bytes()
    ]
    assert leaks == [], leaks


def test_docgen_commands_open_the_files_docs(editor: VSCode) -> None:
    """Generate Docs for This File writes the file's doc (spanlens.docgenFile), then Open Docs
    for This File opens it in a tab (spanlens.openDoc)."""
    editor.call("open", name="config.py")
    editor.call("lenses", pattern=NO_PENDING, all=True)
    editor.call("command", title="spanlens: Generate Docs for This File")
    doc = editor.workspace / ".spanlens" / "docs" / "config.py.md"
    deadline = time.monotonic() + 60
    while not doc.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert doc.exists(), "no doc written for config.py"
    assert "parse_config" in doc.read_text()
    editor.call("command", title="spanlens: Open Docs for This File")
    editor.call("tabs", pattern="config.py.md")
    editor.screenshot("09-docs")
