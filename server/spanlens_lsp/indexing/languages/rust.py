"""Rust spans: functions, structs, enums, traits, impl blocks and their methods.

Spans and names:

- ``fn f`` -> function ``f``; one inside another function is ``outer.inner``; inside
  ``mod m { }`` it is ``m.f`` (the module is no span).
- ``struct``/``union`` -> struct, ``enum`` -> enum (variants in the ``fields`` fact, like a
  struct's fields).
- ``impl Point`` -> impl ``Point``; ``impl Display for Point`` -> impl ``Display for Point``.
  Generic arguments and references are dropped from the type, not from the trait
  (``impl<T> From<T> for Wrapper<T>`` -> ``From<T> for Wrapper``). Several impl blocks of one
  type are told apart by ordinal.
- Functions in an impl are methods of the type: ``Point.fmt``; in ``trait Shape``, methods
  ``Shape.area``, signature-only ones included.
- Closures are no spans; their control flow counts toward the function they sit in.
- ``doc`` is the comment block above the item, above its attributes when it has some.

``branches`` counts ``if`` (each ``else if`` too), loops (``for``, ``while``, ``loop``) and
``match`` arms (``_`` included); ``nesting`` is the depth of ``if``, ``match`` and loops inside
one another, an ``else if`` chain as deep as its first ``if``.

``calls`` lists each function's and method's callees once, in first-call order (at most
:data:`~spanlens_lsp.indexing.languages.common.MAX_CALLS`), as written with arguments elided:
``Vec::new``, ``self.save``, ``a.b().c``, ``r.read()?.parse``, ``fut.await.poll``. Generic
arguments go (``Vec::<u8>::with_capacity`` -> ``Vec::with_capacity``, ``parse::<i32>`` ->
``parse``); a string literal receiver reads ``str``. Macros count as calls, named with their
``!`` (``println!``, ``anyhow::bail!``), and so do the calls written in their arguments:
``println!("{}", self.name())`` lists ``println!`` and ``self.name``. Macro arguments are
tokens, not expressions, so those are read from the token shape ``path(`` (a chained call
lists each link by its own name: ``a.b().c()`` in a macro gives ``a.b`` and ``c``). Closures
are no spans: their calls count for the function they sit in; a nested ``fn`` keeps its own.
"""

from __future__ import annotations

import re
from typing import Any

import tree_sitter_rust
from tree_sitter import Node

from spanlens_lsp.indexing.languages.common import (
    callee_renderer,
    collapsed_text,
    param_fact,
    preceding_comment,
    text_of,
)
from spanlens_lsp.indexing.languages.rules import (
    Definition,
    Handler,
    RulesExtractor,
    SpanRules,
)

COMMENT_TYPES = frozenset({"line_comment", "block_comment"})
METHOD_OWNERS = frozenset({"impl", "trait"})

BRANCH_TYPES = frozenset(
    {"if_expression", "match_arm", "for_expression", "while_expression", "loop_expression"}
)
NESTING_TYPES = frozenset(
    {"if_expression", "match_expression", "for_expression", "while_expression", "loop_expression"}
)
ELSE_IF = frozenset({("else_clause", "if_expression")})


def doc_of(source: bytes, item: Node) -> str | None:
    """The comment block directly above ``item``, or above the attributes on it."""
    anchor = item
    previous = anchor.prev_sibling
    while (
        previous is not None
        and previous.type == "attribute_item"
        and previous.end_point[0] >= anchor.start_point[0] - 1
    ):
        anchor = previous
        previous = anchor.prev_sibling
    return preceding_comment(source, anchor, COMMENT_TYPES)


def params_of(source: bytes, parameters: Node | None) -> list[dict[str, Any]]:
    """The ``params`` fact; ``self`` (in any form) is a parameter named ``self``."""
    if parameters is None:
        return []
    params = []
    for param in parameters.named_children:
        if param.type == "parameter":
            pattern = param.child_by_field_name("pattern")
            params.append(
                param_fact(
                    text_of(source, pattern) if pattern is not None else "_",
                    collapsed_text(source, param.child_by_field_name("type")),
                )
            )
        elif param.type == "self_parameter":
            params.append(param_fact("self"))
    return params


def function_item(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``fn f(...)``, with a body or (in a trait) without."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    if node.type == "function_signature_item" and direct_in != "trait":
        return None  # extern declarations
    body = node.child_by_field_name("body")
    return Definition(
        kind="method" if direct_in in METHOD_OWNERS else "function",
        name=text_of(source, name),
        node=node,
        name_node=name,
        body=body,
        inner=(body,) if body is not None else (),
        facts={
            "params": params_of(source, node.child_by_field_name("parameters")),
            "returns": collapsed_text(source, node.child_by_field_name("return_type")),
            "doc": doc_of(source, node),
        },
    )


def type_name(source: bytes, node: Node) -> str:
    """A type without generic arguments, references or pointers: ``&mut Vec<T>`` -> ``Vec``."""
    while node.type in ("generic_type", "reference_type", "pointer_type"):
        inner = node.child_by_field_name("type")
        if inner is None:
            break
        node = inner
    return " ".join(text_of(source, node).split())


def _members_of(body: Node | None) -> list[Node]:
    return body.named_children if body is not None else []


def impl_item(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``impl Point {}`` -> ``Point``; ``impl Display for Point {}`` -> ``Display for Point``."""
    type_node = node.child_by_field_name("type")
    if type_node is None:
        return None
    self_type = type_name(source, type_node)
    trait = collapsed_text(source, node.child_by_field_name("trait"))
    body = node.child_by_field_name("body")
    return Definition(
        kind="impl",
        name=f"{trait} for {self_type}" if trait else self_type,
        node=node,
        name_node=type_node,
        body=body,
        inner=_members_of(body),
        facts={"doc": doc_of(source, node), "trait": trait, "type": self_type},
        scope_name=self_type,
    )


def trait_item(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``trait Shape { fn area(&self) -> f64; }``."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    body = node.child_by_field_name("body")
    return Definition(
        kind="trait",
        name=text_of(source, name),
        node=node,
        name_node=name,
        body=body,
        inner=_members_of(body),
        facts={"doc": doc_of(source, node)},
    )


def fields_of(source: bytes, body: Node | None) -> list[str]:
    """Field names of a struct (positions ``0``, ``1``... for a tuple struct), enum variants."""
    if body is None:
        return []
    names = []
    for member in body.named_children:
        if member.type in ("field_declaration", "enum_variant"):
            name = member.child_by_field_name("name")
            if name is not None:
                names.append(text_of(source, name))
    if body.type == "ordered_field_declaration_list":
        names = [str(i) for i in range(len(body.children_by_field_name("type")))]
    return names


def data_item(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``struct``, ``union`` and ``enum`` items."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    body = node.child_by_field_name("body")
    return Definition(
        kind="enum" if node.type == "enum_item" else "struct",
        name=text_of(source, name),
        node=node,
        name_node=name,
        body=body,
        facts={"doc": doc_of(source, node), "fields": fields_of(source, body)},
    )


def mod_item(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``mod m { ... }``: a naming scope for its items, no span itself."""
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    if name is None or body is None:
        return None
    return Definition(kind=None, name=text_of(source, name), node=node, inner=body.named_children)


_NAMES = frozenset(
    {"identifier", "field_identifier", "type_identifier", "self", "super", "crate", "metavariable"}
)


def _render(source: bytes, node: Node, depth: int) -> str:
    """A callee expression with arguments and generic arguments elided (``a.b().c``)."""
    kind = node.type
    if kind in _NAMES:
        return text_of(source, node)
    if depth > 16:
        return "(...)"
    if kind == "scoped_identifier":
        path = node.child_by_field_name("path")
        name = node.child_by_field_name("name")
        head = _render(source, path, depth + 1) if path is not None else ""
        return f"{head}::{text_of(source, name) if name is not None else ''}"
    if kind == "generic_type":
        base = node.child_by_field_name("type")
        return _render(source, base, depth + 1) if base is not None else "(...)"
    if kind == "generic_function":
        function = node.child_by_field_name("function")
        return _render(source, function, depth + 1) if function is not None else "(...)"
    if kind == "field_expression":
        value = node.child_by_field_name("value")
        field_node = node.child_by_field_name("field")
        head = _render(source, value, depth + 1) if value is not None else "(...)"
        return f"{head}.{text_of(source, field_node) if field_node is not None else ''}"
    if kind == "call_expression":
        function = node.child_by_field_name("function")
        return (_render(source, function, depth + 1) if function is not None else "(...)") + "()"
    if kind == "macro_invocation":
        macro = node.child_by_field_name("macro")
        return (_render(source, macro, depth + 1) if macro is not None else "(...)") + "!()"
    if kind == "try_expression" and node.named_child_count:
        return _render(source, node.named_children[0], depth + 1) + "?"
    if kind == "await_expression" and node.named_child_count:
        return _render(source, node.named_children[0], depth + 1) + ".await"
    if kind == "index_expression" and node.named_child_count:
        return _render(source, node.named_children[0], depth + 1) + "[]"
    if kind == "parenthesized_expression" and node.named_child_count:
        return _render(source, node.named_children[0], depth + 1)
    if kind == "bracketed_type":  # <T as Trait>::f
        return " ".join(text_of(source, node).split())
    if kind in ("string_literal", "raw_string_literal"):
        return "str"
    return "(...)"


_callee_name = callee_renderer(re.compile(rb"[A-Za-z_]\w*(?:(?:\.|::)[A-Za-z_]\w*)*"), _render)


def call_expression(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``f(x)``, ``Vec::new()``, ``self.save()``: the callee as written."""
    name = _callee_name(source, node.child_by_field_name("function"))
    if name is not None:
        calls[name] = None


def macro_invocation(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``println!(...)`` calls ``println!``."""
    name = _callee_name(source, node.child_by_field_name("macro"))
    if name is not None:
        calls[name + "!"] = None


_PATH_PARTS = frozenset({"identifier", "self", "super", "crate", "primitive_type"})
_SEPARATORS = frozenset({".", "::"})


def token_tree(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """Calls written in a macro's arguments: a path followed by ``(`` (or ``!`` and a group).

    Only inside a macro invocation: an attribute's ``cfg(any(unix))`` is no call.
    """
    parent = node.parent
    while parent is not None and parent.type == "token_tree":
        parent = parent.parent
    if parent is None or parent.type != "macro_invocation":
        return
    path: list[str] = []  # names and separators; ends with a name when it can be called
    bang = False
    for child in node.children:
        kind = child.type
        if kind in _PATH_PARTS:
            if path and path[-1] not in _SEPARATORS:
                path = []
            path.append(text_of(source, child))
            bang = False
        elif kind in _SEPARATORS and path and path[-1] not in _SEPARATORS and not bang:
            path.append(kind)
        elif kind == "!" and path and path[-1] not in _SEPARATORS:
            bang = True
        else:
            if kind == "token_tree" and path and path[-1] not in _SEPARATORS:
                if bang:
                    calls["".join(path) + "!"] = None
                elif source[child.start_byte : child.start_byte + 1] == b"(":
                    calls["".join(path)] = None
            path = []
            bang = False


HANDLERS: dict[str, Handler] = {
    "function_item": function_item,
    "function_signature_item": function_item,
    "impl_item": impl_item,
    "trait_item": trait_item,
    "struct_item": data_item,
    "union_item": data_item,
    "enum_item": data_item,
    "mod_item": mod_item,
}

RULES = SpanRules(
    handlers=HANDLERS,
    branch_types=BRANCH_TYPES,
    nesting_types=NESTING_TYPES,
    else_if=ELSE_IF,
    call_handlers={
        "call_expression": call_expression,
        "macro_invocation": macro_invocation,
        "token_tree": token_tree,
    },
)


def create(language: str) -> RulesExtractor:
    """The Rust extractor."""
    return RulesExtractor(language, tree_sitter_rust.language(), RULES)
