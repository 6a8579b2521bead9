"""The built-in model from VS Code (code-server 4.139, the built .vsix): the first-run guidance
in a workspace with no model (without a "Set Up the Local Model" button: the bundled server has
no engine to run it), the install from the palette with its cancellable notification (cancelled,
then resumed). The model is a small fake named by a
test catalog and served over HTTPS on 127.0.0.1; screenshots under
tests/e2e/artifacts/test_vscode_model/."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.vscode_session import vscode
from tests.support.file_server import HttpsFileServer
from tests.support.localmodel import write_tiny_catalog

pytestmark = pytest.mark.e2e

DATA = bytes(range(256)) * 32 * 1024  # 8 MiB: 128 writes of 64 KiB, 0.1 s apart
GUIDANCE = "no model is set up"
PROGRESS = "spanlens: setting up the local model"


def test_guidance_install_cancel_and_resume(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workspace = home / "ws"
    workspace.mkdir(parents=True)
    (workspace / "config.py").write_text("def parse(text):\n    return text.split()\n")
    # Nothing configured; no backlog run (it would start the engine on the fake model).
    (workspace / "spanlens.toml").write_text(
        '[local]\nmodel = "tiny"\n\n[lsp]\nidle_seconds = 3600\n\n[gpu]\nenabled = false\n'
    )
    cache = tmp_path / "cache"
    settings = {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "telemetry.telemetryLevel": "off",
    }
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}, delay=0.1) as files:
        catalog = write_tiny_catalog(tmp_path, DATA, [files.url("/tiny.gguf")])
        env = {
            "SPANLENS_MODEL_CATALOG": str(catalog),
            "SPANLENS_CACHE_DIR": str(cache),
            "SSL_CERT_FILE": str(files.ca_file),
        }
        installed = cache / "models" / "tiny.gguf"
        with vscode(
            home, workspace, settings, trust=True, artifacts="test_vscode_model", env=env
        ) as editor:
            editor.call("open", name="config.py")
            shown = editor.call("notification", pattern=GUIDANCE, timeout=60_000)
            # The extension's guidance only: the server's own hint stays in the log.
            assert not any("spanlens model install" in text for text in shown), shown
            assert not any("Set Up the Local Model" in text for text in shown), shown
            assert any("Configure Backends" in text for text in shown), shown
            editor.screenshot("guidance")
            editor.call("command", title="spanlens: Set up the Local Model")
            progress = editor.call("notification", pattern=r"downloading tiny: \d+ MiB of 8 MiB")
            assert any(PROGRESS in text for text in progress), progress
            editor.screenshot("progress")
            editor.call("notificationButton", pattern=PROGRESS, button="Cancel")
            editor.call("notification", pattern="install cancelled")
            assert not installed.exists()
            partial = installed.with_name("tiny.gguf.partial")
            kept = partial.stat().st_size
            assert 0 < kept < len(DATA)

            editor.call("command", title="spanlens: Set up the Local Model")
            done = editor.call(
                "notification", pattern="Tiny test model is installed", timeout=90_000
            )
            editor.screenshot("installed")
            assert installed.read_bytes() == DATA, done
            # Resumed where the cancel left it.
            assert files.requests[-1].headers.get("Range") == f"bytes={kept}-"
            # The bundled server has no engine (the [local] extra is not in the .vsix): the
            # user is told so instead of being promised enrichments.
            assert any(
                "but not in use: the built-in model is installed but not its engine" in t
                for t in done
            ), done
