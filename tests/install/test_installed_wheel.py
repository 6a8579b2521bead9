"""The built wheel alone, installed into a fresh venv (no ``-e``, no source tree on the path),
runs the three commands a new user runs first: ``spanlens --version``, ``spanlens index`` and
``spanlens serve`` (initialize + hover over stdio).

The README's ``pipx install`` and ``uv tool install`` of the wheel run here too.

The wheel and sdist come from ``make dist`` (python -m build, then twine check), once per test
session; the venv installs the wheel with pip (its dependencies from the configured index,
pip's cache makes that quick after the first time). A file of the package left out of the
wheel (a module, a grammar binding, a schema, a prompt, ``py.typed``) fails here: the file
lists are compared, and the commands import what they need.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client

import spanlens_lsp

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "server" / "spanlens_lsp"

#: One file per indexed language: each one's grammar comes from its own tree-sitter wheel.
SOURCES = {
    "calc.py": '''
        def add(a: int, b: int) -> int:
            """Add two numbers."""
            return a + b
        ''',
    "calc.js": "function add(a, b) {\n  return a + b;\n}\n",
    "calc.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n",
    "calc.go": "package calc\n\nfunc Add(a int, b int) int {\n\treturn a + b\n}\n",
    "calc.rs": "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    "Calc.java": "class Calc {\n    int add(int a, int b) {\n        return a + b;\n    }\n}\n",
}


def run(*cmd: str | Path, timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess:
    """Run a command; its output is in the assertion message when it fails."""
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make dist`` into a temporary folder, with this interpreter's build and twine."""
    folder = tmp_path_factory.mktemp("dist")
    done = run(
        "make",
        "--no-print-directory",
        "-o",
        ".venv/.setup-stamp",  # the venv running this test is the one set up
        "dist",
        f"DIST={folder}",
        f"BIN={Path(sys.executable).parent}",
        cwd=REPO,
    )
    assert done.stdout.count("PASSED") == 2, done.stdout  # twine check: wheel and sdist
    return folder


@pytest.fixture(scope="session")
def wheel(dist: Path) -> Path:
    [path] = dist.glob("spanlens_lsp-*.whl")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would import the source tree or another venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(NO_COLOR="1", **extra)
    return env


@pytest.fixture(scope="session")
def bin_dir(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (pip install of the file, not ``-e``)."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=False)  # ensurepip alone took 30 s here: this pip installs
    bin_dir = root / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        wheel,
        env=clean_env(),
    )
    return bin_dir


def test_dist_holds_a_wheel_and_an_sdist_of_spanlens_lsp(dist: Path) -> None:
    version = spanlens_lsp.__version__
    assert sorted(p.name for p in dist.iterdir()) == [
        f"spanlens_lsp-{version}-py3-none-any.whl",
        f"spanlens_lsp-{version}.tar.gz",
    ]


def test_the_wheel_carries_every_package_file_and_nothing_else(wheel: Path) -> None:
    """Every file under server/spanlens_lsp (data files included) is in the wheel; nothing is
    installed outside the ``spanlens_lsp`` package and its dist-info."""
    source = {
        "spanlens_lsp/" + p.relative_to(SOURCE).as_posix()
        for p in SOURCE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    names = set(zipfile.ZipFile(wheel).namelist())
    info = f"spanlens_lsp-{spanlens_lsp.__version__}.dist-info/"
    assert source - names == set(), "left out of the wheel"
    assert {n for n in names if not n.startswith(info)} == source
    assert "spanlens_lsp/py.typed" in names
    assert info + "licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(info + "METADATA").decode()
    assert "Name: spanlens-lsp" in metadata
    assert "# spanlens" in metadata  # the README, as the long description


def test_the_wheel_installs_no_top_level_spanlens(wheel: Path, bin_dir: Path) -> None:
    """PyPI's unrelated ``spanlens`` (an agent-tracing SDK) is imported as ``spanlens``: this
    wheel installs ``spanlens_lsp`` alone, so the two never write over each other's files."""
    names = zipfile.ZipFile(wheel).namelist()
    info = f"spanlens_lsp-{spanlens_lsp.__version__}.dist-info"
    assert {name.split("/")[0] for name in names} == {"spanlens_lsp", info}
    found = run(
        bin_dir / "python",
        "-c",
        "import importlib.util; print(importlib.util.find_spec('spanlens'))",
        env=clean_env(),
        cwd=bin_dir,
    ).stdout.strip()
    assert found == "None", found


def test_the_installed_package_is_the_wheels(bin_dir: Path) -> None:
    where = run(
        bin_dir / "python",
        "-c",
        "import spanlens_lsp; print(spanlens_lsp.__file__)",
        env=clean_env(),
        cwd=bin_dir,
    ).stdout.strip()
    assert Path(where).is_relative_to(bin_dir.parent), where


def test_version(bin_dir: Path, tmp_path: Path) -> None:
    done = run(bin_dir / "spanlens", "--version", env=clean_env(), cwd=tmp_path)
    assert done.stdout.strip() == f"spanlens {spanlens_lsp.__version__}"


@pytest.mark.parametrize("tool", ["pipx", "uv"])
def test_the_readmes_tool_installs_work(tool: str, wheel: Path, tmp_path: Path) -> None:
    """The README's other two ways, ``pipx install`` and ``uv tool install`` of the wheel, each
    into an environment of its own, give a working ``spanlens`` command."""
    tools = Path(sys.executable).parent
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    if tool == "pipx":
        env = clean_env(PIPX_HOME=str(home), PIPX_BIN_DIR=str(bin_dir))
        command = [tools / "pipx", "install", "--python", sys.executable, wheel]
    else:
        env = clean_env(UV_TOOL_DIR=str(home), UV_TOOL_BIN_DIR=str(bin_dir))
        command = [tools / "uv", "tool", "install", "--python", sys.executable, wheel]
    run(*command, env=env, cwd=tmp_path)
    done = run(bin_dir / "spanlens", "--version", env=clean_env(), cwd=tmp_path)
    assert done.stdout.strip() == f"spanlens {spanlens_lsp.__version__}"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    for name, text in SOURCES.items():
        (root / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def test_index_parses_every_language(bin_dir: Path, workspace: Path) -> None:
    done = run(bin_dir / "spanlens", "index", "--json", env=clean_env(), cwd=workspace)
    report = json.loads(done.stdout)
    assert report["files_indexed"] == len(SOURCES)
    assert report["files_with_errors"] == 0
    assert report["spans_total"] >= len(SOURCES)  # Java: the class and its method
    assert (workspace / ".spanlens" / "index.db").is_file()


@pytest.fixture
async def client(bin_dir: Path, workspace: Path) -> AsyncIterator[LanguageClient]:
    client = make_test_lsp_client()
    await client.start_io(
        str(bin_dir / "spanlens"), "serve", "--stdio", env=clean_env(), cwd=str(workspace)
    )
    yield client
    await client.shutdown_session()
    await client.stop()


async def indexed(client: LanguageClient) -> None:
    """Until a spanlens/status says the initial index is done."""
    while not getattr(await client.wait_for_notification("spanlens/status"), "indexed", None):
        pass


async def test_serve_answers_a_hover_over_stdio(client: LanguageClient, workspace: Path) -> None:
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("neovim"),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
        )
    )
    assert result.server_info is not None
    assert result.server_info.version == spanlens_lsp.__version__
    await asyncio.wait_for(indexed(client), timeout=60)

    path = workspace / "calc.py"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=path.as_uri(), language_id="python", version=1, text=path.read_text()
            )
        )
    )
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri()),
            position=types.Position(line=0, character=5),
        )
    )
    assert hover is not None
    assert isinstance(hover.contents, types.MarkupContent)
    assert "Add two numbers" in hover.contents.value, hover.contents.value
