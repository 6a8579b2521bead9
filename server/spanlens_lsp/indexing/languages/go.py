"""Go spans: functions, receiver methods, struct and interface types, named function literals.

Spans and names:

- ``func F()`` -> function ``F``; ``func (s *Server) Start()`` -> method ``Server.Start``
  (pointer and type parameters stripped from the receiver type). The receiver is the
  ``receiver`` fact, not a parameter.
- ``type S struct {...}`` -> struct, ``type I interface {...}`` -> interface. The span is the
  whole ``type`` declaration when it declares one type, else that one spec of the group.
  Other type declarations (aliases, ``type IDs []int``) are no spans.
- A struct's ``members`` are the methods declared on it in the same file; ``fields`` lists its
  fields (embedded ones by type), an interface's ``fields`` its methods and embedded types.
- ``h := func() {}`` / ``var h = func() {}`` -> function named by the variable (``F.h`` in
  ``F``): Go's only way to name a nested function. Other function literals are no spans.

``branches`` counts ``if`` (each ``else if`` too), ``for``, and ``case`` arms of ``switch``
and ``select`` (not ``default``); ``nesting`` is the depth of ``if``, ``for``, ``switch`` and
``select`` inside one another, an ``else if`` chain as deep as its first ``if``.

``calls`` lists each function's and method's callees once, in first-call order (at most
:data:`~spanlens_lsp.indexing.languages.common.MAX_CALLS`), as written with arguments and indexes
elided: ``fmt.Println``, ``s.store.Get``, ``a.b().c``, ``handlers[]``. Explicit type
arguments go (``slices.Sort[[]int](x)`` -> ``slices.Sort``), but ``Max[int](a, b)`` cannot be
told from an index and reads ``Max[]``. Conversions to unnamed types (``[]byte(s)``) are no
calls; those spelled like a call (``string(b)``, ``MyInt(x)``) are. Calls in ``go`` and ``defer``
statements and in anonymous function literals count for the enclosing span; a named literal
(``h := func() {}``) keeps its own.
"""

from __future__ import annotations

import re
from typing import Any

import tree_sitter_go
from tree_sitter import Node

from spanlens_lsp.indexing.languages.common import (
    callee_renderer,
    collapsed_text,
    param_fact,
    preceding_comment,
    signature_text,
    text_of,
)
from spanlens_lsp.indexing.languages.rules import (
    Definition,
    Handler,
    RulesExtractor,
    SpanRules,
)
from spanlens_lsp.indexing.spans import Span

COMMENT_TYPES = frozenset({"comment"})
CONTAINER_TYPES = {"struct_type": "struct", "interface_type": "interface"}

BRANCH_TYPES = frozenset(
    {"if_statement", "for_statement", "expression_case", "type_case", "communication_case"}
)
NESTING_TYPES = frozenset(
    {
        "if_statement",
        "for_statement",
        "expression_switch_statement",
        "type_switch_statement",
        "select_statement",
    }
)
ELSE_IF = frozenset({("if_statement", "if_statement")})


def params_of(source: bytes, parameters: Node | None) -> list[dict[str, Any]]:
    """The ``params`` fact; ``a, b int`` gives two, an unnamed parameter is named ``_``."""
    if parameters is None:
        return []
    params: list[dict[str, Any]] = []
    for decl in parameters.named_children:
        type_node = decl.child_by_field_name("type")
        type_text = collapsed_text(source, type_node)
        if decl.type == "variadic_parameter_declaration" and type_text is not None:
            type_text = "..." + type_text
        elif decl.type != "parameter_declaration":
            continue  # comments
        names = decl.children_by_field_name("name")
        params.extend(param_fact(text_of(source, name), type_text) for name in names)
        if not names:
            params.append(param_fact("_", type_text))
    return params


def _function(
    source: bytes, node: Node, name: str, name_node: Node | None, kind: str
) -> Definition:
    body = node.child_by_field_name("body")
    return Definition(
        kind=kind,
        name=name,
        node=node,
        name_node=name_node,
        body=body,
        inner=(body,) if body is not None else (),
        facts={
            "params": params_of(source, node.child_by_field_name("parameters")),
            "returns": collapsed_text(source, node.child_by_field_name("result")),
            "doc": preceding_comment(source, node, COMMENT_TYPES),
        },
    )


def function_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``func F(...) ... {}``."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return _function(source, node, text_of(source, name), name, "function")


def receiver_type(source: bytes, receiver: Node | None) -> str | None:
    """The base type name of a receiver: ``(s *List[T])`` -> ``List``."""
    if receiver is None:
        return None
    for decl in receiver.named_children:
        type_node = decl.child_by_field_name("type")
        while type_node is not None and type_node.type in ("pointer_type", "generic_type"):
            inner = type_node.child_by_field_name("type")
            type_node = inner if inner is not None else type_node.named_children[0]
        if type_node is not None:
            return text_of(source, type_node)
    return None


def method_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``func (s *Server) Start(...) {}`` -> ``Server.Start``."""
    name = node.child_by_field_name("name")
    receiver = node.child_by_field_name("receiver")
    type_name = receiver_type(source, receiver)
    if name is None or receiver is None or type_name is None:
        return None
    found = _function(source, node, f"{type_name}.{text_of(source, name)}", name, "method")
    found.scope_name = found.name
    found.facts["receiver"] = " ".join(text_of(source, receiver)[1:-1].split())
    return found


def fields_of(source: bytes, body: Node) -> list[str]:
    """Field names of a struct (embedded fields by type); methods and embeds of an interface."""
    names: list[str] = []
    for member in body.named_children:
        if member.type in ("field_declaration", "method_elem"):
            found = member.children_by_field_name("name")
            if found:
                names.extend(text_of(source, name) for name in found)
                continue
            type_node = member.child_by_field_name("type")
            if type_node is not None:
                names.append(text_of(source, type_node))
        elif member.type == "type_elem":
            names.append(text_of(source, member))
    return names


def _type(source: bytes, node: Node, spec: Node) -> Definition | None:
    name = spec.child_by_field_name("name")
    type_node = spec.child_by_field_name("type")
    if name is None or type_node is None or type_node.type not in CONTAINER_TYPES:
        return None
    # A struct's fields sit in a list; an interface's members are its direct children.
    body = type_node.named_children[0] if type_node.type == "struct_type" else type_node
    brace = next((c for c in type_node.children if c.type == "{"), None)
    if body.type == "field_declaration_list":
        brace = body
    return Definition(
        kind=CONTAINER_TYPES[type_node.type],
        name=text_of(source, name),
        node=node,
        name_node=name,
        body=brace,  # the signature is ``type S struct``
        facts={
            # Inside ``type ( ... )`` the span is the spec, which lacks the keyword.
            "signature": ("type " if node is spec else "") + signature_text(source, node, brace),
            "doc": preceding_comment(source, node, COMMENT_TYPES),
            "fields": fields_of(source, body),
        },
    )


def type_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``type S struct {...}``: the span is the declaration when it declares one type."""
    specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
    if len(specs) != 1:
        return None  # the walk reaches each spec of the group on its own
    return _type(source, node, specs[0])


def type_spec(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """One spec of ``type ( A struct{...}; B interface{...} )``."""
    return _type(source, node, node)


def _named_literal(
    source: bytes, node: Node, names: list[Node], values: Node | None
) -> Definition | None:
    if len(names) != 1 or values is None or values.named_child_count != 1:
        return None
    value = values.named_children[0]
    if value.type != "func_literal" or names[0].type != "identifier":
        return None
    return _function_literal(source, node, names[0], value)


def _function_literal(source: bytes, node: Node, name: Node, literal: Node) -> Definition:
    body = literal.child_by_field_name("body")
    return Definition(
        kind="function",
        name=text_of(source, name),
        node=node,
        name_node=name,
        body=body,
        inner=(body,) if body is not None else (),
        facts={
            "params": params_of(source, literal.child_by_field_name("parameters")),
            "returns": collapsed_text(source, literal.child_by_field_name("result")),
            "doc": preceding_comment(source, node, COMMENT_TYPES),
        },
    )


def short_var_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``h := func(...) {...}``."""
    left = node.child_by_field_name("left")
    names = left.named_children if left is not None else []
    return _named_literal(source, node, names, node.child_by_field_name("right"))


def var_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``var h = func(...) {...}``: the declaration is the span when it has one spec."""
    specs = [c for c in node.named_children if c.type == "var_spec"]
    if len(specs) != 1:
        return None
    spec = specs[0]
    return _named_literal(
        source, node, spec.children_by_field_name("name"), spec.child_by_field_name("value")
    )


def var_spec(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """One spec of a grouped ``var ( ... )``."""
    return _named_literal(
        source, node, node.children_by_field_name("name"), node.child_by_field_name("value")
    )


def methods_as_members(spans: list[Span]) -> None:
    """List each struct's methods (declared in this file) as its ``members``."""
    structs = {span.name: span for span in spans if span.kind == "struct"}
    for span in spans:
        if span.kind == "method":
            type_name, _, method = span.name.partition(".")
            struct = structs.get(type_name)
            if struct is not None and struct.facts is not None:
                struct.facts["members"].append(method)


def _render(source: bytes, node: Node, depth: int) -> str:
    """A callee expression with arguments and indexes elided (``a.b().c``, ``m[].f``)."""
    kind = node.type
    if kind in ("identifier", "field_identifier", "package_identifier"):
        return text_of(source, node)
    if depth > 16:
        return "(...)"
    if kind == "selector_expression":
        operand = node.child_by_field_name("operand")
        field_node = node.child_by_field_name("field")
        head = _render(source, operand, depth + 1) if operand is not None else "(...)"
        return f"{head}.{text_of(source, field_node) if field_node is not None else ''}"
    if kind == "call_expression":
        function = node.child_by_field_name("function")
        return (_render(source, function, depth + 1) if function is not None else "(...)") + "()"
    if kind == "index_expression":
        operand = node.child_by_field_name("operand")
        return (_render(source, operand, depth + 1) if operand is not None else "(...)") + "[]"
    if kind == "parenthesized_expression" and node.named_child_count:
        return _render(source, node.named_children[0], depth + 1)
    return "(...)"


_callee_name = callee_renderer(re.compile(rb"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"), _render)


def call_expression(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``f(x)``, ``pkg.F(x)``, ``s.m(x)``: the callee as written."""
    name = _callee_name(source, node.child_by_field_name("function"))
    if name is not None:
        calls[name] = None


def type_conversion_expression(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``F[T](x)``: the grammar reads a one-argument generic call as a conversion."""
    type_node = node.child_by_field_name("type")
    if type_node is not None and type_node.type == "generic_type":
        base = type_node.child_by_field_name("type")
        if base is not None:
            calls[text_of(source, base)] = None


HANDLERS: dict[str, Handler] = {
    "function_declaration": function_declaration,
    "method_declaration": method_declaration,
    "type_declaration": type_declaration,
    "type_spec": type_spec,
    "short_var_declaration": short_var_declaration,
    "var_declaration": var_declaration,
    "var_spec": var_spec,
}

RULES = SpanRules(
    handlers=HANDLERS,
    branch_types=BRANCH_TYPES,
    nesting_types=NESTING_TYPES,
    else_if=ELSE_IF,
    finish=methods_as_members,
    call_handlers={
        "call_expression": call_expression,
        "type_conversion_expression": type_conversion_expression,
    },
)


def create(language: str) -> RulesExtractor:
    """The Go extractor."""
    return RulesExtractor(language, tree_sitter_go.language(), RULES)
