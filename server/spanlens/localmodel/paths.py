"""STAND-IN for wt-h2's paths (the model installer's branch): the same public names; the
lead replaces this file with wt-h2's at merge (which also checks the file's hash)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "SPANLENS_CACHE_DIR"


def cache_dir() -> Path:
    """spanlens's cache directory: ``$SPANLENS_CACHE_DIR``, else ``~/.cache/spanlens``."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser().absolute()
    return Path.home() / ".cache" / "spanlens"


def models_dir() -> Path:
    """The folder holding the installed GGUF files."""
    return cache_dir() / "models"


def installed_model_path(name: str) -> Path | None:
    """The GGUF of model ``name`` if a file of the catalog's size is installed, else None."""
    from spanlens.localmodel.catalog import get_model

    spec = get_model(name)
    path = models_dir() / spec.filename
    try:
        return path if path.stat().st_size == spec.size else None
    except OSError:
        return None
