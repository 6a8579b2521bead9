"""A model "installed" in the test's cache directory: a catalog (``SPANLENS_MODEL_CATALOG``)
naming a file that is there, with its true size and SHA-256, so the installer's own checks
accept it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest


def install_model_file(
    monkeypatch: pytest.MonkeyPatch, source: Path | bytes, name: str = "test-model"
) -> Path:
    """Place ``source`` (a GGUF to link, or bytes) as model ``name`` in ``$SPANLENS_CACHE_DIR``
    and point the catalog at it; the path of the installed file."""
    cache = Path(os.environ["SPANLENS_CACHE_DIR"])
    models = cache / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / f"{name}.gguf"
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        target.symlink_to(source.resolve())
    digest = hashlib.sha256()
    with open(target, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    catalog = cache / "catalog.json"
    entry = {
        "name": name,
        "label": name,
        "filename": target.name,
        "size": target.stat().st_size,
        "sha256": digest.hexdigest(),
    }
    catalog.write_text(json.dumps({"default": name, "models": [entry]}), encoding="utf-8")
    monkeypatch.setenv("SPANLENS_MODEL_CATALOG", str(catalog))
    return target


def write_tiny_catalog(folder: Path, data: bytes, urls: list[str]) -> Path:
    """A one-model catalog (``SPANLENS_MODEL_CATALOG``) in ``folder``: the default model
    ``tiny`` is ``data``, fetched from ``urls``; the catalog's path."""
    path = folder / "catalog.json"
    model = {
        "name": "tiny",
        "label": "Tiny test model",
        "filename": "tiny.gguf",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "urls": urls,
    }
    path.write_text(json.dumps({"default": "tiny", "models": [model]}))
    return path
