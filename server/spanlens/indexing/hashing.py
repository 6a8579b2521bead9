"""Content hashes: over normalised span text, so whitespace-only edits and moves keep a hash."""

from __future__ import annotations

import hashlib


def normalise(text: str) -> str:
    """Dedent, strip trailing whitespace and drop blank lines.

    Indentation *inside* the span is kept (it is syntax in Python); only the common leading
    indentation goes, so a function moved into or out of a block keeps its hash.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    # The first line of a span starts at its column, so it has no indentation of its own;
    # dedent the rest by their common indentation.
    rest = lines[1:]
    if rest:
        indent = min(len(line) - len(line.lstrip()) for line in rest)
        if indent:
            rest = [line[indent:] for line in rest]
    return "\n".join([lines[0].lstrip(), *rest])


def content_hash(text: str) -> str:
    """The hash of a span's normalised text (hex, 32 characters)."""
    return hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=16).hexdigest()


def file_sha256(data: bytes) -> str:
    """The sha256 of a file's bytes (hex)."""
    return hashlib.sha256(data).hexdigest()
