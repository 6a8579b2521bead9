"""Content hashes: over normalised span text, so whitespace-only edits and moves keep a hash."""

from __future__ import annotations

import hashlib


def normalise(text: str) -> str:
    """Strip trailing whitespace and drop blank lines.

    Leading indentation is kept: it is syntax in Python, and a span re-indented as a whole
    (moved into or out of a block) is in a new context anyway. Lines moving up or down the
    file, or blank lines added or removed, do not change the text.
    """
    return "\n".join(line for line in map(str.rstrip, text.splitlines()) if line)


def content_hash(text: str) -> str:
    """The hash of a span's normalised text (hex, 32 characters)."""
    return hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=16).hexdigest()


def file_sha256(data: bytes) -> str:
    """The sha256 of a file's bytes (hex)."""
    return hashlib.sha256(data).hexdigest()
