"""Where the built-in models live: the user's cache directory, by platform convention.

``SPANLENS_CACHE_DIR`` overrides it (tests, CI, a shared machine's mirror).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from spanlens_lsp.localmodel.catalog import get_model
from spanlens_lsp.localmodel.integrity import verified

#: Environment variable that replaces the platform's cache directory.
CACHE_DIR_ENV = "SPANLENS_CACHE_DIR"


def cache_dir() -> Path:
    """spanlens's cache directory: ``$SPANLENS_CACHE_DIR``, else the platform's
    (``~/.cache/spanlens`` on Linux, ``~/Library/Caches/spanlens`` on macOS,
    ``%LOCALAPPDATA%\\spanlens\\Cache`` on Windows). Not created here."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser().absolute()
    return Path(platformdirs.user_cache_dir("spanlens", appauthor=False))


def models_dir() -> Path:
    """The folder holding the installed GGUF files. Not created here."""
    return cache_dir() / "models"


def model_path(name: str) -> Path:
    """Where model ``name`` is (or would be) installed, installed or not."""
    return models_dir() / get_model(name).filename


def installed_model_path(name: str) -> Path | None:
    """The path of model ``name``'s GGUF if it is installed and its bytes are the pinned
    ones, else None. The first check of a file hashes it (seconds); later checks compare
    its size and mtime with the record kept beside it. An unknown name raises
    :class:`~spanlens_lsp.localmodel.catalog.UnknownModel`."""
    spec = get_model(name)
    path = models_dir() / spec.filename
    return path if verified(path, spec) else None
