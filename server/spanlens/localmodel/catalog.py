"""STAND-IN for wt-h2's catalog (the model installer's branch): the same public names, so the
engine can be built and tested before that branch lands. The lead replaces this file with
wt-h2's at merge. ``SPANLENS_MODEL_CATALOG`` names a JSON catalog that replaces the built-in
one, as in wt-h2's: ``{"default": NAME, "models": [{"name", "label", "filename", "size",
"sha256"}, ...]}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATALOG_ENV = "SPANLENS_MODEL_CATALOG"
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class UnknownModel(ValueError):
    """A model name the catalog does not know."""


@dataclass(frozen=True)
class ModelSpec:
    """One installable model."""

    name: str
    label: str
    filename: str
    size: int
    sha256: str
    sources: tuple[Any, ...] = field(default=())


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        "qwen2.5-coder-1.5b",
        "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": ModelSpec(
        "qwen2.5-coder-0.5b",
        "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def catalog() -> dict[str, ModelSpec]:
    """The JSON catalog named by ``SPANLENS_MODEL_CATALOG``, else :data:`MODELS`."""
    path = os.environ.get(CATALOG_ENV)
    if not path:
        return MODELS
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {
        str(m["name"]): ModelSpec(
            str(m["name"]),
            str(m.get("label", m["name"])),
            str(m["filename"]),
            int(m["size"]),
            str(m["sha256"]),
        )
        for m in raw["models"]
    }


def get_model(name: str) -> ModelSpec:
    """The model called ``name``; :class:`UnknownModel` if there is none."""
    try:
        return catalog()[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}") from None
