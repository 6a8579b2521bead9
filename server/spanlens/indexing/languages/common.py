"""Pieces every tree-sitter extractor shares: ranges, skeletons, doc comments, the rules walk."""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tree_sitter import Language, Node, Parser

from spanlens.indexing.hashing import content_hash
from spanlens.indexing.spans import (
    CONTAINER_KINDS,
    Extraction,
    ParsedSource,
    Span,
    assign_ordinals,
)

#: Most unique calls kept per span (every language); the rest add nothing a reader would use.
MAX_CALLS = 64


def text_of(source: bytes, node: Node) -> str:
    """The source text of ``node``."""
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def reparse(parser: Parser, source: bytes, previous: ParsedSource | None) -> ParsedSource:
    """Parse ``source``; given an earlier parse of the same file, re-parse only what changed.

    The edit is what lies between the longest common prefix and suffix of the two versions;
    tree-sitter reuses every subtree outside it, which turns a one-line edit in a big file
    from a full parse into a few microseconds. A file with syntax errors is parsed afresh.
    ``previous.tree`` is edited in place: it must not be used again. Any earlier version of
    the file is a correct base, only a slower one the more it differs.
    """
    if previous is None:
        return ParsedSource(source, parser.parse(source))
    old = previous.source
    start = _common_prefix(old, source)
    tail = _common_suffix(old, source, min(len(old), len(source)) - start)
    old_end = len(old) - tail
    new_end = len(source) - tail
    tree = previous.tree
    tree.edit(
        start_byte=start,
        old_end_byte=old_end,
        new_end_byte=new_end,
        start_point=_point(old, start),
        old_end_point=_point(old, old_end),
        new_end_point=_point(source, new_end),
    )
    new_tree = parser.parse(source, tree)
    if new_tree.root_node.has_error:
        # Error recovery can settle differently when it starts from reused subtrees; a fresh
        # parse keeps what is extracted from a broken file independent of its edit history.
        new_tree = parser.parse(source)
    return ParsedSource(source, new_tree)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix (binary search: slices compare in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix, at most ``limit`` bytes."""
    low, high = 0, limit
    len_a, len_b = len(a), len(b)
    while low < high:
        mid = (low + high + 1) // 2
        if a[len_a - mid :] == b[len_b - mid :]:
            low = mid
        else:
            high = mid - 1
    return low


def _point(source: bytes, offset: int) -> tuple[int, int]:
    """tree-sitter's (row, byte column) of a byte offset."""
    line_start = source.rfind(b"\n", 0, offset) + 1
    return source.count(b"\n", 0, offset), offset - line_start


class _Utf16Columns:
    """Byte columns to UTF-16 columns for one source, in O(log n) per position.

    Slicing the line before each position (as this once did) made a long line quadratic:
    a 1 MB one-line file took 7 s to index instead of 2. Here the source is scanned once:
    for each multi-byte character, its end offset and how many more bytes than UTF-16 units
    all characters up to it take. A column is then its byte column less that surplus
    between the line's start and the position.
    """

    __slots__ = ("ascii", "ends", "source", "surplus")

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.ascii = source.isascii()
        self.ends: list[int] = []
        self.surplus: list[int] = []
        if self.ascii:
            return
        total = 0
        for match in _NON_ASCII.finditer(source):
            offset = match.start()
            for char in match.group().decode("utf-8", "replace"):
                width = len(char.encode("utf-8", "surrogatepass"))
                offset += width
                total += width - (2 if ord(char) > 0xFFFF else 1)
                self.ends.append(offset)
                self.surplus.append(total)

    def _surplus_before(self, offset: int) -> int:
        index = bisect.bisect_right(self.ends, offset)
        return self.surplus[index - 1] if index else 0

    def column(self, byte_offset: int, byte_column: int) -> int:
        if self.ascii:
            return byte_column
        line_start = byte_offset - byte_column
        return byte_column - (self._surplus_before(byte_offset) - self._surplus_before(line_start))


_NON_ASCII = re.compile(rb"[\x80-\xff]+")
_columns = threading.local()


def lsp_column(source: bytes, byte_offset: int, byte_column: int) -> int:
    """Convert tree-sitter's byte column to LSP's UTF-16 column (see :class:`_Utf16Columns`;
    the table of the last source converted is kept, per thread)."""
    table: _Utf16Columns | None = getattr(_columns, "table", None)
    if table is None or table.source is not source:
        table = _Utf16Columns(source)
        _columns.table = table
    return table.column(byte_offset, byte_column)


def skeleton_text(source: bytes, node: Node, bodies: Iterable[Node]) -> str:
    """The text of a container with each member body in ``bodies`` cut out.

    This is what a class (struct, impl, interface) hashes: its header, doc and member
    signatures. Editing one method body therefore changes that method's hash only.
    """
    parts: list[bytes] = []
    pos = node.start_byte
    for body in sorted(bodies, key=lambda b: b.start_byte):
        if body.start_byte < pos or body.end_byte > node.end_byte:
            continue
        parts.append(source[pos : body.start_byte])
        parts.append(b"...")
        pos = body.end_byte
    parts.append(source[pos : node.end_byte])
    return b"".join(parts).decode("utf-8", "replace")


def make_span(
    source: bytes,
    node: Node,
    name_node: Node | None,
    name: str,
    kind: str,
    facts: dict[str, Any] | None,
    digest: str,
) -> Span:
    """Build a :class:`Span` for ``node``; ``digest`` is the :func:`content_hash` of its text."""
    name_node = name_node or node
    sl, sc = node.start_point
    el, ec = node.end_point
    nl, nc = name_node.start_point
    nel, nec = name_node.end_point
    return Span(
        name=name,
        kind=kind,
        start_line=sl,
        start_col=lsp_column(source, node.start_byte, sc),
        end_line=el,
        end_col=lsp_column(source, node.end_byte, ec),
        name_start_line=nl,
        name_start_col=lsp_column(source, name_node.start_byte, nc),
        name_end_line=nel,
        name_end_col=lsp_column(source, name_node.end_byte, nec),
        content_hash=digest,
        facts=facts,
    )


def approx_tokens(text: str) -> int:
    """A model-agnostic token estimate (about four characters a token for code)."""
    return (len(text) + 3) // 4


def line_count(node: Node) -> int:
    """Lines the node covers, inclusive."""
    return node.end_point[0] - node.start_point[0] + 1


def preceding_comment(source: bytes, node: Node, comment_types: frozenset[str]) -> str | None:
    """The comment block directly above ``node`` (doc comment), with comment markers removed."""
    lines: list[str] = []
    expected_line = node.start_point[0]
    sibling = node.prev_sibling
    while sibling is not None and sibling.type in comment_types:
        if sibling.end_point[0] < expected_line - 1 or not _starts_line(source, sibling):
            break
        lines[:0] = text_of(source, sibling).splitlines()
        expected_line = sibling.start_point[0]
        sibling = sibling.prev_sibling
    if not lines:
        return None
    return clean_comment("\n".join(lines))


def _starts_line(source: bytes, node: Node) -> bool:
    """True when only whitespace precedes ``node`` on its line (not a trailing comment)."""
    start = node.start_byte
    line_start = start - node.start_point[1]  # no scan back: lines can be megabytes long
    return not source[line_start:start].strip()


def clean_comment(text: str) -> str | None:
    """Strip ``//``, ``///``, ``/** */``, ``*`` and ``#`` markers from a comment block."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        for prefix in ("/**", "/*!", "/*", "*/", "//!", "///", "//", "*", "#"):
            if line.startswith(prefix):
                line = line[len(prefix) :]
                break
        if line.endswith("*/"):
            line = line[:-2]
        out.append(line.strip())
    result = "\n".join(out).strip()
    return result or None


def signature_text(source: bytes, node: Node, body: Node | None) -> str:
    """The text of ``node`` up to ``body`` (all of it when None), whitespace collapsed.

    A trailing ``;`` goes too, so a signature-only declaration (``fn area(&self) -> f64;``)
    reads like the header of one that has a body.
    """
    end = body.start_byte if body is not None else node.end_byte
    text = source[node.start_byte : end].decode("utf-8", "replace")
    return " ".join(text.split()).rstrip(";").rstrip()


@dataclass(slots=True, eq=False)
class Definition:
    """What a language's handler reports for a node that starts a span.

    With ``kind`` None the node is only a naming scope (Rust ``mod``, TypeScript
    ``namespace``): its ``inner`` nodes get ``name.`` as a prefix but it is no span itself.
    """

    kind: str | None
    #: Unqualified name; the walk prefixes the names of the enclosing spans and scopes.
    name: str
    #: The node whose range and text the span has.
    node: Node
    name_node: Node | None = None
    #: Where the signature ends; for functions, also what a container's skeleton cuts out.
    body: Node | None = None
    #: Nodes to walk inside this span; handlers see them with ``direct_in`` set to ``kind``.
    inner: Sequence[Node] = ()
    #: Language facts (params, returns, doc, fields...); the walk adds the common ones.
    facts: dict[str, Any] = field(default_factory=dict)
    #: Prefix for inner names when it is not ``name`` (``impl Display for Point`` -> Point).
    scope_name: str | None = None


#: ``handler(source, node, direct_in)``: ``direct_in`` is the kind of the span (or "scope")
#: whose ``inner`` list holds ``node``, None for a node reached by walking further down.
Handler = Callable[[bytes, Node, "str | None"], "Definition | None"]

#: ``call_handler(source, node, calls)`` adds the callee names a call node makes to ``calls``
#: (a dict used as an ordered set): usually one, none for what only looks like a call.
CallHandler = Callable[[bytes, Node, dict[str, None]], None]


@dataclass(frozen=True, slots=True)
class SpanRules:
    """How one language's tree maps onto spans and control-flow facts."""

    #: Node type -> handler that returns a Definition, or None when that node is no span.
    handlers: Mapping[str, Handler]
    #: Node types counted in the ``branches`` fact.
    branch_types: frozenset[str]
    #: Node types that open one level of the ``nesting`` fact.
    nesting_types: frozenset[str]
    #: (parent type, child type) pairs where the child continues the parent's chain rather
    #: than nesting in it: ``else if`` is as deep as its ``if``.
    else_if: frozenset[tuple[str, str]] = frozenset()
    #: Called with the finished spans, for facts that need all of them (Go receivers).
    finish: Callable[[list[Span]], None] | None = None
    #: Node type -> handler naming the callee of a call node, for the ``calls`` fact.
    call_handlers: Mapping[str, CallHandler] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class _OpenSpan:
    definition: Definition
    name: str
    parent: _OpenSpan | None
    nesting: int = 0
    branches: int = 0
    members: list[str] = field(default_factory=list)
    cut: list[Node] = field(default_factory=list)
    #: Callee names in first-call order (a dict as an ordered set); unused by containers.
    calls: dict[str, None] = field(default_factory=dict)


_Frame = tuple[str, "_OpenSpan | None", "str | None"]


def collect_spans(source: bytes, root: Node, rules: SpanRules) -> list[Span]:
    """All spans under ``root``, in source order, with facts, from one walk of the tree.

    The same walk counts control flow: each node counts toward the innermost span around it,
    so a nested definition's branches count for it alone, while anonymous functions and
    lambdas (no spans) count for the span they sit in. Calls are counted the same way, for
    functions and methods only (as in Python, a class body's calls are nobody's), and the
    calls in a nested definition's header (default values, base classes) count for the
    function around it, where they run. Spans whose
    own node contains a syntax error are left out; the ones around and inside them are not.
    """
    handlers = rules.handlers
    call_handlers = rules.call_handlers
    branch_types = rules.branch_types
    nesting_types = rules.nesting_types
    else_if = rules.else_if
    else_if_parents = frozenset(parent for parent, _ in else_if)
    opened: list[_OpenSpan] = []
    # (node, control-flow depth, frame); a frame is (name prefix, innermost span, direct_in)
    # and is shared by all the nodes it covers, which keeps the per-node cost low.
    top: _Frame = ("", None, None)
    stack: list[tuple[Node, int, _Frame]] = [(root, 0, top)]
    while stack:
        node, depth, frame = stack.pop()
        node_type = node.type
        handler = handlers.get(node_type)
        if handler is not None:
            prefix, owner, direct_in = frame
            found = handler(source, node, direct_in)
            if found is not None:
                inner_prefix = f"{prefix}{found.scope_name or found.name}."
                if found.kind is None:
                    inner: _Frame = (inner_prefix, owner, "scope")
                    stack += [(child, depth, inner) for child in reversed(found.inner)]
                    continue
                span = _OpenSpan(found, prefix + found.name, owner)
                opened.append(span)
                if (
                    call_handlers
                    and owner is not None
                    and found.body is not None
                    and owner.definition.kind not in CONTAINER_KINDS
                ):
                    # As in Python, a nested definition's header (default values, base
                    # classes) runs in the enclosing function: its calls are that one's.
                    _header_calls(source, found.node, found.body, call_handlers, owner.calls)
                if (
                    direct_in is not None
                    and owner is not None
                    and owner.definition.kind in CONTAINER_KINDS
                ):
                    owner.members.append(found.name)
                if found.kind not in CONTAINER_KINDS and found.body is not None:
                    # Every enclosing container hashes its skeleton without this body.
                    ancestor = owner
                    while ancestor is not None:
                        if ancestor.definition.kind in CONTAINER_KINDS:
                            ancestor.cut.append(found.body)
                        ancestor = ancestor.parent
                inner = (inner_prefix, span, found.kind)
                stack += [(child, 0, inner) for child in reversed(found.inner)]
                continue
        owner = frame[1]
        if owner is not None:
            call_handler = call_handlers.get(node_type)
            if call_handler is not None and owner.definition.kind not in CONTAINER_KINDS:
                call_handler(source, node, owner.calls)
            if node_type in branch_types:
                owner.branches += 1
            if node_type in nesting_types:
                depth += 1
                if depth > owner.nesting:
                    owner.nesting = depth
        if not node.named_child_count:
            continue
        if frame[2] is not None:  # only the nodes a span lists are direct_in it
            frame = (frame[0], owner, None)
        if node_type in else_if_parents:
            stack += [
                (child, depth - 1 if (node_type, child.type) in else_if else depth, frame)
                for child in reversed(node.named_children)
            ]
        else:
            stack += [(child, depth, frame) for child in reversed(node.named_children)]
    spans = [_finish_span(source, span) for span in opened if not span.definition.node.has_error]
    if rules.finish is not None:
        rules.finish(spans)
    return spans


def _header_calls(
    source: bytes,
    node: Node,
    body: Node,
    call_handlers: Mapping[str, CallHandler],
    calls: dict[str, None],
) -> None:
    """Add the calls made in ``node`` outside ``body`` to ``calls``, in source order."""
    start, end = body.start_byte, body.end_byte

    def outside_or_around(child: Node) -> bool:
        if child.end_byte <= start or child.start_byte >= end:
            return True  # wholly outside the body
        return child != body and child.start_byte <= start and end <= child.end_byte

    stack = [node]
    while stack:
        current = stack.pop()
        handler = call_handlers.get(current.type)
        if handler is not None:
            handler(source, current, calls)
        stack += [c for c in reversed(current.named_children) if outside_or_around(c)]


def _finish_span(source: bytes, span: _OpenSpan) -> Span:
    found = span.definition
    node = found.node
    container = found.kind in CONTAINER_KINDS
    text = skeleton_text(source, node, span.cut) if container else text_of(source, node)
    facts: dict[str, Any] = {"signature": signature_text(source, node, found.body)}
    facts.update(found.facts)
    if container:
        facts["members"] = span.members
    else:
        facts["calls"] = list(span.calls)[:MAX_CALLS]
    facts["lines"] = line_count(node)
    facts["nesting"] = span.nesting
    facts["branches"] = span.branches
    facts["tokens"] = approx_tokens(text)
    digest = content_hash(text)
    return make_span(source, node, found.name_node, span.name, found.kind or "", facts, digest)


class RulesExtractor:
    """An extractor driven by :class:`SpanRules`: one parser, one walk per file.

    Not safe to share between threads (a tree-sitter parser is not); use one per worker.
    """

    def __init__(self, language: str, grammar: object, rules: SpanRules) -> None:
        self.language = language
        self._parser = Parser(Language(grammar))
        self._rules = rules

    def extract(
        self,
        source: bytes,
        previous: ParsedSource | None = None,
        known_hashes: Container[str] = frozenset(),
    ) -> Extraction:
        """Parse ``source`` and return its spans (those that parse, on syntax errors).

        ``previous`` is an earlier parse of the same file: see :func:`reparse`. Facts come
        mostly from the walk itself here, so ``known_hashes`` saves too little to be used.
        """
        parsed = reparse(self._parser, source, previous)
        root = parsed.tree.root_node
        spans = collect_spans(source, root, self._rules)
        return Extraction(assign_ordinals(spans), root.has_error, parsed)


def param_fact(
    name: str, type_text: str | None = None, default: str | None = None
) -> dict[str, Any]:
    """One entry of the ``params`` fact."""
    return {"name": name, "type": type_text, "default": default}


def collapsed_text(source: bytes, node: Node | None) -> str | None:
    """The text of ``node`` with whitespace runs collapsed to one space (None for None)."""
    if node is None:
        return None
    return " ".join(text_of(source, node).split())


def callee_renderer(
    dotted: re.Pattern[bytes], render: Callable[[bytes, Node, int], str]
) -> Callable[[bytes, Node | None], str | None]:
    """``name(source, callee)``: the callee as written when it is a plain path (``dotted``
    matches it), else as ``render(source, callee, 0)`` writes it; None for no callee."""

    def name(source: bytes, callee: Node | None) -> str | None:
        if callee is None:
            return None
        raw = source[callee.start_byte : callee.end_byte]
        if dotted.fullmatch(raw):
            return raw.decode("ascii")
        return render(source, callee, 0)

    return name
