"""Whether a file is a model's pinned bytes: SHA-256, remembered beside the file.

Hashing a 1 GB model takes seconds, so a verified file gets a small sidecar record
(``<file>.verified``: size, mtime, hash); a later check that finds the same size and mtime
trusts the record. A file whose size differs from the catalog's is rejected at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spanlens_lsp.localmodel.catalog import ModelSpec

_CHUNK = 1024 * 1024


def sidecar_path(path: Path) -> Path:
    """The record of ``path``'s last successful verification."""
    return path.with_name(path.name + ".verified")


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """SHA-256 of the file at ``path``, lowercase hex; ``progress(bytes_read)`` per chunk."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def remember(path: Path, sha256: str) -> None:
    """Record that ``path``, as it is now, hashes to ``sha256``."""
    stat = path.stat()
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    try:
        sidecar_path(path).write_text(json.dumps(record), encoding="utf-8")
    except OSError:
        pass  # a read-only cache: the file is hashed again next time


def verified(path: Path, spec: ModelSpec) -> bool:
    """Whether ``path`` holds ``spec``'s pinned bytes. The file is hashed unless the record
    beside it still matches its size and mtime; the record keeps the hash found, so a file
    with the wrong bytes is not hashed again on every check either."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != spec.size:
        return False
    try:
        record = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        if (record.get("size"), record.get("mtime_ns")) == (stat.st_size, stat.st_mtime_ns):
            return bool(record.get("sha256") == spec.sha256)
    except (OSError, ValueError, AttributeError):
        pass
    try:
        found = sha256_file(path)
    except OSError:
        return False
    remember(path, found)
    return found == spec.sha256
