"""The published package's metadata: one version everywhere, a free name, no dev tools as an
extra, the repository named once.

The version lives in ``spanlens.__version__`` (pyproject.toml reads it from there); the VS Code
extension's package.json and the Neovim plugin's ``spanlens/version.lua`` repeat it, and a
release that bumps one without the others fails here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import spanlens

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
        "spanlens.__version__": spanlens.__version__,
        "vscode-client/package.json": vscode_manifest()["version"],
        "nvim/lua/spanlens/version.lua": neovim_version(),
    }
    assert len(set(versions.values())) == 1, versions
    assert re.fullmatch(r"\d+\.\d+\.\d+", spanlens.__version__)


def test_the_wheel_reads_its_version_from_the_package() -> None:
    project = pyproject()
    assert "version" not in project["project"], "a second version number in pyproject.toml"
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "spanlens.__version__"}


def test_the_distribution_name_is_not_the_unrelated_spanlens_on_pypi() -> None:
    """PyPI's "spanlens" is an agent-tracing SDK: `pip install spanlens` installs that."""
    project = pyproject()["project"]
    assert project["name"] == "spanlens-lsp"
    assert project["scripts"] == {"spanlens": "spanlens.cli:main"}


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
