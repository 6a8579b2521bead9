"""The built-in model from VS Code (code-server 4.139, the built .vsix): the first-run guidance
in a workspace with no model, with its "Set Up the Local Model" button (the .vsix bundles the
engine), the install from the palette with its cancellable notification (cancelled, then
resumed), and the model then run by the engine bundled in the .vsix: "Enrich This File" starts
it, and the status item says it runs. The model is the real SmolLM2-135M GGUF, named "tiny" by
a test catalog and served over HTTPS on 127.0.0.1; screenshots under
tests/e2e/artifacts/test_vscode_model/."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from tests.e2e.vscode_session import vscode
from tests.support.file_server import HttpsFileServer
from tests.support.localmodel import write_tiny_catalog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path(
    os.environ.get("SPANLENS_TEST_GGUF", ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
)
GUIDANCE = "no model is set up"
PROGRESS = "spanlens: setting up the local model"


def stop_engine(state_file: Path) -> None:
    """Stop the engine the editor's server started (it outlives the editor, as it should)."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return
    for pid in (state.get("pid"), state.get("server_pid")):
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
    time.sleep(1)


def test_guidance_install_cancel_resume_and_run(tmp_path: Path) -> None:
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `make engine-deps`")
    data = MODEL.read_bytes()
    home = tmp_path / "home"
    workspace = home / "ws"
    workspace.mkdir(parents=True)
    (workspace / "config.py").write_text("def parse(text):\n    return text.split()\n")
    # Nothing configured; no backlog run (the engine starts on "Enrich This File" only). One
    # thread and one try: 2 cores are shared, and SmolLM2's replies are seldom valid.
    (workspace / "spanlens.toml").write_text(
        '[local]\nmodel = "tiny"\nthreads = 1\ncontext_tokens = 2048\n\n'
        "[enrichment]\nretries = 0\nmax_invalid_per_tier = 1\n\n"
        "[lsp]\nidle_seconds = 3600\n\n[gpu]\nenabled = false\n"
    )
    cache = tmp_path / "cache"
    settings = {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "telemetry.telemetryLevel": "off",
    }
    # 64 KiB every 0.1 s until the cancel; then at full speed.
    with HttpsFileServer(tmp_path, {"/tiny.gguf": data}, delay=0.1) as files:
        catalog = write_tiny_catalog(tmp_path, data, [files.url("/tiny.gguf")])
        env = {
            "SPANLENS_MODEL_CATALOG": str(catalog),
            "SPANLENS_CACHE_DIR": str(cache),
            "SSL_CERT_FILE": str(files.ca_file),
        }
        installed = cache / "models" / "tiny.gguf"
        state_file = cache / "engines" / "tiny.json"
        try:
            with vscode(
                home, workspace, settings, trust=True, artifacts="test_vscode_model", env=env
            ) as editor:
                editor.call("open", name="config.py")
                shown = editor.call("notification", pattern=GUIDANCE, timeout=60_000)
                # The extension's guidance only: the server's own hint stays in the log.
                assert not any("spanlens model install" in text for text in shown), shown
                guidance = next(t for t in shown if GUIDANCE in t)
                assert "Set Up the Local Model" in guidance, guidance
                assert "Configure Backends" in guidance, guidance
                editor.screenshot("guidance")
                editor.call("notificationButton", pattern=GUIDANCE, button="Set Up the Local Model")
                progress = editor.call(
                    "notification", pattern=r"downloading tiny: \d+ MiB of 94 MiB"
                )
                assert any(PROGRESS in text for text in progress), progress
                editor.screenshot("progress")
                editor.call("notificationButton", pattern=PROGRESS, button="Cancel")
                editor.call("notification", pattern="install cancelled")
                assert not installed.exists()
                partial = installed.with_name("tiny.gguf.partial")
                kept = partial.stat().st_size
                assert 0 < kept < len(data)

                files.delay = 0
                editor.call("command", title="spanlens: Set up the Local Model")
                done = editor.call(
                    "notification", pattern="Tiny test model is installed", timeout=90_000
                )
                editor.screenshot("installed")
                assert installed.read_bytes() == data, done
                # Resumed where the cancel left it.
                assert files.requests[-1].headers.get("Range") == f"bytes={kept}-"
                # The .vsix bundles the engine: no "installed, but not in use" warning.
                assert not any("not in use" in t for t in done), done

                # The first model call starts the engine, from the .vsix's own files.
                editor.call("command", title="spanlens: Enrich This File")
                tooltip = editor.call(
                    "statusBarTooltip", expect=r"model: built-in tiny \(running", timeout=120_000
                )
                editor.screenshot("engine-running")
                state = json.loads(state_file.read_text())
                assert state["status"] == "running", state
                maps = Path(f"/proc/{state['server_pid']}/maps").read_text()
                engine = {line.split()[-1] for line in maps.splitlines() if "xllamacpp" in line}
                bundled = str(editor.extensions) + os.sep
                assert engine and all(
                    path.startswith(bundled) and "/bundled/libs/xllamacpp/" in path
                    for path in engine
                ), (engine, tooltip)
        finally:
            stop_engine(state_file)
