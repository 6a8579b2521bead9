"""CLI details issue 8 found on real runs: `enrich --json --only` counts only those files'
pending spans, `show PATH:LINE --root R` reads PATH relative to R (as `--only` does), and
output piped into a reader that goes away ends quietly, without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer
from tests.unit.test_cli_enrich import use_backends

Cli = Callable[..., tuple[int, str, str]]


def test_enrich_json_only_reports_the_pending_count_of_those_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    (tmp_path / "a.py").write_text("def a(x):\n    return x\n")
    (tmp_path / "b.py").write_text("def b(y):\n    return y\n\n\ndef c(z):\n    return z\n")
    with StandinModelServer(responder=valid_responder) as server:
        use_backends(monkeypatch, server.url)
        code, out, err = cli("enrich", str(tmp_path), "--only", "a.py", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["succeeded"] == 1
    assert summary["pending"] == 0  # b.py's two spans are not this run's business


def test_show_reads_a_relative_path_against_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "fmt.py").write_text("def shout(text):\n    return text.upper()\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = cli("show", "fmt.py:1", "--root", str(project), "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "shout"


def test_output_into_a_closed_pipe_ends_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "fmt.py").write_text("def shout(text):\n    return text.upper()\n")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before spanlens writes a byte
    try:
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "spanlens"),
                "show",
                f"{tmp_path / 'fmt.py'}:1",
                "--root",
                str(tmp_path),
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""  # no traceback, no "Broken pipe" error line
    assert done.returncode == 141
