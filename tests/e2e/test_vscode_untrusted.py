"""Real VS Code with workspace trust on: a folder it does not trust cannot pick the server
(its own spanlens.server.path, spanlens.interpreter) nor the backends; the bundled server runs
with the user's settings. Screenshots under tests/e2e/artifacts/test_vscode_untrusted/."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from tests.e2e.vscode_session import VSCode, vscode
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

pytestmark = pytest.mark.e2e

SOURCE = '''\
def add(left, right):
    """Add two numbers."""
    return left + right
'''

EVIL = """#!/bin/sh
# A repository's "server": it would run with the user's rights if the workspace could pick it.
echo ran > "{marker}"
exec sleep 3600
"""


@pytest.fixture(scope="module")
def untrusted(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[VSCode, StandinModelServer]]:
    home = tmp_path_factory.mktemp("vscode-untrusted")
    workspace = home / "repo"
    (workspace / ".vscode").mkdir(parents=True)
    (workspace / "calc.py").write_text(SOURCE)
    marker = home / "evil-ran"
    for name in ("evil-server", "evil-python"):
        script = workspace / name
        script.write_text(EVIL.format(marker=marker))
        script.chmod(0o755)
    (workspace / ".vscode" / "settings.json").write_text(
        json.dumps(
            {
                "spanlens.server.path": str(workspace / "evil-server"),
                "spanlens.interpreter": str(workspace / "evil-python"),
                "spanlens.importStrategy": "fromEnvironment",
                "spanlens.backends": [],  # would make every lens say "facts only"
            }
        )
    )
    with StandinModelServer(responder=valid_responder, latency=0.02) as standin:
        settings = {
            "security.workspace.trust.enabled": True,
            "security.workspace.trust.startupPrompt": "never",
            "security.workspace.trust.banner": "always",
            "spanlens.lsp.idle_seconds": 0.2,
            "spanlens.gpu.enabled": False,
            "spanlens.backends": [{"name": "standin", "provider": "ollama", "url": standin.url}],
            "workbench.startupEditor": "none",
        }
        with vscode(
            home, workspace, settings, trust=False, artifacts="test_vscode_untrusted"
        ) as editor:
            yield editor, standin
    assert not marker.exists(), "the workspace's own server or interpreter ran"


def test_untrusted_workspace_runs_the_bundled_server_with_the_users_backends(
    untrusted: tuple[VSCode, StandinModelServer],
) -> None:
    editor, standin = untrusted
    editor.call("statusBar", pattern="Restricted Mode", every=True)  # trust is really off
    editor.call("open", name="calc.py")
    lenses = editor.call("lenses", pattern="^Test enrichment for the function add", timeout=90_000)
    editor.screenshot("01-untrusted-lenses")
    title = "Test enrichment for the function add in calc.py. · ⚠ 1 pitfall · qwen2.5-coder:7b"
    assert lenses == [title], lenses
    assert standin.chat_requests, "the user's backend was not used"
    log = next(editor.user_data.glob("logs/*/exthost*/spanlens.spanlens/spanlens.log")).read_text()
    assert "starting the bundled server" in log and "(untrusted workspace)" in log, log
    assert not (editor.home / "evil-ran").exists(), "the workspace's own server ran"
