"""Excerpts: the lines of a span too long for its prompt that say the most about it."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(
    r"^(if|elif|else|for|while|try|except|catch|finally|with|match|case|switch|select|"
    r"loop|def|async def|class|fn|func|function|impl|return|raise|throw|yield|await)\b"
)
_EXITS = re.compile(r"^(return|raise|throw|yield)\b")
_OPENS_BODY = re.compile(r"(:|\{|=>)\s*(#.*|//.*)?$")


def excerpt_lines(
    numbered: list[tuple[int, str]], budget: int, facts: dict[str, Any]
) -> list[tuple[int, str | None]]:
    """Keep the header, docstring and the highest-scoring lines that fit ``budget`` tokens.

    Returns (line number, text) in source order, with (omitted count, None) marking each gap.
    Scoring prefers the skeleton (low indentation, control flow), exits (return, raise) and
    lines calling what the facts list.
    """
    header = _header_length([line for _, line in numbered])
    callees = {str(c).rsplit(".", 1)[-1] for c in facts.get("calls") or []}
    scored = []
    for index, (_, line) in enumerate(numbered):
        scored.append((_score(index, line, header, len(numbered), callees), index))
    keep: set[int] = set()
    used = 0
    room = int(budget * 0.85)  # the rest pays for gap markers
    for score, index in sorted(scored, key=lambda item: (-item[0], item[1])):
        if score < 0:
            break
        cost = estimate_tokens(numbered_line(*numbered[index])) + 1
        if used + cost > room and index >= header:
            continue
        keep.add(index)
        used += cost
    result: list[tuple[int, str | None]] = []
    gap = 0
    for index, (number, line) in enumerate(numbered):
        if index in keep:
            if gap:
                result.append((gap, None))
                gap = 0
            result.append((number, line))
        else:
            gap += 1
    if gap:
        result.append((gap, None))
    return result


def _header_length(lines: list[str]) -> int:
    """Lines of the signature and a leading docstring (kept in every excerpt)."""
    end = 1
    for index, line in enumerate(lines[:8]):
        if _OPENS_BODY.search(line.rstrip()):
            end = index + 1
            break
    rest = lines[end:]
    if rest and rest[0].strip()[:3] in ('"""', "'''"):
        quote = rest[0].strip()[:3]
        for offset, line in enumerate(rest[:20]):
            closes = line.count(quote) >= (2 if offset == 0 else 1)
            if closes:
                return end + offset + 1
        return end + min(len(rest), 20)
    return end


def _score(index: int, line: str, header: int, total: int, callees: set[str]) -> int:
    if index < header:
        return 10_000
    stripped = line.strip()
    if not stripped:
        return -1
    score = 0
    if index == total - 1:
        score += 60
    if _EXITS.match(stripped):
        score += 50
    elif _CONTROL.match(stripped):
        score += 30
    if any(name and f"{name}(" in stripped for name in callees):
        score += 20
    indent = len(line) - len(line.lstrip())
    score += max(0, 24 - indent * 2)
    return score


#: Characters a prompt token covers on average. Calibrated against llama.cpp's tokenizer on
#: source code (SmolLM2, click's utils.py: 4 characters a token was 1.20x too low).
CHARS_PER_TOKEN = 3.3


def estimate_tokens(text: str) -> int:
    """A model-agnostic token estimate (:data:`CHARS_PER_TOKEN` characters a token)."""
    return int(len(text) / CHARS_PER_TOKEN + 0.999)


def numbered_line(number: int, line: str) -> str:
    """A code line as prompts show it: its 1-based number, a bar, the text."""
    return f"{number:>5} | {line}"
