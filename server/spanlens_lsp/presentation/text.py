"""The one sanitiser for text that came from a model, a server or a repository file.

Everything such text passes through on its way out of spanlens (hover Markdown, code lens
titles, diagnostic messages, status payloads, the CLI's terminal output, generated docs)
goes through :func:`clean_text` first: terminal escape sequences, control characters and bidi
controls are dropped, so
that no NUL, ESC sequence, carriage return or right-to-left override reaches an editor or a
terminal. It imports nothing from spanlens, so every layer may use it.
"""

from __future__ import annotations

import re

#: Characters never shown: C0 controls except tab and line feed (NUL, ESC, CR...), DEL, C1
#: controls, the bidi embeddings, overrides, isolates and marks (U+202A-U+202E,
#: U+2066-U+2069, U+200E, U+200F, U+061C), the BOM and the invisible tag characters.
UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
    "\U000e0000-\U000e007f]"
)
_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029\x0b\x0c\x85]")
#: Terminal escape sequences, dropped whole (not only their ESC): CSI (colours, cursor
#: moves, screen clears), OSC (titles, hyperlinks; ended by BEL or ST) and two-byte ones.
_ESCAPE_SEQUENCE = re.compile(
    "\x1b\\[[0-?]*[ -/]*[@-~]|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)?|\x1b[@-Z\\\\-_]"
)


def clean_text(text: object, *, one_line: bool = False) -> str:
    """``text`` (any value, made a string) without control or bidi characters.

    Line breaks of every kind become ``\\n`` (a lone carriage return would let text overwrite
    a terminal line); with ``one_line`` all whitespace runs, line breaks and tabs included,
    become one space and the ends are stripped.
    """
    result = _ESCAPE_SEQUENCE.sub("", str(text))
    result = UNSAFE_CHARS.sub("", _LINE_BREAKS.sub("\n", result))
    if one_line:
        return " ".join(result.split())
    return result


def has_unsafe_chars(text: str) -> bool:
    """Whether ``text`` holds a character :func:`clean_text` would drop (tab, line feed and
    carriage return are fine)."""
    return UNSAFE_CHARS.search(text.replace("\r", "")) is not None
