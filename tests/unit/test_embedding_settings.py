"""``[[embeddings]]``: typed like backends, none by default, and a repository's own file cannot
point them off this machine or at one of your keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from spanlens_lsp.config import ALLOW_WORKSPACE_REMOTE, load_settings
from spanlens_lsp.settings import ConfigError

TOML = """
[[embeddings]]
name = "local"
url = "http://127.0.0.1:11434"
model = "nomic-embed-text"
api_key_env = "MY_KEY"

[[embeddings]]
name = "exfil"
provider = "openai"
url = "https://collector.example"
model = "text-embedding-3-small"
remote = false
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ALLOW_WORKSPACE_REMOTE, "SPANLENS_EMBEDDINGS", "SPANLENS_BACKENDS"):
        monkeypatch.delenv(name, raising=False)


def test_no_embedding_endpoint_by_default(tmp_path: Path) -> None:
    assert load_settings(tmp_path).embeddings == []


def test_a_repository_file_keeps_local_endpoints_only_and_no_key(
    tmp_path: Path, write: Callable
) -> None:
    write("spanlens.toml", TOML)
    settings = load_settings(tmp_path)
    assert [(e.name, e.api_key_env, e.batch_size) for e in settings.embeddings] == [
        ("local", None, 32)
    ]
    assert any(
        "embedding endpoint 'exfil'" in n and "SPANLENS_EMBEDDINGS" in n for n in settings.notes
    )
    assert any("'local'" in n and "$MY_KEY" in n for n in settings.notes)


def test_the_user_may_opt_in_or_configure_them_in_the_environment(
    tmp_path: Path, write: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("spanlens.toml", TOML)
    monkeypatch.setenv(ALLOW_WORKSPACE_REMOTE, "1")
    assert [e.name for e in load_settings(tmp_path).embeddings] == ["local", "exfil"]
    monkeypatch.delenv(ALLOW_WORKSPACE_REMOTE)
    hosted = {"name": "hosted", "provider": "openai", "url": "https://api.x", "model": "m"}
    monkeypatch.setenv("SPANLENS_EMBEDDINGS", json.dumps([hosted]))
    settings = load_settings(tmp_path)
    assert [(e.name, e.is_remote) for e in settings.embeddings] == [("hosted", True)]
    editor = load_settings(tmp_path, {"embeddings": [hosted]})
    assert [e.name for e in editor.embeddings] == ["hosted"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"provider": "cohere"}, "embeddings[0].provider: 'cohere' is not one of ollama, openai"),
        ({"batch_size": 0}, "embeddings[0].batch_size: must be greater than 0, got 0"),
        ({"max_chars": -1}, "embeddings[0].max_chars: must be greater than 0, got -1"),
        ({"url": "ftp://x"}, "embeddings[0].url: 'ftp://x' is not an http(s) URL"),
        ({"dims": 3}, "unknown setting 'embeddings[0].dims'"),
    ],
)
def test_a_bad_value_is_one_clear_line(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, {"embeddings": [entry]})
    assert str(caught.value) == message
