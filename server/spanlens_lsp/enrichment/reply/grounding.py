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

The names a reply may use come from :mod:`spanlens_lsp.enrichment.prompt.names`.
"""

from __future__ import annotations

import builtins
import collections.abc
import inspect
import keyword
import re
import sys
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spanlens_lsp.enrichment.prompt.names import Names, span_names

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
    if _BARE_TYPE.match(meaning):
        # "path: string", "key: string" (runs 13 to 15): the signature says that much; the
        # prompt asks what the caller passes.
        return "gives only a type"
    return None


#: A meaning that is a basic type and nothing else (``string``, ``[]string``, ``Dict[str, int]``,
#: ``str | None``), as a small model writes for a typed parameter.
_BARE_TYPE = re.compile(
    r"^(?:an?\s+)?[*&\[\]]*(?:str|string|int|integer|float|number|bool|boolean|bytes|byte|rune"
    r"|list|dict|tuple|set|map|array|object|any|unknown|none|null|void|error)"
    r"(?:\s*(?:\[[^\]]*\]|<[^>]*>|\|\s*\w+))*(?:\[\])?$",
    re.IGNORECASE,
)


#: A name a usage snippet binds to a new instance of a class ``{cls}``: ``c := Cache{``,
#: ``c := &Cache{``, ``c := NewCache(``, ``const c = new Counter(``, ``inv = Inventory(``,
#: ``let c: Counter = new Counter()``.
_INSTANCE = (
    r"(?<![\w$.])([A-Za-z_$][\w$]*)\s*(?::\s*[^=\n]{{1,40}})?(?::=|=)\s*(?:new\s+)?[&*]?"
    r"(?:[\w$]+\.)?(?:New)?{cls}\s*[({{]"
)


def invented_method(
    snippet: str, cls: str | None, known: frozenset[str] | set[str], names: Names
) -> str | None:
    """A method a usage snippet calls on an instance of class ``cls`` that the class does not
    have (a name neither ``known`` to the span nor in its file or workspace ``names``), or
    None. Pass a class only when its methods are all in the workspace
    (:attr:`~spanlens_lsp.enrichment.prompt.source.SpanContext.closed_class`). Seen:
    Qwen2.5-Coder-1.5B wrote ``c.Set("key", "value")`` for a Go ``Cache`` whose method is
    ``Put``, in two runs."""
    if not cls or not snippet:
        return None
    for var in set(re.findall(_INSTANCE.format(cls=re.escape(cls)), snippet)):
        call = rf"(?<![\w$.]){re.escape(var)}\s*\.\s*([A-Za-z_$][\w$]*)\s*\("
        for method in re.findall(call, snippet):
            if method not in known and not names.knows(method):
                return method
    return None
