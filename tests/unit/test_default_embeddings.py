"""Which embedding endpoints are in force: the configured ones, else the built-in model when
it is installed, else none (search by keywords, with one line saying how to install it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.localmodel import install_model_file

from spanlens_lsp.config import load_settings
from spanlens_lsp.embedding.builtin import (
    INSTALL_EMBEDDING_HINT,
    builtin_embedding_settings,
    embedding_endpoints,
    embedding_note,
)
from spanlens_lsp.embedding.endpoints import close_embedders, embedders_from_settings
from spanlens_lsp.enrichment.backends.local_embeddings import LocalEmbeddingBackend
from spanlens_lsp.localmodel.catalog import EMBEDDING_MODEL
from spanlens_lsp.settings import EmbeddingSettings, Settings

CONFIGURED = """
[[embeddings]]
name = "mine"
provider = "openai"
url = "http://127.0.0.1:8081"
model = "nomic-embed-text"
"""


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in embedding model "installed": a file whose size and hash the catalog pins
    (it is never run here)."""
    install_model_file(monkeypatch, b"GGUF not really", EMBEDDING_MODEL)


async def test_nothing_configured_and_installed_is_the_built_in_engine(
    tmp_path: Path, installed: None
) -> None:
    settings = load_settings(tmp_path)
    (endpoint,) = embedding_endpoints(settings)
    assert (endpoint.name, endpoint.provider, endpoint.model) == (
        "built-in",
        "local",
        EMBEDDING_MODEL,
    )
    assert not endpoint.is_remote
    assert embedding_note(settings) is None
    embedders = embedders_from_settings(settings)
    try:
        (embedder,) = embedders
        assert embedder.model == EMBEDDING_MODEL
        assert isinstance(embedder.endpoint.backend, LocalEmbeddingBackend)
    finally:
        await close_embedders(embedders)


def test_nothing_configured_and_not_installed_is_keywords_with_one_line(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert embedding_endpoints(settings) == []
    assert embedders_from_settings(settings) == []
    assert embedding_note(settings) == INSTALL_EMBEDDING_HINT
    assert "\n" not in INSTALL_EMBEDDING_HINT
    assert f"spanlens model install {EMBEDDING_MODEL}" in INSTALL_EMBEDDING_HINT


def test_an_empty_list_means_none_even_when_installed(tmp_path: Path, installed: None) -> None:
    (tmp_path / "spanlens.toml").write_text("embeddings = []\n", encoding="utf-8")
    settings = load_settings(tmp_path)
    assert settings.embeddings_configured
    assert embedding_endpoints(settings) == []
    assert embedding_note(settings) is None  # the user said so: nothing to suggest


def test_configured_endpoints_win_over_the_built_in_model(tmp_path: Path, installed: None) -> None:
    (tmp_path / "spanlens.toml").write_text(CONFIGURED, encoding="utf-8")
    settings = load_settings(tmp_path)
    assert [e.name for e in embedding_endpoints(settings)] == ["mine"]
    assert embedding_note(settings) is None


def test_installed_without_the_engine_says_so(
    tmp_path: Path, installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("spanlens_lsp.embedding.builtin.engine_installed", lambda: False)
    settings = load_settings(tmp_path)
    assert embedding_endpoints(settings) == []
    note = embedding_note(settings)
    assert note is not None and "installed but not its engine" in note and "[local]" in note


def test_the_built_in_model_is_sent_texts_its_context_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # all-MiniLM-L6-v2's catalog entry bounds its texts (llama.cpp refuses a longer one whole).
    monkeypatch.delenv("SPANLENS_MODEL_CATALOG", raising=False)
    assert builtin_embedding_settings(Settings()).max_chars == 750
    # A catalog without a bound for it leaves the setting's default.
    install_model_file(monkeypatch, b"GGUF not really", EMBEDDING_MODEL)
    assert builtin_embedding_settings(Settings()).max_chars == EmbeddingSettings().max_chars
