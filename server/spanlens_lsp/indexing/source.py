"""A file's current text, the one way every reader sees it: indexer, engine and server alike.

Editors count a lone CR as a line break and never show a UTF-8 byte order mark; tree-sitter
counts only LF and would take the mark for text. So the bytes spanlens parses, hashes and
slices are the file's bytes without a leading BOM and with each lone CR turned into LF
(one byte for one byte: offsets and columns stay put). CRLF stays as it is. Whoever checks
a span against "the file now" (the engine, before it sends code to a model) reads it through
:func:`read_source_text` or :func:`buffer_source_text`, so its hash agrees with the index.
"""

from __future__ import annotations

import re
from pathlib import Path

_BOM = b"\xef\xbb\xbf"
_LONE_CR = re.compile(rb"\r(?!\n)")
_LONE_CR_TEXT = re.compile(r"\r(?!\n)")


def normalise_source(data: bytes) -> bytes:
    """The bytes spanlens parses and hashes: no leading BOM, lone CRs as LF."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if b"\r" in data:
        data = _LONE_CR.sub(b"\n", data)
    return data


def decode_source(data: bytes) -> str | None:
    """``data`` normalised and decoded as UTF-8, or None when it is not UTF-8."""
    try:
        return normalise_source(data).decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_source_text(path: Path) -> str | None:
    """A file's current text on disk as the indexer saw it; None when unreadable or not UTF-8.

    Bytes are decoded as they are (no newline translation: CRLF stays CRLF)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return decode_source(data)


def buffer_source_text(text: str) -> str:
    """An editor buffer's text as the indexer sees it (no BOM, lone CRs as LF)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = _LONE_CR_TEXT.sub("\n", text)
    return text
