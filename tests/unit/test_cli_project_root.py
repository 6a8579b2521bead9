"""The CLI finds its project as git, ruff and uv do (issue 18 §2): run in a subfolder with no
ROOT, every command works on the nearest folder above that holds `.spanlens/`, `spanlens.toml`
or `[tool.spanlens]`, else the repository root (`.git`), else the current folder; an explicit
ROOT wins; `show PATH:LINE` reads PATH from the current folder.

Each test runs the installed `spanlens` script as a subprocess with its working directory in
a subfolder, as a user's shell would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer
from tests.unit.test_cli_enrich import use_backends

SPANLENS = str(Path(sys.executable).parent / "spanlens")
CODE = "def shout(text):\n    return text.upper()\n"


def spanlens(cwd: Path, *args: str) -> tuple[int, str, str]:
    """Run `spanlens ARGS` in ``cwd``: (exit status, stdout, stderr)."""
    done = subprocess.run(
        [SPANLENS, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode, done.stdout, done.stderr


def indexes_in(top: Path) -> set[str]:
    """Every folder under ``top`` (itself included) that holds a `.spanlens/`, relative."""
    return {p.parent.relative_to(top).as_posix() for p in top.rglob(".spanlens") if p.is_dir()}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository (`.git`) with a package two folders down and nothing indexed yet."""
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "fmt.py").write_text(CODE)
    (root / "top.py").write_text("def top():\n    return 1\n")
    return root


def test_every_command_in_a_subfolder_works_on_the_repository(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = repo / "src" / "pkg"
    code, out, err = spanlens(here, "index", "--json")
    assert code == 0, err
    assert json.loads(out)["spans_total"] == 2  # top.py too: the whole repository
    assert indexes_in(repo) == {"."}

    code, out, err = spanlens(here, "status", "--json")
    assert code == 0, err
    assert json.loads(out)["files"] == 2

    code, out, err = spanlens(here, "show", "fmt.py:2", "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "shout"

    code, out, err = spanlens(here, "docgen", "--status", "--json")
    assert code == 0, err
    assert json.loads(out)["dir"] == str(repo / ".spanlens" / "docs")

    with StandinModelServer(responder=valid_responder) as server:
        use_backends(monkeypatch, server.url)
        code, out, err = spanlens(here, "doctor", "--json")
        assert json.loads(out)["database"]["path"] == str(repo / ".spanlens" / "index.db"), err
        code, out, err = spanlens(here, "enrich", "--only", "fmt.py", "--json")
        assert code == 0, err
        assert json.loads(out)["succeeded"] == 1

    code, out, err = spanlens(here, "stats", "--json")
    assert code == 0, err
    assert json.loads(out)["calls"] >= 1
    assert indexes_in(repo) == {"."}  # never a second index in the subfolder


def test_the_nearest_project_wins_over_the_repository(repo: Path) -> None:
    assert spanlens(repo, "index")[0] == 0  # the repository has an index of its own
    inner = repo / "src"
    (inner / "spanlens.toml").write_text("[index]\n")
    code, out, err = spanlens(inner / "pkg", "index", "--json")
    assert code == 0, err
    assert json.loads(out)["spans_total"] == 1  # src/ only
    assert indexes_in(repo) == {".", "src"}

    # `[tool.spanlens]` in a pyproject.toml marks a project; a pyproject.toml without it not.
    (inner / "spanlens.toml").unlink()
    deeper = inner / "pkg"
    (deeper / "pyproject.toml").write_text('[project]\nname = "pkg"\n')
    code, out, err = spanlens(deeper, "status", "--json")
    assert code == 0, err
    assert json.loads(out)["files"] == 1  # src/'s index (its .spanlens/ marks it now)
    (deeper / "pyproject.toml").write_text('[project]\nname = "pkg"\n\n[tool.spanlens]\n')
    code, out, err = spanlens(deeper, "index", "--json")
    assert code == 0, err
    assert indexes_in(repo) == {".", "src", "src/pkg"}


def test_an_explicit_root_wins(repo: Path) -> None:
    here = repo / "src" / "pkg"
    code, out, err = spanlens(here, "index", ".", "--json")
    assert code == 0, err
    assert json.loads(out)["spans_total"] == 1
    assert indexes_in(repo) == {"src/pkg"}
    code, out, err = spanlens(here, "show", "fmt.py:1", "--root", str(repo), "--json")
    assert code == 0, err
    assert indexes_in(repo) == {".", "src/pkg"}


def test_with_no_marker_the_current_folder_is_the_root(tmp_path: Path) -> None:
    for folder in (tmp_path, *tmp_path.parents):
        if any((folder / name).exists() for name in (".spanlens", ".git", "spanlens.toml")):
            pytest.skip(f"{folder} holds a project marker above the test's folder")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "fmt.py").write_text(CODE)
    code, out, err = spanlens(tmp_path / "a" / "b", "index", "--json")
    assert code == 0, err
    assert json.loads(out)["spans_total"] == 1
    assert indexes_in(tmp_path) == {"a/b"}


def test_show_reads_its_path_from_the_current_folder_and_refuses_one_outside(
    repo: Path, tmp_path: Path
) -> None:
    here = repo / "src"
    # `pkg/fmt.py` exists from src/, not from the root: it must be found anyway.
    code, out, err = spanlens(here, "show", os.path.join("pkg", "fmt.py") + ":1", "--json")
    assert code == 0, err
    assert json.loads(out)["path"] == "src/pkg/fmt.py"

    (tmp_path / "elsewhere.py").write_text(CODE)
    code, out, err = spanlens(here, "show", "../../elsewhere.py:1")
    assert code == 1 and out == ""
    assert err.startswith("spanlens: ") and "outside the workspace" in err
    assert len(err.strip().splitlines()) == 1
    assert indexes_in(tmp_path) == {"repo"}


def test_markers_that_do_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, for the cases a subprocess adds nothing to: a worktree's `.git` file counts,
    a pyproject.toml that cannot be parsed or has no `[tool.spanlens]` does not, a `.spanlens`
    file (not a folder) does not; and a current folder that was deleted is one plain line."""
    from spanlens_lsp.cli.common import CliError, find_project, workspace_root

    top = tmp_path / "worktree"
    deep = top / "a" / "b"
    deep.mkdir(parents=True)
    (top / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")
    (top / "a" / "pyproject.toml").write_text("[tool.spanlens\nbroken")
    (deep / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    (deep / ".spanlens").write_text("")
    assert find_project(deep) == top
    (top / "a" / "pyproject.toml").write_text("[tool.spanlens.index]\nexclude = []\n")
    assert find_project(deep) == top / "a"

    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(CliError, match="the current folder no longer exists"):
        workspace_root(None)
