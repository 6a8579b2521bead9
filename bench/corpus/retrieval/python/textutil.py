"""Small text helpers used by the report generator."""

import re
import unicodedata

_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def slugify(text, max_len=60):
    """Turn a title into a lowercase URL fragment with hyphens between words."""
    normal = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = _WORD.findall(normal.lower())
    return "-".join(words)[:max_len].rstrip("-")


def wrap_paragraph(text, width=72):
    """Break a paragraph into lines no longer than a given width, splitting only at spaces."""
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def strip_accents(text):
    """Remove diacritical marks so that café becomes cafe."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def camel_to_snake(name):
    """Convert an identifier written in camelCase to snake_case."""
    return _CAMEL.sub("_", name).lower()


def truncate(text, limit, ellipsis="…"):
    """Shorten a string to a maximum length, ending it with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))] + ellipsis


def count_words(text):
    """Count how many times each word occurs, ignoring case."""
    counts = {}
    for word in _WORD.findall(text.lower()):
        counts[word] = counts.get(word, 0) + 1
    return counts


def levenshtein(a, b):
    """Compute the edit distance between two strings: insertions, deletions and substitutions."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def dedent_block(text):
    """Remove the indentation that every non-blank line of a block shares."""
    lines = text.splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    common = min(indents, default=0)
    return "\n".join(line[common:] for line in lines)


def is_palindrome(text):
    """Tell whether a phrase reads the same backwards, ignoring punctuation and case."""
    letters = [c.lower() for c in text if c.isalnum()]
    return letters == letters[::-1]


def mask_secret(value, visible=4):
    """Hide all but the last few characters of a token or password with asterisks."""
    if len(value) <= visible:
        return "*" * len(value)
    return "*" * (len(value) - visible) + value[-visible:]


def _initials(name):
    return "".join(part[0].upper() for part in name.split() if part)
