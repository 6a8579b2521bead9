"""Placeholder text: what stands in for content instead of being it (``TODO``, ``N/A``, lorem
ipsum, punctuation only, blank, control or bidi characters). Such text is invalid output in every
field, so the cascade retries and nothing of it is stored; this module is the rejecting side."""

from __future__ import annotations

import re
from typing import Any

from spanlens_lsp.enrichment.prompt.schema import LIST_FIELDS
from spanlens_lsp.presentation.text import has_unsafe_chars

#: Whole texts that stand in for content instead of being it (compared lower-cased, without
#: surrounding spaces and closing punctuation).
_PLACEHOLDERS = frozenset(
    {
        "todo",
        "tbd",
        "tba",
        "fixme",
        "xxx",
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "undefined",
        "placeholder",
        "unknown",
        "summary",
        "description",
        "no summary",
        "no description",
        "not available",
        "to be determined",
        "insert summary here",
        "your summary here",
        "summary here",
        "description here",
    }
)
_PLACEHOLDER_PREFIX = re.compile(r"^(?:TODO|TBD|FIXME|XXX)\b\s*(?:[:\-–—(]|$)")
#: Characters that show as nothing (zero-width spaces and joiners, BOM, soft hyphen).
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")


#: The reason :func:`placeholder_reason` gives for control or bidi characters: text that may
#: be an attack, unlike the other reasons (text that merely says nothing).
UNSAFE_REASON = "holds control or bidi characters"


def placeholder_reason(text: str) -> str | None:
    """Why ``text`` is no content (a placeholder, punctuation only, control characters), or
    None when it is real text."""
    if has_unsafe_chars(text):
        # Never part of a description, often part of an attack (see presentation.text).
        return UNSAFE_REASON
    visible = _INVISIBLE.sub("", text).strip()
    if not visible:
        return "is blank"
    if not any(ch.isalnum() for ch in visible):
        return "is only punctuation"
    if visible.lower().rstrip(".!:;…").strip() in _PLACEHOLDERS:
        return "is a placeholder"
    if _PLACEHOLDER_PREFIX.match(visible) or "lorem ipsum" in visible.lower():
        return "is a placeholder"
    return None


def placeholder_errors(data: dict[str, Any]) -> list[str]:
    """Errors for every text of ``data`` that stands in for content instead of being it."""
    errors = []
    texts: list[tuple[str, Any]] = [("summary", data.get("summary"))]
    texts += [
        (f"{key}[{index}]", item)
        for key in LIST_FIELDS
        for index, item in enumerate(data.get(key) or [])
    ]
    if data.get("usage_snippet") is not None:
        texts.append(("usage_snippet", data["usage_snippet"]))
    for where, text in texts:
        reason = placeholder_reason(str(text))
        if reason:
            errors.append(f"{where} {reason}: {str(text)[:40]!a}")
    return errors
