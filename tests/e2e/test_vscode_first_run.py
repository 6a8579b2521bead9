"""A user with no model yet, from the .vsix alone (code-server 4.139): the first-run
notification and the walkthrough appear, and the notification's "Use Ollama" configures a
running (stand-in) Ollama end to end: its models listed, the pick written to the user's
``spanlens.backends``, the server enriching with it. Screenshots under
tests/e2e/artifacts/test_vscode_first_run/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.e2e.vscode_session import vscode
from tests.support.replies import (
    code_facts,
    parse_docgen_request,
    parse_request,
    valid_enrichment,
    valid_overview,
)
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

pytestmark = pytest.mark.e2e

GUIDANCE = "no model is set up"
PICKED = "llama3.2:latest"


def respond(request: RecordedRequest) -> Reply:
    parsed = parse_request(request)
    if parsed is None:
        docgen = parse_docgen_request(request)
        if docgen is not None:  # a file overview for docgen
            return Reply.json(valid_overview(docgen))
        return Reply.error(400, {"error": "not a spanlens request"})
    spans = parsed["spans"]
    data = [
        {"span_id": s["span_id"], **valid_enrichment(s, code_facts(request, s["span_id"]))}
        for s in spans
    ]
    if parsed.get("mode") == "batch":
        return Reply.json({"enrichments": data})
    data[0].pop("span_id")
    return Reply.json(data[0])


def test_first_run_guidance_walkthrough_and_use_ollama(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workspace = home / "ws"
    workspace.mkdir(parents=True)
    (workspace / "config.py").write_text("def parse(text):\n    return text.split()\n")
    # Nothing configured (no backends), nothing installed: modelSource "none".
    (workspace / "spanlens.toml").write_text("[lsp]\nidle_seconds = 1\n\n[gpu]\nenabled = false\n")
    settings = {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "telemetry.telemetryLevel": "off",
    }
    models = ("qwen2.5-coder:1.5b", PICKED)
    with StandinModelServer(models=models, responder=respond) as ollama:
        # The extension finds Ollama where the ollama CLI would: OLLAMA_HOST.
        env = {"SPANLENS_CACHE_DIR": str(tmp_path / "cache"), "OLLAMA_HOST": ollama.url}
        with vscode(
            home, workspace, settings, trust=True, artifacts="test_vscode_first_run", env=env
        ) as editor:
            editor.call("open", name="config.py")
            shown = editor.call("notification", pattern=GUIDANCE, timeout=60_000)
            text = next(t for t in shown if GUIDANCE in t)
            assert "Use Ollama" in text and "Configure Backends" in text, text
            # The .vsix bundles the engine: the built-in model is offered too.
            assert "Set Up the Local Model" in text, text
            editor.screenshot("guidance")
            assert not ollama.chat_requests

            editor.call("notificationButton", pattern=GUIDANCE, button="Use Ollama")
            editor.call("input", expect=PICKED, text="llama3.2")  # the models are listed
            editor.call("notification", pattern=f"enriching with Ollama's {PICKED}")
            editor.screenshot("using-ollama")
            written = json.loads(editor.settings_path.read_text())
            assert written["spanlens.backends"] == [
                {
                    "name": "ollama",
                    "tier": "small",
                    "provider": "ollama",
                    "url": ollama.url,
                    "model": PICKED,
                }
            ]
            # The running server takes the setting and enriches with the picked model.
            chats = ollama.wait_for_requests(1, timeout=90)
            assert {r.model for r in chats} == {PICKED}, [r.model for r in chats]
            editor.call("lenses", pattern=f"· {PICKED}", timeout=90_000)
            editor.screenshot("enriched")

            # Clicking the status item opens its menu; its status report names the model.
            editor.call("clickStatusBar", pattern=r"^\s*spanlens (idle|waiting|enriching)")
            editor.call("input", expect="Pause background work", text="Show status report")
            editor.call("tabs", pattern="spanlens_status")
            editor.screenshot("menu-status-report")
            editor.call("open", name="config.py")

            # The walkthrough has the same steps.
            editor.call("command", title="spanlens: Get Started")
            page = editor.call("pageText", pattern="Get started with spanlens")
            for step in (
                "Set up the built-in model",
                "Use a running Ollama",
                "Configure a backend",
                "The status menu",
            ):
                assert step in page, page
            editor.screenshot("walkthrough")
