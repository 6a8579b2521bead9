"""What enriches when nothing is configured (resolve_default_backends), against real servers
on 127.0.0.1: a stand-in Ollama that answers (with or without the model) or nothing at all,
and a model file installed in the test's cache directory. The built-in engine is picked only
where its package (xllamacpp, the [local] extra that `make setup` installs) is importable."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.localmodel import install_model_file
from tests.support.standin import StandinModelServer, closed_port_url

from spanlens_lsp.config import load_settings
from spanlens_lsp.enrichment.backends.defaults import resolve_default_backends
from spanlens_lsp.localmodel.engine import state_path
from spanlens_lsp.settings import BackendSettings, Settings


@pytest.fixture
def ollama_with_model() -> Iterator[StandinModelServer]:
    with StandinModelServer(models=("qwen2.5-coder:7b",)) as standin:
        yield standin


def resolve(settings: Settings, ollama_url: str) -> Settings:
    return asyncio.run(resolve_default_backends(settings, ollama=BackendSettings(url=ollama_url)))


def unconfigured(root: Path) -> Settings:
    settings = load_settings(root)
    assert not settings.backends_configured
    return settings


def test_a_running_ollama_with_its_model_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ollama_with_model: StandinModelServer
) -> None:
    install_model_file(monkeypatch, b"GGUF fake", "qwen2.5-coder-1.5b")
    settings = resolve(unconfigured(tmp_path), ollama_with_model.url)
    [backend] = settings.backends
    assert (backend.provider, backend.url) == ("ollama", ollama_with_model.url)
    assert settings.notes == []


def test_the_built_in_engine_when_ollama_lacks_the_model_or_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_model_file(monkeypatch, b"GGUF fake", "qwen2.5-coder-1.5b")
    with StandinModelServer(models=("llama3:8b",)) as other_models:
        for url in (other_models.url, closed_port_url()):
            settings = resolve(unconfigured(tmp_path), url)
            [backend] = settings.backends
            assert (backend.provider, backend.model) == ("local", "qwen2.5-coder-1.5b")
            assert backend.tier == "small" and not backend.is_remote
    # Resolving starts nothing: the engine waits for the first model call.
    assert not state_path("qwen2.5-coder-1.5b").exists()


def test_the_built_in_engine_enriches_one_span_a_call_unless_batch_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ollama_with_model: StandinModelServer
) -> None:
    """Measured with the default model (bench_quality, issue 16): 2 of 30 batched spans
    stored against 27 of 47 single calls. A user's `batch` wins either way, and a model server
    spanlens picks other than the built-in engine keeps the default."""
    install_model_file(monkeypatch, b"GGUF fake", "qwen2.5-coder-1.5b")
    settings = resolve(unconfigured(tmp_path), closed_port_url())
    assert settings.enrichment.batch is False
    assert resolve(unconfigured(tmp_path), ollama_with_model.url).enrichment.batch is True
    (tmp_path / "spanlens.toml").write_text("[enrichment]\nbatch = true\n")
    assert resolve(unconfigured(tmp_path), closed_port_url()).enrichment.batch is True


def test_the_local_model_setting_names_the_built_in_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_model_file(monkeypatch, b"GGUF small", "small-model")
    (tmp_path / "spanlens.toml").write_text('[local]\nmodel = "small-model"\n')
    [backend] = resolve(unconfigured(tmp_path), closed_port_url()).backends
    assert backend.model == "small-model"


def test_nothing_installed_is_facts_only_with_one_message(tmp_path: Path) -> None:
    settings = resolve(unconfigured(tmp_path), closed_port_url())
    assert settings.backends == []
    [note] = settings.notes
    assert "spanlens model install" in note and "facts only" in note


def test_configured_backends_always_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ollama_with_model: StandinModelServer
) -> None:
    install_model_file(monkeypatch, b"GGUF fake", "qwen2.5-coder-1.5b")
    (tmp_path / "spanlens.toml").write_text(
        '[[backends]]\nname = "mine"\nprovider = "openai"\nurl = "http://127.0.0.1:9"\n'
    )
    settings = load_settings(tmp_path)
    assert resolve(settings, ollama_with_model.url).backends == settings.backends
    (tmp_path / "spanlens.toml").write_text("backends = []\n")
    settings = resolve(load_settings(tmp_path), ollama_with_model.url)
    assert settings.backends == [] and settings.notes == []  # facts only, as asked


def test_a_silent_ollama_does_not_hold_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_model_file(monkeypatch, b"GGUF fake", "qwen2.5-coder-1.5b")
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        async def run() -> tuple[Settings, int, float]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.02)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            started = time.monotonic()
            settings = await resolve_default_backends(
                unconfigured(tmp_path), ollama=BackendSettings(url=url), ollama_timeout=0.3
            )
            elapsed = time.monotonic() - started
            ticker.cancel()
            return settings, ticks, elapsed

        settings, ticks, elapsed = asyncio.run(run())
    assert settings.backends[0].provider == "local"
    assert elapsed < 2.0 and ticks >= 5


def test_status_and_doctor_show_the_built_in_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., tuple[int, str, str]]
) -> None:
    (tmp_path / "tools.py").write_text("def one():\n    return 1\n")
    (tmp_path / "spanlens.toml").write_text("[gpu]\nenabled = false\n")
    assert cli("index", str(tmp_path))[0] == 0
    code, out, _ = cli("status", str(tmp_path), "--json")
    engine = json.loads(out)["local_engine"]
    assert code == 0 and engine["state"] == "not installed"
    assert "spanlens model install" in engine["hint"]
    code, out, _ = cli("doctor", str(tmp_path))
    assert code == 1
    assert "built-in engine: qwen2.5-coder-1.5b not installed" in out
    assert out.count("spanlens model install`") == 2  # the engine's line and the one problem
    # and one line for search by meaning, naming the embedding model
    assert out.count("spanlens model install all-minilm-l6-v2`") == 1

    install_model_file(monkeypatch, b"GGUF fake", "qwen2.5-coder-1.5b")
    code, out, _ = cli("status", str(tmp_path))
    assert code == 0 and "built-in engine: qwen2.5-coder-1.5b stopped" in out


def test_an_installed_model_without_its_engine_package_is_facts_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_model_file(monkeypatch, b"GGUF fake", "qwen2.5-coder-1.5b")
    # This Python without xllamacpp (the [local] extra), wherever it is installed.
    monkeypatch.delitem(sys.modules, "xllamacpp", raising=False)
    monkeypatch.setattr(
        sys, "path", [p for p in sys.path if not (Path(p or ".") / "xllamacpp").exists()]
    )
    settings = resolve(unconfigured(tmp_path), closed_port_url())
    assert settings.backends == []
    [note] = settings.notes
    assert "pip install 'spanlens-lsp[local]'" in note
