"""spanlens: Search by Meaning in a real VS Code (code-server 4.139, the built .vsix) against the
real server: the query, the quick pick of ranked spans as the user sees it (model text plain,
no icons from it), the chosen span opened; nothing found is one message. Screenshots under
tests/e2e/artifacts/test_vscode_search/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.e2e.vscode_session import vscode
from tests.support.replies import code_facts, parse_request, valid_enrichment
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

pytestmark = pytest.mark.e2e

CONFIG_PY = '''\
def parse_config(text):
    """Parse key=value lines."""
    return dict(line.split("=", 1) for line in text.splitlines())
'''
UTIL_JS = """\
function slugify(title) {
  return title.toLowerCase().replace(/\\s+/g, "-");
}
"""


def enrichment(request: RecordedRequest, span: dict[str, Any]) -> dict[str, Any]:
    """Valid for the span, with a summary that tries to draw an icon in the quick pick."""
    data = valid_enrichment(span, code_facts(request, span["span_id"]))
    name = span["name"].rsplit(".", 1)[-1]
    data["summary"] = f"{name} reads settings $(alert) from key=value text."
    return data


def respond(request: RecordedRequest) -> Reply:
    parsed = parse_request(request)
    if parsed is None:
        return Reply.error(400, {"error": "not a spanlens request"})
    spans = parsed["spans"]
    if parsed.get("mode") == "batch":
        return Reply.json(
            {"enrichments": [{"span_id": s["span_id"], **enrichment(request, s)} for s in spans]}
        )
    return Reply.json(enrichment(request, spans[0]))


def test_search_by_meaning_picks_and_opens_a_span(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workspace = home / "ws"
    workspace.mkdir(parents=True)
    (workspace / "config.py").write_text(CONFIG_PY)
    (workspace / "util.js").write_text(UTIL_JS)
    with StandinModelServer(responder=respond, latency=0.05) as standin:
        settings = {
            "spanlens.lsp.idleSeconds": 0.5,
            "spanlens.gpu.enabled": False,
            "spanlens.backends": [
                {
                    "name": "standin",
                    "provider": "openai",
                    "url": standin.url,
                    "model": "qwen2.5-coder:7b",
                }
            ],
            "workbench.startupEditor": "none",
            "workbench.tips.enabled": False,
            "telemetry.telemetryLevel": "off",
        }
        with vscode(
            home, workspace, settings, trust=True, artifacts="test_vscode_search"
        ) as editor:
            editor.call("open", name="config.py")
            # The lens quotes the summary: the model's `$(alert)` shows as text, not an icon.
            editor.call("lenses", pattern=r"^parse_config reads settings \$\(alert\) from")
            editor.call("open", name="util.js")
            editor.call("lenses", pattern="^slugify reads settings")
            editor.call("command", title="spanlens: Search by Meaning")
            editor.call("input", expect="What the code does", text="parse config")
            shown = editor.call("quickPick")
            editor.screenshot("01-results")
            assert shown["title"] == "spanlens: Search by Meaning: parse config", shown
            # The server's note: no embedding endpoint here.
            assert shown["placeholder"] == (
                '1 span for "parse config": no embedding endpoint configured: keywords only'
            ), shown
            assert len(shown["rows"]) == 1, shown
            first = shown["rows"][0]
            assert (first["label"], first["description"]) == ("parse_config", "config.py:1"), shown
            # The model's `$(alert)` is text, not an icon; why says what matched.
            assert first["detail"] == (
                "parse_config reads settings $(alert) from key=value text. (name · keywords)"
            ), first
            assert all(row["icons"] == 0 for row in shown["rows"]), shown
            editor.call("pickRow", text="parse_config")
            opened = editor.call("activeEditor", tab="config.py", cursor="Ln 1, Col 1")
            editor.screenshot("02-opened")
            assert opened["tab"].startswith("config.py"), opened
            assert opened["cursor"].startswith("Ln 1, Col 1"), opened
            editor.call("command", title="spanlens: Search by Meaning")
            asked = editor.call("input", expect="What the code does", keep=True)
            assert asked["value"] == "parse config"  # the last query, offered again
            editor.call("command", title="spanlens: Search by Meaning")
            editor.call("input", expect="What the code does", text="zqxjv wqzk")
            editor.call("notification", pattern='nothing found for "zqxjv wqzk"')
            editor.screenshot("03-nothing-found")
