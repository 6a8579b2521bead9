"""Grounding: every name a reply presents as code must exist, and lists say each thing once.

A small model writes fluent prose about names that exist nowhere ("the `__cabel_safecall`
function"), describes a neighbouring span instead of the one asked, or repeats one sentence
until its list is full. The checks here catch that without a model of English:

- **Names.** A name the reply puts in backticks, writes as a call (``x()``), or names as "the
  ``x`` function / method / class" must occur in the span's code, its facts, its enclosing
  context, its file, or the workspace index (the span names the store holds), or be a Python
  builtin, a builtin constant's type (``NoneType``), a ``typing`` or ``collections.abc`` name, or
  a standard-library module. Plain English words are never checked: outside
  backticks only names that look like code (an underscore, a dot, a digit or an inner capital)
  are. A dotted name passes when its last part is known, or its first part is a standard
  module; one that starts with a builtin (``str.join``) must be an attribute of it.
- **Subject.** A summary whose subject (its first such name) is another span's name, not this
  span's, its class's or its file's, is about the wrong code.
- **Lists.** Exact and near-duplicate entries (same words after folding case, spaces and
  punctuation, or a token-set overlap of :data:`NEAR_DUPLICATE` or more) are dropped as a
  safe repair; each entry is one or two sentences on one line.
- **Inputs.** Each entry reads ``name: meaning`` with a meaning that says something.

:class:`Names` is built once per file by the engine (file text identifiers) and shares one
frozenset of workspace span names, so a check is a few set lookups, never a query.
"""

from __future__ import annotations

import builtins
import collections.abc
import inspect
import keyword
import re
import sys
import time
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spanlens.store.db import Store

_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
#: A dotted name, optionally a call: ``a.b.c`` or ``f()`` / ``f(x, y)``.
_DOTTED = r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*"
_BACKTICKED = re.compile(r"`([^`\n]{1,120})`")
_CODE_IN_TICKS = re.compile(rf"^\s*(?:@)?({_DOTTED})\s*(?:\([^()]*\))?\s*$")
_CALL = re.compile(rf"(?<![\w.`$])({_DOTTED})\((?!s\)|es\))[^()\n]{{0,60}}\)")
_ROLE = re.compile(
    rf"\b(?:[Tt]he|[Aa]n?|[Tt]his|[Ii]ts)\s+`?({_DOTTED})`?(?:\(\))?\s+"
    r"(?:function|method|class|decorator|constructor|property|attribute|module)\b"
)
#: Token-set overlap (Jaccard) at which two list entries say the same thing.
NEAR_DUPLICATE = 0.8
#: Near-duplicates are only judged between entries of at least this many words (shorter ones
#: must match exactly after folding: "str: the path" and "str: the paths" differ).
_NEAR_MIN_WORDS = 4
#: Sentences a list entry may hold.
MAX_ITEM_SENTENCES = 2
_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)(?=[A-Z`\"'(]|$)")
_INPUT = re.compile(
    r"^\s*[`*'\"]*(?P<name>[*&]{0,2}[A-Za-z_$][\w$]*)[`'\"]*\s*(?:\([^()]{0,60}\))?\s*:\s*"
    r"(?P<meaning>.*)$",
    re.DOTALL,
)

#: Type names a reply may use for what the code returns or takes without writing them in the
#: code: the types of builtin constants (``NoneType``) and the public names of ``typing`` and
#: ``collections.abc`` (``Optional``, ``Iterator``).
_TYPE_NAMES = (
    frozenset({"NoneType", "NotImplementedType", "EllipsisType"})
    | frozenset(n for n in dir(typing) if not n.startswith("_"))
    | frozenset(n for n in dir(collections.abc) if not n.startswith("_"))
)
_BUILTINS = (
    frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"self", "cls", "this"} | _TYPE_NAMES
)
_STDLIB = frozenset(sys.stdlib_module_names)
_BUILTIN_OBJECTS = frozenset(dir(builtins))


@dataclass(frozen=True, slots=True)
class Names:
    """Names a span's reply may use besides those in the span itself: identifiers of its file
    and enclosing context, and span names of the workspace (shared across files)."""

    file: frozenset[str] = frozenset()
    workspace: frozenset[str] = frozenset()
    #: Names of the spans of the span's file (for the subject check).
    file_spans: frozenset[str] = frozenset()

    def knows(self, name: str) -> bool:
        """Whether ``name`` occurs in the file or names a workspace span."""
        return name in self.file or name in self.workspace

    def is_span(self, name: str) -> bool:
        """Whether ``name`` is the (last part of the) name of a span in the file or workspace."""
        return name in self.file_spans or name in self.workspace


class WorkspaceNames:
    """The workspace's span names, read from the store at most every ``refresh_after`` seconds
    (a name indexed since then is still found in its own file's text)."""

    def __init__(self, refresh_after: float = 30.0) -> None:
        self.refresh_after = refresh_after
        self._names: frozenset[str] = frozenset()
        self._read_at: float | None = None

    def get(self, store: Store) -> frozenset[str]:
        """The span names (and their last parts) of every indexed file."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.refresh_after:
            self._names = span_names(store.span_names())
            self._read_at = now
        return self._names

    def for_file(self, store: Store, text: str, file_spans: Iterable[Any]) -> Names:
        """The :class:`Names` of one file (its text and spans) in this workspace."""
        return names_for_file(text, (span.name for span in file_spans), self.get(store))


#: No names beyond the span's own (the default of contexts built without a file).
NO_NAMES = Names()


def identifiers(text: str) -> frozenset[str]:
    """Every identifier-shaped word of ``text``."""
    return frozenset(_IDENT.findall(text))


def span_names(names: Iterable[str]) -> frozenset[str]:
    """Span names and their last parts (``Class.method`` gives both and ``method``)."""
    found: set[str] = set()
    for name in names:
        found.add(name)
        found.update(part for part in name.split(".") if part)
    return frozenset(found)


def names_for_file(text: str, file_span_names: Iterable[str], workspace: frozenset[str]) -> Names:
    """The :class:`Names` of one file's spans."""
    return Names(identifiers(text), workspace, span_names(file_span_names))


def fact_identifiers(facts: Any) -> set[str]:
    """Identifiers in every string of a span's facts (parameters, calls, raises, decorators)."""
    found: set[str] = set()
    stack = [facts]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            found.update(_IDENT.findall(node))
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return found


# ----------------------------------------------------------------------------- names


def code_names(text: str) -> list[str]:
    """Names ``text`` presents as code, in order: backticked identifiers, calls and "the X
    function / method / class"; plain words outside backticks only when they look like code."""
    names: list[str] = []
    for _, name in _positioned_names(text):
        if name not in names:
            names.append(name)
    return names


def _positioned_names(text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for match in _BACKTICKED.finditer(text):
        # `a, b, c` lists several names in one pair of backticks.
        for part in match.group(1).split(","):
            inner = _CODE_IN_TICKS.match(part)
            if inner:
                found.append((match.start(), inner.group(1)))
    plain = _BACKTICKED.sub(lambda m: " " * len(m.group(0)), text)
    for match in _CALL.finditer(plain):
        if looks_like_code(match.group(1)):
            found.append((match.start(), match.group(1)))
    for match in _ROLE.finditer(plain):
        if looks_like_code(match.group(1)):
            found.append((match.start(1), match.group(1)))
    found.sort()
    return found


def looks_like_code(word: str) -> bool:
    """Whether a word outside backticks reads as an identifier rather than English."""
    bare = word.strip("$")
    if "_" in bare or "." in bare or any(ch.isdigit() for ch in bare):
        return True
    return any(ch.isupper() for ch in bare[1:]) and any(ch.islower() for ch in bare)


def unknown_names(
    texts: Iterable[str], known: frozenset[str] | set[str], names: Names
) -> list[str]:
    """Names the ``texts`` present as code that exist nowhere the span's reply may draw on."""
    missing: list[str] = []
    for text in texts:
        for name in code_names(text):
            if not _is_known(name, known, names) and name not in missing:
                missing.append(name)
    return missing


def _is_known(name: str, known: frozenset[str] | set[str], names: Names) -> bool:
    parts = [p for p in name.split(".") if p]
    if not parts:
        return True

    def one(part: str) -> bool:
        return part in known or part in _BUILTINS or part in _STDLIB or names.knows(part)

    if len(parts) == 1:
        return one(parts[0])
    if parts[0] in _BUILTIN_OBJECTS:
        # A builtin's attribute can be looked up: `str.join` exists, `str.print` does not.
        return _builtin_has(parts) or parts[-1] in known
    return one(parts[-1]) or parts[0] in _STDLIB or name in known


def _builtin_has(parts: list[str]) -> bool:
    node: Any = builtins
    for part in parts:
        try:
            node = inspect.getattr_static(node, part)
        except AttributeError:
            return False
    return True


#: Words that may precede a summary's subject ("The `x` function …", "This `X` …").
_LEAD = re.compile(r"^[\s`*\"']*(?:(?:the|this|a|an)\s+)?[`*\"']*$", re.IGNORECASE)


def summary_subject(summary: str) -> str | None:
    """The name a summary opens with as its subject ("`x` does …", "The `x` function …",
    "x() returns …"), or None when it opens with prose."""
    text = summary.strip()
    found = _positioned_names(text)
    if not found:
        return None
    position, name = found[0]
    return name if _LEAD.match(text[:position]) else None


def foreign_subject(summary: str, own: Iterable[str], names: Names) -> str | None:
    """The other span a summary is about, or None when it is about this one (or nothing)."""
    subject = summary_subject(summary)
    if subject is None:
        return None
    mine = span_names(own)
    parts = [p for p in subject.split(".") if p]
    if any(part in mine for part in parts):
        return None
    last = parts[-1] if parts else subject
    return subject if names.is_span(last) and last not in _BUILTINS else None


# ----------------------------------------------------------------------------- lists


def fold(text: str) -> str:
    """``text`` lower-cased, punctuation made spaces, runs of spaces made one."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def _near(a: set[str], b: set[str]) -> bool:
    if min(len(a), len(b)) < _NEAR_MIN_WORDS:
        return False
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE


def dedupe(items: list[Any]) -> tuple[list[Any], int]:
    """``items`` without exact and near-duplicate strings (the first of each kept), and how
    many were dropped. Non-strings are kept for the schema check to report."""
    kept: list[Any] = []
    seen: list[tuple[str, set[str]]] = []
    dropped = 0
    for item in items:
        if not isinstance(item, str):
            kept.append(item)
            continue
        folded = fold(item)
        tokens = set(folded.split())
        if any(folded == f or _near(tokens, t) for f, t in seen):
            dropped += 1
            continue
        seen.append((folded, tokens))
        kept.append(item)
    return kept, dropped


def paragraph_reason(item: str) -> str | None:
    """Why a list entry is a paragraph rather than a sentence-length string, or None."""
    if "\n" in item.strip():
        return "spans several lines"
    sentences = len([s for s in _SENTENCE_END.split(item.strip()) if s.strip()])
    if sentences > MAX_ITEM_SENTENCES:
        return f"has {sentences} sentences (at most {MAX_ITEM_SENTENCES})"
    return None


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class InputEntry:
    """An ``inputs`` entry split into its parameter name and meaning (None: not that form)."""

    name: str | None
    meaning: str = field(default="")


#: Receivers a reply may leave out of ``inputs`` (extractors list them as parameters).
RECEIVERS = frozenset({"self", "cls", "this"})
_PARAM_NAME = re.compile(r"[A-Za-z_$][\w$]*")


def needs_input(param: str) -> bool:
    """Whether a parameter must have an ``inputs`` entry: a named one, not a receiver, not
    ``_`` and not a destructuring pattern (``{a, b}``) that no ``name: meaning`` can name."""
    return param not in RECEIVERS and param != "_" and _PARAM_NAME.fullmatch(param) is not None


def parse_input(item: str) -> InputEntry:
    """``name: meaning`` split; ``InputEntry(None)`` when the entry has no colon after a name."""
    match = _INPUT.match(item)
    if not match:
        return InputEntry(None)
    return InputEntry(match.group("name").lstrip("*&"), match.group("meaning").strip())


def meaning_reason(entry: InputEntry) -> str | None:
    """Why an input's meaning says nothing, or None."""
    meaning = entry.meaning.strip(" .`'\"")
    if not any(ch.isalnum() for ch in meaning):
        return "has no meaning"
    if entry.name is not None and fold(meaning) == fold(entry.name):
        return "only repeats the name"
    return None
