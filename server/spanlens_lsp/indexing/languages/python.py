"""Python spans (functions, methods, classes) and their parser facts.

One tree-sitter query runs over the whole file and returns, in C and in source order, every
definition, call, raise, scope statement and control-flow node; one Python sweep over those
matches hands each to the innermost definition whose *body* holds it. Nothing walks the tree
node by node from Python, which is what keeps extraction cheap on large files.

Decisions:

* A span's range covers its decorators (hovering ``@property`` finds the method); its name
  range is the identifier after ``def`` / ``class``.
* ``method`` is a function defined in a class body, also under an ``if``/``try`` there;
  ``function`` is any other ``def``. A nested ``def`` is named ``outer.inner``.
* Calls in decorators, default values and annotations run in the enclosing scope, so they
  count for the enclosing function, not the decorated one; nested functions and classes keep
  their own calls, raises and side effects.
* ``branches`` counts ``if``, ``elif``, ``for`` (also ``async for``), ``while``, ``except``
  (also ``except*``), ``case``, conditional expressions, each ``and``/``or`` operator, and
  comprehension ``for``/``if`` clauses. ``nesting`` is the deepest stack of ``if``, ``for``,
  ``while``, ``try``, ``with`` and ``match`` statements (``elif``/``else`` add no depth).
* A class hashes its skeleton: member function bodies and nested class bodies are cut out,
  so its header, docstring, attributes and member signatures are what it hashes. Its
  ``tokens`` estimate is taken over that skeleton, which is what describes the class.
* ``side_effects`` are read from names, nothing is resolved: ``file_io`` (``open``,
  ``os.remove``/``rename``/``makedirs``/..., ``shutil.*``, ``tempfile.*``, ``.write_text()``,
  ``.unlink()`` and other pathlib-style methods on any receiver, and ``.write()``,
  ``.writelines()``, ``.flush()`` of file-like objects), ``network`` (``requests.``,
  ``httpx.``, ``aiohttp.``, ``urllib.request.``, ``socket.``, ``http.client.``, ...,
  ``.sendall()``/``.recv()`` and other socket-only methods), ``subprocess`` (``subprocess.*``,
  ``os.system``/``popen``/``exec*``/``spawn*``/``kill``), ``environment`` (reads
  *and* writes: ``os.environ`` anywhere in the body, ``os.getenv``/``putenv``), ``printing``
  (``print``, ``sys.stdout.*``/``sys.stderr.*``), ``logging`` (``logging.*`` but
  ``getLogger``; ``.debug()``/``.info()``/... on a receiver named like ``log``/``logger``),
  ``global_write``/``nonlocal_write`` (a declared name is assigned, augmented, deleted or
  used as a loop or walrus target in the body).
* On syntax errors, a span whose own node holds an error is left out. When the error breaks
  a definition's own structure (not just a nested one), what tree-sitter nests under it is
  left out too: an unclosed bracket otherwise turns the following functions into bogus
  ``broken.next`` spans.
"""

from __future__ import annotations

import threading
from collections.abc import Container
from typing import Any

from tree_sitter import Node, Parser, Query, QueryCursor

from spanlens_lsp.indexing.hashing import content_hash
from spanlens_lsp.indexing.languages.common import (
    MAX_CALLS,
    approx_tokens,
    line_count,
    make_span,
    reparse,
    skeleton_text,
    text_of,
)
from spanlens_lsp.indexing.languages.python_effects import has_own_error, side_effects_of
from spanlens_lsp.indexing.languages.python_nodes import (
    DOTTED_NAME,
    EXTRAS,
    PYTHON_LANGUAGE,
    Frame,
    class_attributes,
    collapse_spaces,
    decorator_texts,
    docstring_of,
    expression_name,
    first_named,
    parameter_facts,
    render_node,
)
from spanlens_lsp.indexing.spans import Extraction, ParsedSource, Span, assign_ordinals

# One pattern per thing a span's facts need. ``matches`` come back in source order (by the
# node each pattern captures), which lets one sweep hand every match to its enclosing span.
_FILE_QUERY = Query(
    PYTHON_LANGUAGE,
    """
    [(function_definition) (class_definition)] @def
    (call function: (_) @callee)
    (raise_statement) @raise
    [(global_statement) (nonlocal_statement)] @scope
    [(if_statement) (for_statement) (while_statement)] @nest_branch
    [(try_statement) (with_statement) (match_statement)] @nest
    [(elif_clause) (except_clause) (case_clause) (conditional_expression) (boolean_operator)
     (for_in_clause) (if_clause)] @branch
    """,
)
# Pattern indexes, in the order above.
_DEF, _CALL, _RAISE, _SCOPE, _NEST_BRANCH, _NEST, _BRANCH = range(7)


class PythonExtractor:
    """Extracts Python spans and facts; one parser per thread, queries shared."""

    def __init__(self, language: str = "python") -> None:
        self.language = language
        self._local = threading.local()

    def _parser(self) -> Parser:
        parser: Parser | None = getattr(self._local, "parser", None)
        if parser is None:
            parser = Parser(PYTHON_LANGUAGE)
            self._local.parser = parser
        return parser

    def extract(
        self,
        source: bytes,
        previous: ParsedSource | None = None,
        known_hashes: Container[str] = frozenset(),
    ) -> Extraction:
        """Parse ``source`` and return its spans (those that parse, on syntax errors).

        ``previous`` is an earlier parse of the same file: see :func:`reparse`. Spans whose
        hash is in ``known_hashes`` get no facts (None): the caller has them already.
        """
        parsed = reparse(self._parser(), source, previous)
        root = parsed.tree.root_node
        matches = QueryCursor(_FILE_QUERY).matches(root)
        frames = _sweep(source, matches)
        if frames is None:
            # Never seen on real code; kept so a change in tree-sitter's order cannot
            # silently misattribute facts.
            matches.sort(key=_match_start)
            frames = _sweep(source, matches) or []
        spans: list[Span] = []
        for frame in frames:
            if frame.parent is not None and frame.parent.suspect:
                frame.suspect = True
                continue
            node = frame.def_node
            parent = node.parent
            span_node = (
                parent if parent is not None and parent.type == "decorated_definition" else node
            )
            if span_node.has_error or frame.name_node is None:
                frame.suspect = has_own_error(node)
                continue
            if frame.is_class:
                spans.append(_class_span(source, frame, span_node, known_hashes))
            else:
                spans.append(_function_span(source, frame, span_node, known_hashes))
        for frame in frames:
            # Frames link both ways, and every Node keeps the whole tree alive: unlinking
            # frees this file's tree as soon as the caller drops it, not at some later GC pass.
            frame.parent = None
        return Extraction(assign_ordinals(spans), root.has_error, parsed)


def create(language: str) -> PythonExtractor:
    """The Python extractor (the registry calls this once per process)."""
    return PythonExtractor(language)


# --- the sweep -------------------------------------------------------------------------------


def _match_start(match: tuple[int, dict[str, list[Node]]]) -> int:
    (nodes,) = match[1].values()
    return nodes[0].start_byte


def _sweep(source: bytes, matches: list[tuple[int, dict[str, list[Node]]]]) -> list[Frame] | None:
    """Frames for every def/class, with the calls, raises and control flow of their bodies.

    ``matches`` must be in source order; None when they are not.
    """
    frames: list[Frame] = []
    stack: list[Frame] = []  # the defs/classes enclosing the current position
    top_end = -1  # where the innermost open frame ends (-1: none open)
    last = 0
    dotted = DOTTED_NAME.fullmatch
    for index, captures in matches:
        (nodes,) = captures.values()
        node = nodes[0]
        pos = node.start_byte
        if pos < last:
            return None
        last = pos
        if top_end != -1 and top_end <= pos:
            stack.pop()
            while stack and stack[-1].end <= pos:
                stack.pop()
            top_end = stack[-1].end if stack else -1
        if index == _DEF:
            parent = stack[-1] if stack else None
            frame = Frame(source, node, parent)
            if parent is not None:
                parent.children.append(frame)
            frames.append(frame)
            stack.append(frame)
            top_end = frame.end
            continue
        if top_end == -1:
            continue  # module level: no span to describe
        owner = stack[-1]
        if pos < owner.start:
            if len(stack) < 2:
                continue
            owner = stack[-2]
        if owner.is_class:
            continue  # class bodies have no call/flow facts
        if index == _CALL:
            # Inline fast path of expression_name: most callees are plain dotted names.
            raw = source[pos : node.end_byte]
            if dotted(raw):
                owner.calls[raw.decode("ascii")] = None
            else:
                owner.calls[render_node(source, node, 0)] = None
        elif index == _BRANCH:
            owner.branches += 1
        elif index in (_NEST, _NEST_BRANCH):
            if index == _NEST_BRANCH:
                owner.branches += 1
            ends = owner.nest_ends
            while ends and ends[-1] <= pos:
                ends.pop()
            ends.append(node.end_byte)
            if len(ends) > owner.nesting:
                owner.nesting = len(ends)
        elif index == _RAISE:
            exc = first_named(node)
            if exc is None:
                continue  # a bare ``raise`` re-raises what is being handled
            if exc.type == "call":
                exc = exc.child_by_field_name("function") or exc
            owner.raises[expression_name(source, exc)] = None
        else:
            names = [text_of(source, c) for c in node.named_children if c.type == "identifier"]
            if node.type == "global_statement":
                owner.globals.extend(names)
            else:
                owner.nonlocals.extend(names)
    return frames


# --- spans ---------------------------------------------------------------------------------


def _function_span(
    source: bytes, frame: Frame, span_node: Node, known_hashes: Container[str]
) -> Span:
    kind = "method" if frame.parent is not None and frame.parent.is_class else "function"
    name_node = frame.name_node
    text = text_of(source, span_node)
    digest = content_hash(text)
    if digest in known_hashes:
        return make_span(source, span_node, name_node, frame.qualname, kind, None, digest)
    node = frame.def_node
    first = node.child(0)
    is_async = first is not None and first.type == "async"
    params_node = node.child_by_field_name("parameters")
    params, params_text = parameter_facts(source, params_node)
    returns_node = node.child_by_field_name("return_type")
    returns = collapse_spaces(text_of(source, returns_node)) if returns_node is not None else None
    type_params = node.child_by_field_name("type_parameters")
    signature = "".join(
        [
            "async def " if is_async else "def ",
            frame.name,
            collapse_spaces(text_of(source, type_params)) if type_params is not None else "",
            params_text,
            f" -> {returns}" if returns is not None else "",
        ]
    )
    calls = list(frame.calls)
    facts: dict[str, Any] = {
        "signature": signature,
        "params": params,
        "returns": returns,
        "decorators": decorator_texts(source, span_node),
        "docstring": docstring_of(source, node.child_by_field_name("body")),
        "raises": list(frame.raises),
        "calls": calls[:MAX_CALLS],
        "side_effects": side_effects_of(source, frame, calls),
        "is_async": is_async,
        "lines": line_count(span_node),
        "nesting": frame.nesting,
        "branches": frame.branches,
        "tokens": approx_tokens(text),
    }
    return make_span(source, span_node, name_node, frame.qualname, kind, facts, digest)


def _class_span(source: bytes, frame: Frame, span_node: Node, known_hashes: Container[str]) -> Span:
    member_bodies = [
        b for b in (c.def_node.child_by_field_name("body") for c in frame.children) if b is not None
    ]
    skeleton = skeleton_text(source, span_node, member_bodies)
    digest = content_hash(skeleton)
    if digest in known_hashes:
        return make_span(source, span_node, frame.name_node, frame.qualname, "class", None, digest)
    node = frame.def_node
    body = node.child_by_field_name("body")
    type_params = node.child_by_field_name("type_parameters")
    superclasses = node.child_by_field_name("superclasses")
    arguments: list[str] = []
    bases: list[str] = []
    if superclasses is not None:
        for arg in superclasses.named_children:
            if arg.type in EXTRAS:
                continue
            arg_text = collapse_spaces(text_of(source, arg))
            arguments.append(arg_text)
            if arg.type not in ("keyword_argument", "dictionary_splat"):
                bases.append(arg_text)
    signature = "".join(
        [
            "class ",
            frame.name,
            collapse_spaces(text_of(source, type_params)) if type_params is not None else "",
            f"({', '.join(arguments)})" if superclasses is not None else "",
            ":",
        ]
    )
    facts: dict[str, Any] = {
        "signature": signature,
        "bases": bases,
        "decorators": decorator_texts(source, span_node),
        "docstring": docstring_of(source, body),
        "members": list(dict.fromkeys(c.name for c in frame.children)),
        "attributes": class_attributes(source, body),
        "lines": line_count(span_node),
        "tokens": approx_tokens(skeleton),
    }
    return make_span(source, span_node, frame.name_node, frame.qualname, "class", facts, digest)
