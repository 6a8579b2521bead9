"""The VS Code extension's JSON schema for ``spanlens.backends`` (package.json) describes
exactly the fields the server accepts for a ``[[backends]]`` table: the same names, JSON types,
defaults and choices, so settings.json completes and checks what the server will take and the
two cannot drift apart.

The server's side is read from :class:`spanlens_lsp.settings.BackendSettings` and, for choices,
from what :func:`spanlens_lsp.config.settings_from_dict` accepts and rejects.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.settings import BackendSettings, ConfigError, EnrichmentSettings

REPO = Path(__file__).resolve().parents[2]
NOT_A_CHOICE = "zz-not-a-choice"

PACKAGE = json.loads((REPO / "vscode-client/package.json").read_text(encoding="utf-8"))
SETTING = PACKAGE["contributes"]["configuration"]["properties"]["spanlens.backends"]
ITEM = SETTING["items"]
PROPERTIES: dict[str, dict[str, Any]] = ITEM["properties"]
FIELDS = {f.name: f for f in dataclasses.fields(BackendSettings)}
HINTS = typing.get_type_hints(BackendSettings)
JSON_TYPE = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _json_types(hint: Any) -> set[str]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return {"null" if a is type(None) else JSON_TYPE[a] for a in typing.get_args(hint)}
    return {JSON_TYPE[hint]}


def _accepts(backend: dict[str, Any]) -> bool:
    try:
        settings_from_dict({"backends": [backend]})
    except ConfigError:
        return False
    return True


def _server_choices(key: str) -> set[str] | None:
    """The values the server allows for a string field, from its error for another value."""
    try:
        settings_from_dict({"backends": [{key: NOT_A_CHOICE}]})
    except ConfigError as error:
        rule = rf"backends\[0\]\.{key}: '{NOT_A_CHOICE}' is not one of (.+)"
        found = re.fullmatch(rule, str(error))
        return set(found.group(1).split(", ")) if found else None
    return None


def test_the_schema_has_exactly_the_servers_fields_and_no_others() -> None:
    assert set(PROPERTIES) == set(FIELDS)
    assert SETTING["type"] == ["array", "null"] and ITEM["type"] == "object"
    assert ITEM["additionalProperties"] is False
    assert not _accepts({"no_such_field": 1}), "the server rejects unknown fields, as the schema"


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_each_fields_type_and_default_match(name: str) -> None:
    schema = PROPERTIES[name]
    declared = schema["type"]
    assert set(declared if isinstance(declared, list) else [declared]) == _json_types(HINTS[name])
    assert schema["default"] == FIELDS[name].default, name
    assert schema.get("description") or schema.get("markdownDescription"), name


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_choices_match_the_servers(name: str) -> None:
    if "string" not in _json_types(HINTS[name]):
        return
    enum = PROPERTIES[name].get("enum")
    choices = _server_choices(name)
    if choices is None:
        assert enum is None, f"{name}: the schema restricts what the server accepts freely"
        return
    assert enum is not None, f"{name}: the server allows only {sorted(choices)}"
    assert set(enum) == choices
    for value in enum:
        assert _accepts({name: value}), f"{name}: the server rejects the schema's {value!r}"


def test_tier_suggests_the_default_tiers_without_restricting_them() -> None:
    # enrichment.tiers is configurable: the schema offers the defaults as examples only.
    assert PROPERTIES["tier"]["examples"] == EnrichmentSettings().tiers
    assert "enum" not in PROPERTIES["tier"]


def test_the_url_pattern_matches_the_servers_rule() -> None:
    pattern = re.compile(PROPERTIES["url"]["pattern"])
    urls = ("http://127.0.0.1:11434", "https://api.example.com/v1", "ftp://x", "127.0.0.1:1")
    for url in urls:
        assert bool(pattern.search(url)) == _accepts({"url": url}), url


def test_the_snippets_are_backends_the_server_accepts() -> None:
    for snippet in ITEM["defaultSnippets"]:
        body = json.loads(re.sub(r"\$\{\d+:([^}]*)\}", r"\1", json.dumps(snippet["body"])))
        assert _accepts(body), snippet["label"]
