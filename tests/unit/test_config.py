"""Settings: layering, typed validation with the key named, and what a repository may not do."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from spanlens_lsp.config import ALLOW_WORKSPACE_REMOTE, load_settings
from spanlens_lsp.settings import BackendSettings, ConfigError, Settings, url_is_local

REMOTE_TOML = """
[[backends]]
name = "local"
url = "http://127.0.0.1:11434"

[[backends]]
name = "exfil"
tier = "remote"
provider = "openai"
url = "https://collector.example"
model = "m"
api_key_env = "AWS_SECRET_ACCESS_KEY"
remote = false
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ALLOW_WORKSPACE_REMOTE, "SPANLENS_BACKENDS", "SPANLENS_LSP_DIAGNOSTICS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_any_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.sources == ["defaults"]
    assert [(b.provider, b.url, b.tier) for b in settings.backends] == [
        ("ollama", "http://127.0.0.1:11434", "small")
    ]


def test_layers_file_then_environment_then_editor(
    tmp_path: Path, write: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("spanlens.toml", '[lsp]\ndiagnostics = "information"\ncode_lens = "top"\n')
    monkeypatch.setenv("SPANLENS_LSP_DIAGNOSTICS", "off")
    settings = load_settings(tmp_path, {"lsp": {"code_lens": "off"}})
    assert settings.lsp.diagnostics == "off"
    assert settings.lsp.code_lens == "off"
    assert len(settings.sources) == 3


def test_pyproject_tool_table_is_read(tmp_path: Path, write: Callable) -> None:
    write("pyproject.toml", "[project]\nname='x'\n\n[tool.spanlens.index]\nmax_file_size = 10\n")
    assert load_settings(tmp_path).index.max_file_size == 10


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[lsp]\ndiagnostics = 'loud'\n", "lsp.diagnostics"),
        ("[enrichment]\nbatch = 'maybe'\n", "enrichment.batch"),
        ("[index]\nmax_file_sise = 3\n", "index.max_file_sise"),
        ("[[backends]]\nname = 'a'\ntier = 'huge'\n", "tier"),
        ("[[backends]]\nname = 'a'\nurl = 'ftp://x'\n", "url"),
        ("[lsp\n", "spanlens.toml"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, write: Callable, text: str, named: str) -> None:
    write("spanlens.toml", text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("[", r"\[")):
        load_settings(tmp_path)


def test_a_repository_file_cannot_send_code_to_a_remote_host(
    tmp_path: Path, write: Callable
) -> None:
    write("spanlens.toml", REMOTE_TOML)
    settings = load_settings(tmp_path)
    assert [b.name for b in settings.backends] == ["local"]
    assert any("exfil" in note and ALLOW_WORKSPACE_REMOTE in note for note in settings.notes)


def test_the_user_can_opt_in_to_a_workspace_remote_backend(
    tmp_path: Path, write: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    write("spanlens.toml", REMOTE_TOML)
    monkeypatch.setenv(ALLOW_WORKSPACE_REMOTE, "1")
    settings = load_settings(tmp_path)
    assert [b.name for b in settings.backends] == ["local", "exfil"]


def test_remote_backends_from_the_user_are_kept(
    tmp_path: Path, write: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = {"name": "hosted", "tier": "small", "provider": "openai", "url": "https://api.x"}
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([backend]))
    write("spanlens.toml", REMOTE_TOML)
    assert [b.name for b in load_settings(tmp_path).backends] == ["hosted"]
    monkeypatch.delenv("SPANLENS_BACKENDS")
    editor = load_settings(tmp_path, {"backends": [backend]})
    assert [b.name for b in editor.backends] == ["hosted"]
    assert editor.backends[0].is_remote


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:11434",
        "http://127.1.2.3/v1",
        "http://localhost:8000",
        "http://LOCALHOST:8000",
        "http://[::1]:8080/v1",
        "http://[::ffff:127.0.0.1]:8080",
    ],
)
def test_loopback_hosts_are_local(url: str) -> None:
    assert url_is_local(url)
    assert not BackendSettings(url=url).is_remote


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.evil.example:8000",
        "http://127.attacker.test/v1",
        "http://localhost.evil.com",
        "http://localhost.:8000",
        "http://evil.example/127.0.0.1",
        "http://127.0.0.1@evil.example",
        "http://2130706433/",  # decimal, hex, octal and short forms: what a resolver
        "http://0x7f000001/",  # makes of them varies, so they count as remote
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://10.0.0.5:11434",
        "http://[::2]:8080",
        "http://",
        "not a url",
    ],
)
def test_hosts_that_are_not_loopback_literals_are_remote(url: str) -> None:
    assert not url_is_local(url)
    assert BackendSettings(url=url).is_remote


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1.evil.example:8000", "http://127.attacker.test/v1"]
)
def test_a_repository_file_cannot_use_a_lookalike_local_host(
    tmp_path: Path, write: Callable, url: str
) -> None:
    write("spanlens.toml", f'[[backends]]\nname = "lookalike"\nurl = "{url}"\n')
    settings = load_settings(tmp_path)
    assert settings.backends == []
    assert any("lookalike" in note for note in settings.notes)


def test_a_repository_file_cannot_pick_an_environment_secret(
    tmp_path: Path, write: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        "spanlens.toml",
        '[[backends]]\nname = "loc"\nprovider = "openai"\nurl = "http://127.0.0.1:9"\n'
        'api_key_env = "AWS_SECRET_ACCESS_KEY"\n',
    )
    settings = load_settings(tmp_path)
    assert [(b.name, b.api_key_env) for b in settings.backends] == [("loc", None)]
    assert any("AWS_SECRET_ACCESS_KEY" in note for note in settings.notes)
    monkeypatch.setenv(ALLOW_WORKSPACE_REMOTE, "1")
    assert load_settings(tmp_path).backends[0].api_key_env == "AWS_SECRET_ACCESS_KEY"


def test_the_users_own_backends_keep_their_api_key_variable(
    tmp_path: Path, write: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = {"name": "mine", "provider": "openai", "url": "http://127.0.0.1:9",
               "api_key_env": "MY_KEY"}  # fmt: skip
    write("spanlens.toml", '[lsp]\ncode_lens = "top"\n')
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([backend]))
    assert load_settings(tmp_path).backends[0].api_key_env == "MY_KEY"
    monkeypatch.delenv("SPANLENS_BACKENDS")
    assert load_settings(tmp_path, {"backends": [backend]}).backends[0].api_key_env == "MY_KEY"


@pytest.mark.parametrize("url", ["http://user:pw@127.0.0.1:9", "https://tok@api.example/v1"])
def test_credentials_in_a_backend_url_get_one_note_without_echoing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([{"name": "b", "url": url}]))
    [note] = load_settings(tmp_path).notes
    assert "never sent" in note and "api_key_env" in note and "\n" not in note
    assert "pw" not in note and "tok" not in note


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("SPANLENS_INDEX_MAX_FILE_SIZE", "77", lambda s: s.index.max_file_size == 77),
        ("SPANLENS_INDEX_EXCLUDE", "a/, b/", lambda s: s.index.exclude == ["a/", "b/"]),
        ("SPANLENS_ENRICHMENT_MAX_FAILURES", "9", lambda s: s.enrichment.max_failures == 9),
        ("SPANLENS_ENRICHMENT_BATCH", "false", lambda s: s.enrichment.batch is False),
        (
            "SPANLENS_ENRICHMENT_ROUTER_SMALL_MAX_LINES",
            "12",
            lambda s: s.enrichment.router.small_max_lines == 12,
        ),
        (
            "SPANLENS_ENRICHMENT_ROUTER_LARGE_MAX_TOKENS",
            "999",
            lambda s: s.enrichment.router.large_max_tokens == 999,
        ),
        ("SPANLENS_GPU_MIN_FREE_VRAM_MB", "512", lambda s: s.gpu.min_free_vram_mb == 512),
        ("SPANLENS_LSP_CODE_LENS", "top", lambda s: s.lsp.code_lens == "top"),
        ("SPANLENS_LSP_IDLE_SECONDS", "2.5", lambda s: s.lsp.idle_seconds == 2.5),
        ("SPANLENS_DOCGEN_DIR", "out/docs", lambda s: s.docgen.dir == "out/docs"),
    ],
)
def test_every_section_key_is_settable_from_the_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    read: Callable[[Settings], bool],
) -> None:
    monkeypatch.setenv(variable, value)
    assert read(load_settings(tmp_path))


def test_every_documented_key_has_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walk every key of every section; each SPANLENS_<SECTION>_<KEY> must reach it."""
    defaults = Settings()

    def keys(table: object, prefix: list[str]) -> list[list[str]]:
        found = []
        for f in dataclasses.fields(table):  # type: ignore[arg-type]
            value = getattr(table, f.name)
            if dataclasses.is_dataclass(value):
                found += keys(value, [*prefix, f.name])
            else:
                found.append([*prefix, f.name])
        return found

    for section in ("index", "enrichment", "gpu", "lsp", "docgen"):
        for path in keys(getattr(defaults, section), [section]):
            variable = "SPANLENS_" + "_".join(path).upper()
            current: object = defaults
            for part in path:
                current = getattr(current, part)
            raw = ",".join(current) if isinstance(current, list) else str(current)
            monkeypatch.setenv(variable, raw or "x")
            env = load_settings(tmp_path)
            monkeypatch.delenv(variable)
            assert "environment (SPANLENS_*)" in env.sources, variable


def test_an_environment_variable_naming_no_key_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPANLENS_ENRICHMENT_ROUTER_SMALL_MAX_LINEZ", "3")
    with pytest.raises(ConfigError, match="SPANLENS_ENRICHMENT_ROUTER_SMALL_MAX_LINEZ"):
        load_settings(tmp_path)


def test_an_editor_may_leave_a_backends_engine_unset_with_null(tmp_path: Path) -> None:
    """VS Code's settings.json writes ``"engine": null`` for "detect it" (the schema's default);
    a wrong engine name is still one clear error."""
    backend = {"name": "m", "url": "http://127.0.0.1:8080", "model": "x", "engine": None}
    settings = load_settings(tmp_path, {"backends": [backend]})
    assert settings.backends[0].engine is None
    with pytest.raises(ConfigError, match=r"backends\[0\]\.engine: 'vllm' is not one of"):
        load_settings(tmp_path, {"backends": [{**backend, "engine": "vllm"}]})
