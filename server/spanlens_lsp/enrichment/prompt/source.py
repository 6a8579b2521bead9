"""A span as the model is shown it and as its reply is judged: the one source of both.

:class:`SpanSource` is a span with its lines, its enclosing context (:func:`enclosing_context`)
and the names its file and workspace hold; :class:`SpanContext` is what a reply for it is
checked against, built from the same facts (:func:`context_for`), so the prompt and the judge
never disagree about what the span is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from spanlens_lsp.enrichment.prompt.names import (
    NO_NAMES,
    Names,
    fact_identifiers,
    identifiers,
    span_names,
)
from spanlens_lsp.indexing.spans import direct_members
from spanlens_lsp.store.rows import SpanRow


@dataclass(frozen=True, slots=True)
class SpanContext:
    """What a reply is checked against: the span exactly as the prompt showed it."""

    span_id: int
    #: First and last line of the span, 1-based and inclusive (the prompt's numbering).
    first_line: int
    last_line: int
    #: Parameter names from the facts; None when the facts list none (no inputs check).
    params: tuple[str, ...] | None
    #: The span's source text, to recognise a summary that only echoes it.
    code: str
    #: The span's name (``Class.method`` for a method), for the summary's subject.
    name: str = ""
    #: Identifiers of the span's code, facts and enclosing context.
    known: frozenset[str] = frozenset()
    #: Identifiers of the span's file and span names of the workspace.
    names: Names = NO_NAMES
    #: The declared return type from the facts (None: not declared).
    returns: str | None = None
    #: The facts' side-effect categories; None when the facts have no such notion.
    effects: tuple[str, ...] | None = None
    #: The facts' calls; None when the facts have no such notion.
    calls: tuple[str, ...] | None = None
    #: The class a method belongs to (its last name part); None for other spans.
    owner_class: str | None = None
    #: The exceptions the facts say the span raises itself; None when the facts have no such
    #: notion (see :func:`.certain.raises_certain`, which reads the code for those).
    raises: tuple[str, ...] | None = None
    #: Whether the span is a class, struct or the like (its facts list members): calling it
    #: returns nothing but an instance.
    container: bool = False
    #: The span's language as indexed (``python``, ``go``, ``typescript``); "" when not
    #: known, and then told from the code where a check needs it.
    language: str = ""
    #: The class (or struct) the span is, or is a method of, when every method it has is
    #: written in this workspace: no base class, ``extends`` or embedded field to bring one
    #: from elsewhere (see :func:`closed_class`); None otherwise.
    closed_class: str | None = None


@dataclass(frozen=True, slots=True)
class SpanSource:
    """A span with the source lines the prompt shows and its enclosing context."""

    span: SpanRow
    #: The span's full lines, ``span.start_line`` .. ``span.end_line``.
    lines: list[str]
    #: Enclosing class (header, members) or module (imports) context; may be empty.
    context: str = ""
    #: Names of the span's file and the workspace a reply may mention (see grounding).
    names: Names = NO_NAMES

    @property
    def first_line(self) -> int:
        """1-based number of the span's first line."""
        return self.span.start_line + 1

    @property
    def last_line(self) -> int:
        """1-based number of the span's last line."""
        return self.span.end_line + 1

    @property
    def code(self) -> str:
        """The span's text."""
        return "\n".join(self.lines)

    def validation_context(self) -> SpanContext:
        """What a reply for this span is checked against (file line numbers)."""
        return context_for(
            self.span.id,
            self.first_line,
            self.last_line,
            self.span.facts,
            self.code,
            name=self.span.name,
            context=self.context,
            names=self.names,
            language=self.span.language,
            path=self.span.path,
        )

    def stored_context(self) -> SpanContext:
        """What a stored enrichment of this span is checked against (span-relative lines)."""
        return context_for(
            self.span.id,
            1,
            len(self.lines),
            self.span.facts,
            self.code,
            name=self.span.name,
            context=self.context,
            names=self.names,
            path=self.span.path,
        )


def enclosing_header(kind: str, name: str) -> str:
    """How a prompt's context names the container a span sits in (a method's class): the
    prompt writes it, validation reads it to know the span is a method of that class."""
    return f"Enclosing {kind} `{name}` (context, not the subject)"


def context_for(
    span_id: int,
    first_line: int,
    last_line: int,
    facts: dict[str, Any],
    code: str,
    *,
    name: str = "",
    context: str = "",
    names: Names | None = None,
    language: str = "",
    path: str = "",
) -> SpanContext:
    """Build a :class:`SpanContext` from a span's 1-based line range, facts, name, enclosing
    ``context`` text and the :class:`~.names.Names` of its file and workspace; the file's
    ``path`` (which the prompt shows) and its name are known names too."""
    params = facts.get("params")
    param_names: tuple[str, ...] | None = None
    if isinstance(params, list):
        param_names = tuple(
            # ``*args``, ``&self`` (Rust), ``...rest`` (TypeScript): inputs name them bare.
            str(p.get("name", "")).lstrip("*&.")
            for p in params
            if isinstance(p, dict)
        )
    elif isinstance(facts.get("members"), list):
        param_names = constructor_params(code, facts)
    owner, _, _ = name.rpartition(".")
    is_method = bool(owner) and enclosing_header("class", owner) in context
    effects, calls, raises = facts.get("side_effects"), facts.get("calls"), facts.get("raises")
    returns = facts.get("returns")
    known = (
        identifiers(code)
        | fact_identifiers(facts)
        | identifiers(context)
        | span_names([name] if name else [])
        | ({path, PurePosixPath(path).name} if path else set())
    )
    return SpanContext(
        span_id,
        first_line,
        last_line,
        param_names,
        code,
        name,
        frozenset(known),
        names or NO_NAMES,
        returns=returns if isinstance(returns, str) else None,
        effects=tuple(str(e) for e in effects) if isinstance(effects, list) else None,
        calls=tuple(str(c) for c in calls) if isinstance(calls, list) else None,
        owner_class=owner.rpartition(".")[2] if is_method else None,
        raises=tuple(str(r) for r in raises) if isinstance(raises, list) else None,
        container=isinstance(facts.get("members"), list),
        language=language,
        closed_class=closed_class(name, facts, code, context, is_method),
    )


#: A class header that brings no method from elsewhere: Python ``class X:`` or ``class X():``,
#: TypeScript/JavaScript ``class X`` with no ``extends`` (``implements`` adds none).
_CLOSED_HEADER = re.compile(
    r"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+[\w$]+"
    r"(?:\s*\(\s*\)|\s*<[^>]*>)?(?:\s+implements\b[^{]*)?\s*[:{]?\s*$"
)
#: A Go struct's embedded field (a type with no field name), whose methods are promoted.
_GO_EMBEDDED = re.compile(r"^\s*\*?[\w.]+\s*(?:`[^`]*`)?\s*(?://.*)?$")


def closed_class(
    name: str, facts: dict[str, Any], code: str, context: str, is_method: bool
) -> str | None:
    """The name of the class or struct a span is (``facts`` with ``members``) or is a method
    of (``is_method``; its header read from the enclosing ``context``), when all its methods
    are in this workspace: a Python class with no base (nor keywords, such as a metaclass),
    a TypeScript/JavaScript class with no ``extends``, a Go struct with no embedded field.
    None otherwise (another kind, or a header or body that brings methods from elsewhere)."""
    owner, _, own = name.rpartition(".")
    if is_method:
        klass = owner.rpartition(".")[2]
        found = re.search(re.escape(enclosing_header("class", owner)) + r": (.*)", context)
        return klass if found and _CLOSED_HEADER.match(found.group(1)) else None
    if not isinstance(facts.get("members"), list):
        return None
    header = code.split("\n", 1)[0]
    go = re.match(r"^\s*type\s+(\w+)\s+struct\s*\{", header)
    if go:
        body = code.split("\n")[1:-1]
        return own if not any(_GO_EMBEDDED.match(line) for line in body if line.strip()) else None
    if facts.get("decorators"):
        return None  # ``@dataclass`` and the like add methods
    signature = str(facts.get("signature") or header)
    return own if _CLOSED_HEADER.match(signature) else None


#: Where a class's constructor's parameter list starts (Python, TypeScript/JavaScript).
_CONSTRUCTOR = re.compile(r"\bdef\s+__init__\s*\(|^\s*constructor\s*\(", re.MULTILINE)
#: What may precede a TypeScript parameter's name (``private readonly items``).
_TS_MODIFIERS = re.compile(r"^(?:(?:public|private|protected|readonly|override)\s+)+")


def constructor_params(code: str, facts: dict[str, Any]) -> tuple[str, ...] | None:
    """The parameters a class (``facts`` with ``members``) is constructed with, which are its
    ``inputs`` (not its methods' parameters, which Qwen2.5-Coder-1.5B listed for both `Counter`
    and `Inventory`): the constructor's own (``self`` aside), ``()`` for a class with no
    constructor and nothing to inherit one from, or None when that is not certain (a base
    class or a decorator such as ``@dataclass`` may supply one; other languages)."""
    members = facts.get("members") or []
    found = _CONSTRUCTOR.search(code)
    if found and ("__init__" in members or "constructor" in members):
        return _param_names(code, found.end())
    if "__init__" in members or "constructor" in members or "__new__" in members:
        return None
    signature = str(facts.get("signature", ""))
    if signature.startswith("class ") and "bases" in facts:  # Python
        plain = not facts.get("bases") and not facts.get("decorators")
        return () if plain and re.match(r"class\s+\w+\s*(?:\(\s*\))?\s*:", signature) else None
    if re.match(r"(?:export\s+)?(?:default\s+)?class\s+\w+\s*\{?$", signature.strip()):
        return ()  # TypeScript/JavaScript, no `extends` and no decorator: `new Counter()`
    return None


def _param_names(code: str, start: int) -> tuple[str, ...] | None:
    """The names in the parameter list that starts at ``code[start]`` (after its "("), split
    at top-level commas; None when the list does not close."""
    depth, part, parts = 0, "", []
    for char in code[start:]:
        # ``<``/``>`` nest only as generics (``Map<string, number>``), not in ``=>``/``->``.
        generic_open = char == "<" and part[-1:].isalnum()
        generic_close = char == ">" and part[-1:] not in ("=", "-") and depth > 0
        if char in "([{" or generic_open:
            depth += 1
        elif char in ")]}" or generic_close:
            if depth == 0 and char == ")":
                parts.append(part)
                break
            depth -= 1
        if char == "," and depth == 0:
            parts.append(part)
            part = ""
            continue
        part += char
    else:
        return None
    names = []
    for raw in parts:
        text = _TS_MODIFIERS.sub("", raw.strip())
        name = re.match(r"[*.]*(\w+)", text)
        if name and name.group(1) not in ("self", "cls", "this"):
            names.append(name.group(1))
    return tuple(names)


def enclosing_context(span: SpanRow, file_spans: list[SpanRow], file_lines: list[str]) -> str:
    """What a span's prompt shows before it: the file's imports (the same for every span of
    the file, so consecutive prompts share them as a prefix), then the class a span sits in
    (its header, first doc paragraph and members), marked as context, not the subject."""
    imports = [
        line.strip()
        for line in file_lines
        if line.startswith(("import ", "from ", "use ", "#include", "using "))
        or (line.startswith(("const ", "import{")) and "require(" in line)
    ][:15]
    parts = ["Module imports:\n" + "\n".join(imports)] if imports else []
    containers = [
        other
        for other in file_spans
        if other.id != span.id
        and "members" in other.facts
        and other.start_line <= span.start_line
        and other.end_line >= span.end_line
    ]
    if containers:
        owner = max(containers, key=lambda s: s.start_line)
        members = ", ".join(str(m) for m in owner.facts.get("members", [])[:40])
        doc = str(owner.facts.get("docstring") or owner.facts.get("doc") or "").strip()
        lines = [f"{enclosing_header(owner.kind, owner.name)}: {owner.facts.get('signature', '')}"]
        if doc:
            lines.append("doc: " + doc.split("\n\n")[0][:300])
        if members:
            lines.append("members: " + members)
        parts.append("\n".join(lines))
    methods = methods_outside(span, file_spans)
    if methods:
        parts.append(f"Methods of `{span.name}` declared after it: " + ", ".join(methods))
    return "\n\n".join(parts)


def methods_outside(span: SpanRow, file_spans: list[SpanRow]) -> list[str]:
    """The methods of a struct (or a class) declared outside its span in the same file (a Go
    struct's, whose code shows only its fields), by name, at most 40; [] for any other span.
    Shown only its fields, Qwen2.5-Coder-1.5B gave Go's `Cache` the methods `Set`, `Add` and
    "remove" in its summary and usage examples (its methods are `Get` and `Put`)."""
    if "members" not in span.facts:
        return []
    found: list[str] = []
    for own, other in direct_members(span.name, file_spans):
        if not span.start_line <= other.start_line <= span.end_line and own not in found:
            found.append(own)
    return found[:40]
