"""The published package's metadata: one version everywhere, a free name, no dev tools as an
extra, the repository named once.

The version lives in ``spanlens_lsp.__version__`` (pyproject.toml reads it from there); the VS Code
extension's package.json and the Neovim plugin's ``spanlens/version.lua`` repeat it, and a
release that bumps one without the others fails here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import spanlens_lsp

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def vscode_manifest() -> dict[str, Any]:
    return json.loads((REPO / "vscode-client/package.json").read_text(encoding="utf-8"))


def neovim_version() -> str:
    text = (REPO / "nvim/lua/spanlens/version.lua").read_text(encoding="utf-8")
    found = re.findall(r"^return '([^']*)'$", text, re.MULTILINE)
    assert len(found) == 1, f"nvim/lua/spanlens/version.lua: one `return '<version>'`: {found}"
    return found[0]


def test_the_package_extension_and_plugin_have_one_version() -> None:
    versions = {
        "spanlens_lsp.__version__": spanlens_lsp.__version__,
        "vscode-client/package.json": vscode_manifest()["version"],
        "nvim/lua/spanlens/version.lua": neovim_version(),
    }
    assert len(set(versions.values())) == 1, versions
    assert re.fullmatch(r"\d+\.\d+\.\d+", spanlens_lsp.__version__)


def test_the_wheel_reads_its_version_from_the_package() -> None:
    project = pyproject()
    assert "version" not in project["project"], "a second version number in pyproject.toml"
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "spanlens_lsp.__version__"
    }


def test_the_distribution_name_is_not_the_unrelated_spanlens_on_pypi() -> None:
    """PyPI's "spanlens" is an agent-tracing SDK: `pip install spanlens` installs that."""
    project = pyproject()["project"]
    assert project["name"] == "spanlens-lsp"
    assert project["scripts"] == {"spanlens": "spanlens_lsp.cli:main"}


def test_the_import_package_is_not_the_unrelated_spanlens() -> None:
    """PyPI's "spanlens" is imported as ``spanlens``: this one is ``spanlens_lsp`` (issue 18), the
    one package under server/ and the one the wheel's metadata names."""
    server = REPO / "server"
    packages = sorted(p.name for p in server.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["spanlens_lsp"]
    assert spanlens_lsp.__name__ == "spanlens_lsp"
    setuptools = pyproject()["tool"]["setuptools"]
    assert set(setuptools["package-data"]) == {"spanlens_lsp"}
    assert setuptools["dynamic"]["version"]["attr"].split(".")[0] == "spanlens_lsp"


def test_development_tools_are_not_a_published_extra() -> None:
    project = pyproject()
    assert set(project["project"]["optional-dependencies"]) == {"local"}
    dev = " ".join(project["dependency-groups"]["dev"])
    for tool in ("pytest", "ruff", "mypy", "build", "twine"):
        assert tool in dev


def test_the_repository_is_named_once() -> None:
    """The project URLs are the repository that the extension's package.json names."""
    urls = pyproject()["project"]["urls"]
    repository = vscode_manifest()["repository"]["url"]
    assert urls["Source"] == repository
    assert urls["Homepage"] == repository.removesuffix(".git")


def test_the_license_is_the_extensions() -> None:
    assert pyproject()["project"]["license"] == vscode_manifest()["license"] == "MIT"
    assert (REPO / "LICENSE").read_text(encoding="utf-8") == (
        REPO / "vscode-client/LICENSE"
    ).read_text(encoding="utf-8")
