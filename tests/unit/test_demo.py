"""`make demo` (scripts/demo.sh), one of the README's two commands, run as a new user runs it:
in a fresh copy of the repository, with nothing of the developer's index or settings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer, closed_port_url

REPO = Path(__file__).resolve().parents[2]
SPANLENS = Path(sys.executable).with_name("spanlens")


def _shown_spans(script: str) -> list[tuple[str, str]]:
    """The (file, pattern) pairs the demo shows, read from the script itself."""
    return re.findall(r'^\s+"([^"|]+)\|([^"]+)"$', script, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's tracked files, as a fresh clone has them (no .venv, no .spanlens)."""
    root = tmp_path_factory.mktemp("clone")
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            target = root / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return root


@pytest.fixture
def fresh(checkout: Path, tmp_path: Path) -> Iterator[Path]:
    """The copy without a previous run's index."""
    shutil.rmtree(checkout / ".spanlens", ignore_errors=True)
    yield checkout


def _run_demo(
    root: Path, backends: list[dict[str, str]], home: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SPANLENS": str(SPANLENS),
        "SPANLENS_BACKENDS": json.dumps(backends),
        "SPANLENS_GPU_ENABLED": "false",
        "HOME": str(home),
        "SPANLENS_CACHE_DIR": str(home / "cache"),
    }
    return subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_every_span_the_demo_shows_still_exists() -> None:
    script = (REPO / "scripts" / "demo.sh").read_text()
    shown = _shown_spans(script)
    assert len(shown) >= 3
    for rel, pattern in shown:
        text = (REPO / rel).read_text() if (REPO / rel).exists() else ""
        assert re.search(pattern, text, flags=re.MULTILINE), f"{rel} has no line matching {pattern}"


def test_demo_without_a_model_shows_facts_and_says_how_to_get_one(
    fresh: Path, tmp_path: Path
) -> None:
    run = _run_demo(fresh, [{"name": "down", "url": closed_port_url()}], tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for rel, _ in _shown_spans((fresh / "scripts" / "demo.sh").read_text()):
        assert f"== spanlens show {rel}:" in run.stdout
    assert "skipped" not in run.stderr
    assert "no model backend answered" in run.stdout
    assert "never makes up a summary" in run.stdout
    assert "enriched by" not in run.stdout


def test_demo_with_a_model_shows_enrichments_labelled_with_the_model(
    fresh: Path, tmp_path: Path
) -> None:
    with StandinModelServer(responder=valid_responder) as standin:
        backend = {"name": "standin", "url": standin.url, "model": "qwen2.5-coder:7b"}
        run = _run_demo(fresh, [backend], tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "a model backend answers" in run.stdout
    shown = _shown_spans((fresh / "scripts" / "demo.sh").read_text())
    after = run.stdout.split("a model backend answers", 1)[1]
    assert after.count("enriched by qwen2.5-coder:7b") >= len(shown)
    assert "== spanlens stats . ==" in after
