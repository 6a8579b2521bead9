"""The rules walk: languages describe which nodes start spans (:class:`SpanRules`), and one
walk per file turns them into spans with their facts (:class:`RulesExtractor`)."""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tree_sitter import Language, Node, Parser

from spanlens_lsp.indexing.hashing import content_hash
from spanlens_lsp.indexing.languages.common import (
    MAX_CALLS,
    approx_tokens,
    line_count,
    make_span,
    reparse,
    signature_text,
    skeleton_text,
    text_of,
)
from spanlens_lsp.indexing.spans import (
    CONTAINER_KINDS,
    Extraction,
    ParsedSource,
    Span,
    assign_ordinals,
)


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
