"""Java spans: classes, records, interfaces, enums and their methods and constructors.

Spans and names:

- ``class``/``record`` -> class, ``interface``/``@interface`` -> interface, ``enum`` -> enum;
  a nested or local type is ``Outer.Inner`` (``Outer.method.Local`` for a local class).
- Methods and constructors -> method: ``Foo.bar``, ``Foo.Foo`` (compact record constructors
  too); abstract and interface methods without a body included. Overloads are told apart by
  ordinal.
- A method in an enum constant's body is ``Op.PLUS.apply``.
- Methods of anonymous classes and lambdas are no spans; their control flow counts toward
  the method they sit in.
- The span starts at the declaration's annotations and modifiers; ``doc`` is the Javadoc or
  comment block above it.

``branches`` counts ``if`` (each ``else if`` too), loops, ``case``/``default`` labels,
``catch`` and ``?:``; ``nesting`` is the depth of ``if``, loops, ``switch`` and ``try`` inside
one another, an ``else if`` chain as deep as its first ``if``.

``calls`` lists each method's and constructor's callees once, in first-call order (at most
:data:`~spanlens_lsp.indexing.languages.common.MAX_CALLS`), as written with arguments elided:
``System.out.println``, ``this.save``, ``super.close``, ``a.b().c``, ``items[].size``.
``new Foo<>()`` is a call of ``Foo`` (``new java.util.HashMap<>()`` of ``java.util.HashMap``),
``this(...)`` / ``super(...)`` in a constructor of ``this`` / ``super``; type arguments go
(``Collections.<T>emptyList()`` -> ``Collections.emptyList``); a string literal receiver reads
``String``. Method references (``String::valueOf``) are no calls. Calls in lambdas and in
anonymous classes count for the method they sit in.
"""

from __future__ import annotations

import re
from typing import Any

import tree_sitter_java
from tree_sitter import Node

from spanlens_lsp.indexing.languages.common import (
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
TYPE_KINDS = {
    "class_declaration": "class",
    "record_declaration": "class",
    "interface_declaration": "interface",
    "annotation_type_declaration": "interface",
    "enum_declaration": "enum",
}
#: Where a method is a span: directly in a named type's body, or in an enum constant's.
METHOD_OWNERS = frozenset({"class", "interface", "enum", "scope"})

BRANCH_TYPES = frozenset(
    {
        "if_statement",
        "for_statement",
        "enhanced_for_statement",
        "while_statement",
        "do_statement",
        "switch_label",
        "catch_clause",
        "ternary_expression",
    }
)
NESTING_TYPES = frozenset(
    {
        "if_statement",
        "for_statement",
        "enhanced_for_statement",
        "while_statement",
        "do_statement",
        "switch_expression",
        "try_statement",
        "try_with_resources_statement",
    }
)
ELSE_IF = frozenset({("if_statement", "if_statement")})


def params_of(source: bytes, parameters: Node | None) -> list[dict[str, Any]]:
    """The ``params`` fact: ``int... rest`` has type ``int...``."""
    if parameters is None:
        return []
    params = []
    for param in parameters.named_children:
        if param.type == "formal_parameter":
            name = param.child_by_field_name("name")
            type_text = collapsed_text(source, param.child_by_field_name("type"))
            dims = param.child_by_field_name("dimensions")
            if dims is not None and type_text is not None:
                type_text += text_of(source, dims)
            params.append(param_fact(text_of(source, name) if name is not None else "_", type_text))
        elif param.type == "spread_parameter":
            declarator = next(
                (c for c in param.named_children if c.type == "variable_declarator"), None
            )
            name = declarator.child_by_field_name("name") if declarator is not None else None
            type_node = next(
                (
                    c
                    for c in param.named_children
                    if c.type not in ("modifiers", "variable_declarator")
                ),
                None,
            )
            type_text = collapsed_text(source, type_node)
            params.append(
                param_fact(
                    text_of(source, name) if name is not None else "_",
                    type_text + "..." if type_text is not None else None,
                )
            )
    return params


def method(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """A method or constructor directly in a named type (not in an anonymous class)."""
    if direct_in not in METHOD_OWNERS:
        return None
    name = node.child_by_field_name("name")
    if name is None:
        return None
    body = node.child_by_field_name("body")
    return Definition(
        kind="method",
        name=text_of(source, name),
        node=node,
        name_node=name,
        body=body,
        inner=(body,) if body is not None else (),
        facts={
            "params": params_of(source, node.child_by_field_name("parameters")),
            # Constructors have no return type.
            "returns": collapsed_text(source, node.child_by_field_name("type")),
            "doc": preceding_comment(source, node, COMMENT_TYPES),
        },
    )


def fields_of(source: bytes, node: Node, members: list[Node]) -> list[str]:
    """A record's components, then the fields, constants and enum constants of the body."""
    components = params_of(source, node.child_by_field_name("parameters"))
    names = [component["name"] for component in components]
    for member in members:
        if member.type in ("field_declaration", "constant_declaration"):
            for declarator in member.children_by_field_name("declarator"):
                name = declarator.child_by_field_name("name")
                if name is not None:
                    names.append(text_of(source, name))
        elif member.type == "enum_constant":
            name = member.child_by_field_name("name")
            if name is not None:
                names.append(text_of(source, name))
    return names


def type_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """A class, record, interface, annotation type or enum, walked for its members."""
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    if name is None or body is None:
        return None
    members = body.named_children
    if node.type == "enum_declaration":
        # Methods and fields of an enum follow its constants, after a ``;``.
        members = [
            member
            for child in members
            for member in (
                child.named_children if child.type == "enum_body_declarations" else [child]
            )
        ]
    return Definition(
        kind=TYPE_KINDS[node.type],
        name=text_of(source, name),
        node=node,
        name_node=name,
        body=body,
        inner=members,
        facts={
            "doc": preceding_comment(source, node, COMMENT_TYPES),
            "fields": fields_of(source, node, members),
        },
    )


def enum_constant(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``PLUS { int apply() {...} }``: a naming scope for the methods in its body."""
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    if direct_in != "enum" or name is None or body is None:
        return None
    return Definition(kind=None, name=text_of(source, name), node=node, inner=body.named_children)


_DOTTED = re.compile(rb"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")


def _render(source: bytes, node: Node, depth: int) -> str:
    """A receiver expression with arguments and indexes elided (``a.b().c``, ``xs[].f``)."""
    kind = node.type
    if kind in ("identifier", "this", "super", "type_identifier"):
        return text_of(source, node)
    if depth > 16:
        return "(...)"
    if kind == "field_access":
        obj = node.child_by_field_name("object")
        field_node = node.child_by_field_name("field")
        head = _render(source, obj, depth + 1) if obj is not None else "(...)"
        return f"{head}.{text_of(source, field_node) if field_node is not None else ''}"
    if kind == "method_invocation":
        return _invoked(source, node, depth) + "()"
    if kind == "object_creation_expression":
        return f"new {_created(source, node) or '(...)'}()"
    if kind == "array_access":
        array = node.child_by_field_name("array")
        return (_render(source, array, depth + 1) if array is not None else "(...)") + "[]"
    if kind == "parenthesized_expression" and node.named_child_count:
        return _render(source, node.named_children[0], depth + 1)
    if kind in ("string_literal", "text_block"):
        return "String"
    return "(...)"


def _invoked(source: bytes, node: Node, depth: int) -> str:
    """The method a ``method_invocation`` calls: ``obj.name`` or ``name``."""
    name = node.child_by_field_name("name")
    method_name = text_of(source, name) if name is not None else "(...)"
    obj = node.child_by_field_name("object")
    if obj is None:
        return method_name
    raw = source[obj.start_byte : obj.end_byte]
    head = raw.decode("ascii") if _DOTTED.fullmatch(raw) else _render(source, obj, depth + 1)
    return f"{head}.{method_name}"


def _created(source: bytes, node: Node) -> str | None:
    """The class ``new`` instantiates, without type arguments."""
    type_node = node.child_by_field_name("type")
    if type_node is not None and type_node.type == "generic_type" and type_node.named_child_count:
        type_node = type_node.named_children[0]
    return " ".join(text_of(source, type_node).split()) if type_node is not None else None


def method_invocation(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``foo()``, ``this.save()``, ``System.out.println(x)``: the method as written."""
    calls[_invoked(source, node, 0)] = None


def object_creation_expression(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``new Foo<>(x)`` calls ``Foo``."""
    name = _created(source, node)
    if name is not None:
        calls[name] = None


def explicit_constructor_invocation(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``this(x)`` / ``super(x)`` at the top of a constructor."""
    constructor = node.child_by_field_name("constructor")
    if constructor is not None:
        calls[text_of(source, constructor)] = None


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(TYPE_KINDS, type_declaration),
    "method_declaration": method,
    "constructor_declaration": method,
    "compact_constructor_declaration": method,
    "enum_constant": enum_constant,
}

RULES = SpanRules(
    handlers=HANDLERS,
    branch_types=BRANCH_TYPES,
    nesting_types=NESTING_TYPES,
    else_if=ELSE_IF,
    call_handlers={
        "method_invocation": method_invocation,
        "object_creation_expression": object_creation_expression,
        "explicit_constructor_invocation": explicit_constructor_invocation,
    },
)


def create(language: str) -> RulesExtractor:
    """The Java extractor."""
    return RulesExtractor(language, tree_sitter_java.language(), RULES)
