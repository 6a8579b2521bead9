"""The languages spanlens indexes are listed once, in the server's table; every client's list
is checked against it, so adding a language without updating a client fails here.

The server's table: ``spanlens_lsp.indexing.languages`` (:func:`editor_languages`, VS Code's
language ids, which are Neovim's filetypes too). The clients' lists are read as text or JSON:
the VS Code extension's ``LANGUAGES`` (its document selector and language status items use
it) and activation events, the Neovim plugin's filetypes and its ``lsp/spanlens.lua``, and the
lazy.nvim example in the README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from spanlens_lsp.indexing.languages import (
    EDITOR_LANGUAGE_BY_EXTENSION,
    LANGUAGE_BY_EXTENSION,
    editor_languages,
)

REPO = Path(__file__).resolve().parents[2]


def _strings(text: str) -> list[str]:
    """The quoted strings (single or double quotes) in ``text``, in order."""
    return [a or b for a, b in re.findall(r"\"([^\"]*)\"|'([^']*)'", text)]


def _one(pattern: str, text: str, where: str) -> str:
    found = re.findall(pattern, text, re.DOTALL)
    assert len(found) == 1, f"{where}: expected one match of {pattern!r}, found {len(found)}"
    return str(found[0])


def vscode_languages() -> list[str]:
    text = (REPO / "vscode-client/src/servers.ts").read_text(encoding="utf-8")
    return _strings(_one(r"export const LANGUAGES = \[(.*?)\];", text, "servers.ts"))


def vscode_activation_languages() -> list[str]:
    manifest = json.loads((REPO / "vscode-client/package.json").read_text(encoding="utf-8"))
    events = manifest.get("activationEvents", [])
    return [
        event.removeprefix("onLanguage:") for event in events if event.startswith("onLanguage:")
    ]


def neovim_filetypes() -> list[str]:
    text = (REPO / "nvim/lua/spanlens/init.lua").read_text(encoding="utf-8")
    return _strings(_one(r"\nM\.filetypes = \{(.*?)\}", text, "nvim/lua/spanlens/init.lua"))


def neovim_config_filetypes() -> list[str]:
    """lsp/spanlens.lua is self-contained (nvim-lspconfig could ship it): its own list."""
    text = (REPO / "nvim/lsp/spanlens.lua").read_text(encoding="utf-8")
    return _strings(_one(r"\n  filetypes = \{(.*?)\}", text, "nvim/lsp/spanlens.lua"))


def readme_lazy_filetypes() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return _strings(_one(r"\n  ft = \{(.*?)\},", text, "README.md (lazy.nvim example)"))


CLIENT_LISTS = {
    "vscode-client/src/servers.ts LANGUAGES": vscode_languages,
    "vscode-client/package.json activationEvents": vscode_activation_languages,
    "nvim/lua/spanlens/init.lua M.filetypes": neovim_filetypes,
    "nvim/lsp/spanlens.lua filetypes": neovim_config_filetypes,
    "README.md lazy.nvim ft": readme_lazy_filetypes,
}


@pytest.mark.parametrize("where", sorted(CLIENT_LISTS))
def test_every_client_lists_exactly_the_languages_the_server_indexes(where: str) -> None:
    listed = CLIENT_LISTS[where]()
    server = list(editor_languages())
    missing = [language for language in server if language not in listed]
    extra = [language for language in listed if language not in server]
    assert not missing and not extra, (
        f"{where} differs from spanlens_lsp.indexing.languages: missing {missing}, extra {extra}"
    )
    assert len(listed) == len(set(listed)), f"{where} lists a language twice: {listed}"


def test_the_clients_use_their_one_list_everywhere() -> None:
    """The VS Code document selector and status items are built from ``LANGUAGES``: no second
    list to forget. Each Neovim file lists them at most once."""
    servers = (REPO / "vscode-client/src/servers.ts").read_text(encoding="utf-8")
    assert re.search(r"documentSelector: LANGUAGES\.map\(", servers), "servers.ts: selector"
    extension = (REPO / "vscode-client/src/extension.ts").read_text(encoding="utf-8")
    assert re.search(r"new StatusView\(LANGUAGES\.map\(", extension), "extension.ts: status"
    for path in (*REPO.glob("vscode-client/src/*.ts"), *REPO.glob("nvim/**/*.lua")):
        text = path.read_text(encoding="utf-8")
        lists = re.findall(r"[\[{][^\[\]{}]*[\"']typescriptreact[\"'][^\[\]{}]*[\]}]", text)
        assert len(lists) <= 1, f"{path.relative_to(REPO)} lists the languages more than once"


def test_editor_ids_cover_every_extension_the_server_indexes() -> None:
    """React files are their own languages in editors: a .tsx file is ``typescriptreact``."""
    assert set(EDITOR_LANGUAGE_BY_EXTENSION) <= set(LANGUAGE_BY_EXTENSION)
    assert {"typescriptreact", "javascriptreact", "python", "java"} <= set(editor_languages())


def test_the_neovim_config_finds_roots_as_the_plugin_does() -> None:
    """lsp/spanlens.lua (0.11+) and the plugin's setup() (0.7-0.10) share the root rule: the
    same markers in the same order of priority."""
    config = (REPO / "nvim/lsp/spanlens.lua").read_text(encoding="utf-8")
    plugin = (REPO / "nvim/lua/spanlens/init.lua").read_text(encoding="utf-8")
    markers = _strings(_one(r"\n  root_markers = \{(.*?)\}", config, "nvim/lsp/spanlens.lua"))
    expected = _strings(_one(r"\nM\.root_markers = \{(.*?)\}", plugin, "init.lua"))
    assert markers == expected
