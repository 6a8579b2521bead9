"""Typed settings: defaults < spanlens.toml / [tool.spanlens] < environment < editor settings.

Every key is checked against its declared type; a bad value is a :class:`ConfigError` whose
message names the key and where it came from. Unknown keys are errors too (a typo should not
silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import types
import typing
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.settings import (
    BackendSettings,
    ConfigError,
    EmbeddingSettings,
    Settings,
    url_is_local,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "ALLOW_WORKSPACE_REMOTE",
    "deep_merge",
    "has_settings_file",
    "load_settings",
    "settings_from_dict",
]


#: Environment variable with which a user lets workspace files configure remote backends.
ALLOW_WORKSPACE_REMOTE = "SPANLENS_ALLOW_WORKSPACE_REMOTE"

#: Enrichment settings that must be greater than zero.
_POSITIVE = ("give_up_after",)

_CHOICES = {
    ("lsp", "code_lens"): {"all", "top", "off"},
    ("lsp", "diagnostics"): {"off", "hint", "information"},
    ("backends", "provider"): {"ollama", "openai", "local"},
    ("backends", "engine"): {"llama.cpp", "llama-cpp-python", "openai-compatible"},
    ("embeddings", "provider"): {"ollama", "openai"},
}

#: Endpoint lists, each a JSON list in its own environment variable (``SPANLENS_BACKENDS``).
_ENDPOINT_LISTS = ("backends", "embeddings")
_ENDPOINT_NOUNS = {"backends": "backend", "embeddings": "embedding endpoint"}


def has_settings_file(folder: Path) -> bool:
    """Whether ``folder`` holds a settings file :func:`load_settings` reads: ``spanlens.toml``,
    or a ``pyproject.toml`` with a ``[tool.spanlens]`` table (one that cannot be read has none).
    """
    if (folder / "spanlens.toml").is_file():
        return True
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        tool = _read_toml(pyproject).get("tool")
    except ConfigError:
        return False
    return isinstance(tool, dict) and isinstance(tool.get("spanlens"), dict)


def load_settings(root: Path, overrides: dict[str, Any] | None = None) -> Settings:
    """Settings for the workspace at ``root``: file, then environment, then ``overrides``."""
    raw: dict[str, Any] = {}
    sources: list[str] = []
    toml_path = root / "spanlens.toml"
    pyproject = root / "pyproject.toml"
    if toml_path.is_file():
        raw = _read_toml(toml_path)
        sources.append(str(toml_path))
    elif pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {}).get("spanlens")
        if isinstance(tool, dict):
            raw = tool
            sources.append(f"{pyproject} [tool.spanlens]")
    env = _environment_overrides(os.environ)
    if env:
        deep_merge(raw, env)
        sources.append("environment (SPANLENS_*)")
    if overrides:
        deep_merge(raw, overrides)
        sources.append("editor settings")
    settings = settings_from_dict(raw)
    settings.sources = sources or ["defaults"]
    if os.environ.get(ALLOW_WORKSPACE_REMOTE, "") not in {"1", "true"}:
        for key in _ENDPOINT_LISTS:
            from_file = bool(sources) and key not in env and not (overrides and key in overrides)
            if from_file:
                setattr(settings, key, _distrusted(getattr(settings, key), key, settings.notes))
    # Notes quote names and URLs from a repository's file: shown in terminals and editors.
    settings.notes = [clean_text(note, one_line=True) for note in settings.notes]
    return settings


_Endpoint = typing.TypeVar("_Endpoint", BackendSettings, EmbeddingSettings)


def _distrusted(endpoints: list[_Endpoint], key: str, notes: list[str]) -> list[_Endpoint]:
    """A file that came with the repository must not send code or keys off this machine.

    Backends and embedding endpoints (``key``) defined in spanlens.toml / pyproject.toml are
    the repository's choice, not the user's: a remote one (by its URL, see
    :func:`url_is_local`; ``remote = false`` cannot vouch for a remote host) is dropped, and a
    local one loses its ``api_key_env`` (a repository must not pick which of your
    environment's secrets is sent anywhere), unless the user opts in with
    SPANLENS_ALLOW_WORKSPACE_REMOTE=1 or configures them in the editor or SPANLENS_BACKENDS
    (SPANLENS_EMBEDDINGS). Returns the endpoints kept; ``notes`` says what was not.
    """
    kept = []
    what = _ENDPOINT_NOUNS[key]
    fix = f"set {ALLOW_WORKSPACE_REMOTE}=1 or configure it in your editor or SPANLENS_{key.upper()}"
    for endpoint in endpoints:
        if endpoint.remote is False and not url_is_local(endpoint.url):
            endpoint.remote = None
        if endpoint.is_remote:
            notes.append(
                f"ignored {what} '{endpoint.name}' ({_shown_url(endpoint.url)}) from the "
                f"workspace file: a repository's config cannot send code off this machine; "
                f"{fix}"
            )
            continue
        if endpoint.api_key_env:
            notes.append(
                f"{what} '{endpoint.name}' from the workspace file gets no API key: a "
                f"repository's config cannot send ${endpoint.api_key_env} anywhere; {fix}"
            )
            endpoint.api_key_env = None
        kept.append(endpoint)
    return kept


def url_has_credentials(url: str) -> bool:
    """Whether ``url`` carries a ``user[:password]@`` part."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def _shown_url(url: str) -> str:
    """``url`` without any ``user:password@`` part (for notes and errors)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def settings_from_dict(raw: dict[str, Any]) -> Settings:
    """Build validated :class:`Settings` from a plain dict (TOML-shaped)."""
    if not isinstance(raw, dict):
        raise ConfigError("settings must be a table")
    settings = Settings()
    for key, value in raw.items():
        if key in _ENDPOINT_LISTS:
            endpoints = _endpoints(value, key)
            setattr(settings, key, endpoints)
            settings.backends_configured |= key == "backends"
            settings.embeddings_configured |= key == "embeddings"
            noun = _ENDPOINT_NOUNS[key]
            settings.notes += [
                f"{noun} '{e.name}': the user:password in its URL is never sent (the {noun} "
                f"connects to {_shown_url(e.url)}); name the variable holding the key in "
                f"api_key_env"
                for e in endpoints
                if url_has_credentials(e.url)
            ]
        elif key in {"index", "enrichment", "gpu", "lsp", "docgen", "local"}:
            _apply(getattr(settings, key), value, key)
            settings.batch_configured |= key == "enrichment" and "batch" in value
        else:
            raise ConfigError(f"unknown setting '{key}'")
    for key in _POSITIVE:
        value = getattr(settings.enrichment, key)
        if not value > 0:
            raise ConfigError(f"enrichment.{key}: must be greater than 0, got {value!r}")
    tiers = settings.enrichment.tiers
    for backend in settings.backends:
        if backend.tier not in tiers:
            raise ConfigError(
                f"backends.{backend.name}.tier: '{backend.tier}' is not one of "
                f"enrichment.tiers {tiers}"
            )
    docs_dir = PurePosixPath(settings.docgen.dir.replace("\\", "/"))
    if not settings.docgen.dir.strip() or docs_dir.is_absolute() or ".." in docs_dir.parts:
        raise ConfigError(
            f"docgen.dir: must be a folder inside the workspace, got {settings.docgen.dir!r}"
        )
    return settings


def _endpoints(value: Any, key: str) -> list[Any]:
    """``[[backends]]`` or ``[[embeddings]]`` (``key``): checked tables, names unique."""
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of tables ([[{key}]])")
    result = []
    names: set[str] = set()
    for index, item in enumerate(value):
        endpoint = BackendSettings() if key == "backends" else EmbeddingSettings()
        path = f"{key}[{index}]"
        _apply(endpoint, item, path)
        if endpoint.name in names:
            raise ConfigError(f"{path}.name: '{endpoint.name}' is used twice")
        names.add(endpoint.name)
        try:
            parts = urlsplit(endpoint.url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ConfigError(f"{path}.url: not a valid URL") from None
        if parts.scheme not in {"http", "https"}:
            raise ConfigError(f"{path}.url: '{_shown_url(endpoint.url)}' is not an http(s) URL")
        if isinstance(endpoint, EmbeddingSettings):
            for name in ("batch_size", "max_chars", "max_parallel", "timeout"):
                if not getattr(endpoint, name) > 0:
                    raise ConfigError(
                        f"{path}.{name}: must be greater than 0, got {getattr(endpoint, name)!r}"
                    )
        result.append(endpoint)
    return result


def _apply(target: Any, value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must be a table")
    hints = typing.get_type_hints(type(target))
    fields = {f.name for f in dataclasses.fields(target)}
    section = path.split("[")[0].split(".")[0]
    for key, item in value.items():
        if key not in fields or key == "sources":
            raise ConfigError(f"unknown setting '{path}.{key}'")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            _apply(current, item, f"{path}.{key}")
            continue
        coerced = _coerce(item, hints[key], f"{path}.{key}")
        choices = _CHOICES.get((section, key))
        # None passed _coerce only where the setting may be unset (``engine = null``: detect).
        if choices and coerced is not None and coerced not in choices:
            raise ConfigError(
                f"{path}.{key}: '{coerced}' is not one of {', '.join(sorted(choices))}"
            )
        setattr(target, key, coerced)


def _coerce(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{path}: expected {name}, got {value!r}")


def _environment_overrides(environ: typing.Mapping[str, str]) -> dict[str, Any]:
    """``SPANLENS_<SECTION>_<KEY>=value``, ``SPANLENS_BACKENDS=<JSON list>`` and
    ``SPANLENS_EMBEDDINGS=<JSON list>``.

    ``<KEY>`` may name a key of a nested table too: ``SPANLENS_ENRICHMENT_ROUTER_SMALL_MAX_LINES``
    is ``enrichment.router.small_max_lines``. A name that matches no key is an error that
    names the variable.
    """
    result: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    for name, value in environ.items():
        if not name.startswith("SPANLENS_"):
            continue
        rest = name[len("SPANLENS_") :].lower()
        if rest in _ENDPOINT_LISTS:
            try:
                result[rest] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name} is not valid JSON: {exc}") from exc
            continue
        section, _, key = rest.partition("_")
        if not key or not dataclasses.is_dataclass(hints.get(section)):
            continue
        path = _env_key_path(hints[section], key)
        if path is None:
            raise ConfigError(f"{name}: no setting {section}.{key} (see the README)")
        table = result.setdefault(section, {})
        for part in path[:-1]:
            table = table.setdefault(part, {})
        table[path[-1]] = value
    return result


def _env_key_path(table: Any, key: str) -> list[str] | None:
    """The field path in dataclass ``table`` that ``key`` (fields joined by ``_``) names."""
    hints = typing.get_type_hints(table)
    for field_ in dataclasses.fields(table):
        if key == field_.name and not dataclasses.is_dataclass(hints[field_.name]):
            return [field_.name]
        if key.startswith(field_.name + "_") and dataclasses.is_dataclass(hints[field_.name]):
            tail = _env_key_path(hints[field_.name], key[len(field_.name) + 1 :])
            if tail is not None:
                return [field_.name, *tail]
    return None


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge ``extra`` into ``base`` in place: tables merge key by key, anything else wins."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
