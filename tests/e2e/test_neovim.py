"""Real Neovim (Debian's 0.7.2, headless) attached with vim.lsp.start_client."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("neovim_spanlens.lua")
SOURCE = '''\
def parse_config(text):
    """Parse key=value lines."""
    return dict(line.split("=", 1) for line in text.splitlines())
'''


def test_neovim_hover_and_code_lens_show_the_enrichment(tmp_path: Path) -> None:
    # No skip: without nvim this suite cannot prove that a real editor works.
    assert shutil.which("nvim"), "nvim is not installed: `make system-deps` installs it"
    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.py").write_text(SOURCE)
    with StandinModelServer(responder=valid_responder, latency=0.02) as standin:
        (root / "spanlens.toml").write_text(
            "[lsp]\nidle_seconds = 0.2\n\n[gpu]\nenabled = false\n\n"
            f'[[backends]]\nname = "standin"\nprovider = "ollama"\nurl = "{standin.url}"\n'
        )
        env = {
            **os.environ,
            "SPANLENS_ROOT": str(root),
            "SPANLENS_FILE": str(root / "config.py"),
            "SPANLENS_PYTHON": sys.executable,
            "SPANLENS_LINE": "1",
            "HOME": str(tmp_path),  # no user config, no shada in the real home
        }
        result = subprocess.run(
            ["timeout", "90", "nvim", "--headless", "--clean", "-u", str(SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    [hover] = [line for line in result.stdout.splitlines() if line.startswith("HOVER: ")]
    assert "Test enrichment for the function parse" in hover, output
    assert "enriched by qwen2" in hover, output  # the state line: fresh, from the model
    assert "def parse_config(text)" in hover  # the signature, fenced: never escaped
    lens = [line for line in result.stdout.splitlines() if line.startswith("LENS: ")]
    assert len(lens) == 1, output
    assert lens[0].startswith("LENS: 1=Test enrichment for the function parse_config"), output
    assert lens[0].endswith(" · ⚠ 1 pitfall"), output
    [displayed] = [line for line in result.stdout.splitlines() if line.startswith("DISPLAYED: ")]
    assert displayed == "DISPLAYED: 1", output  # Neovim's own lens display shows it
