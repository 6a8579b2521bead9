"""Progress bars: drawn by rich on a terminal's stderr, never in a pipe or with --json.

Terminal runs use a real pseudo-terminal (pty) and a real `spanlens` process.
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for i in range(60):  # enough files for the index bar (it skips tiny jobs)
        (tmp_path / f"mod_{i}.py").write_text(f"def f_{i}(x):\n    return x + {i}\n")
    return tmp_path


def run(
    args: list[str],
    *,
    stdout_tty: bool,
    stderr_tty: bool,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """Run ``python ARGS`` with stdout / stderr on a pseudo-terminal or a pipe.

    Returns (status, what the terminal got, what the pipes got).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update(TERM="xterm-256color", COLUMNS="120", **(extra_env or {}))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave if stderr_tty else subprocess.STDOUT,
        env=env,
        cwd=cwd,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    piped = proc.stdout.read().decode() if proc.stdout is not None else ""
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace"), piped


def test_index_draws_a_bar_on_a_terminal(project: Path) -> None:
    code, terminal, piped = run(
        ["-m", "spanlens_lsp.cli", "index", str(project)], stdout_tty=False, stderr_tty=True
    )
    assert code == 0, terminal + piped
    assert "indexing" in terminal and "60/60" in terminal  # rich's bar, on stderr
    assert "━" in terminal  # a drawn bar, not the old '#' one
    assert "indexing" not in piped and piped.startswith("files: 60 indexed")


def colours(terminal: str) -> set[str]:
    """The SGR parameters that set a colour (foreground or background) in ``terminal``."""
    found = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", terminal):
        for code in params.split(";"):
            value = int(code or 0)
            if (30 <= value <= 48 or 90 <= value <= 107) and value not in (39, 49):
                found.add(code)
    return found


def test_no_color_draws_the_bar_without_colour(project: Path) -> None:
    args = ["-m", "spanlens_lsp.cli", "index", str(project)]
    code, terminal, _ = run(args, stdout_tty=False, stderr_tty=True)
    assert code == 0 and colours(terminal)  # rich colours the bar by default
    shutil.rmtree(project / ".spanlens")  # index again, drawing the bar again
    code, terminal, piped = run(
        args, stdout_tty=False, stderr_tty=True, extra_env={"NO_COLOR": "1"}
    )
    assert code == 0 and "60/60" in terminal and "━" in terminal, terminal + piped
    assert colours(terminal) == set(), ascii(terminal)


def test_no_bar_with_json_or_when_stderr_is_no_terminal(project: Path, cli: Cli) -> None:
    code, terminal, piped = run(
        ["-m", "spanlens_lsp.cli", "index", str(project), "--json"],
        stdout_tty=False,
        stderr_tty=True,
    )
    assert code == 0 and terminal == ""  # nothing at all on the terminal
    assert piped.startswith("{")
    (project / "mod_0.py").write_text("def changed():\n    return 1\n")
    code, terminal, piped = run(
        ["-m", "spanlens_lsp.cli", "index", str(project)], stdout_tty=True, stderr_tty=False
    )
    assert code == 0 and "files:" in terminal and "indexing" not in terminal + piped


def test_extra_text_shows_beside_the_count_and_is_never_markup() -> None:
    script = (
        "from spanlens_lsp.cli.common import ProgressBar\n"
        "bar = ProgressBar('enriching', min_total=1)\n"
        "bar(3, 10, 'waiting 4 s: local rate limited')\n"
        "bar(5, 10, '[bold]b0[/bold] \\x1b[2J cleared')\n"
        "bar(10, 10)\n"
    )
    code, terminal, _ = run(["-c", script], stdout_tty=True, stderr_tty=True)
    assert code == 0, terminal
    assert "waiting 4 s: local rate limited" in terminal and "3/10" in terminal
    assert "[bold]b0[/bold]" in terminal and "\x1b[2J" not in terminal
    assert "10/10" in terminal


def test_a_piped_index_never_imports_rich(project: Path) -> None:
    script = (
        "import sys\n"
        "from spanlens_lsp.cli import main\n"
        f"code = main(['index', {str(project)!r}])\n"
        "print('rich loaded' if 'rich' in sys.modules else 'rich not loaded', code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("rich not loaded 0")
