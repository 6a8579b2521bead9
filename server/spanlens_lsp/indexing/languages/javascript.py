"""JavaScript spans: functions, generators, classes and their methods, named function values.

Spans and names:

- ``function f`` / ``function* g`` -> function ``f``; one declared in another span is
  ``outer.inner``.
- ``class C`` -> class; its methods (getters, setters and ``constructor`` included) and fields
  holding a function (``handle = () => {}``) -> method ``C.name``.
- ``const f = () => {}`` / ``= function () {}`` -> function named by the variable; ``const C =
  class {}`` -> class ``C``. The span is the whole declaration when it declares one name, else
  that one declarator.
- ``export`` changes nothing: the span is the declaration inside the ``export_statement``
  (range, name range and hash), while its doc comment is the one above the ``export``.
  ``export default function () {}`` (or class, or arrow) with no name is named ``default``.
- Object-literal methods and anonymous callbacks are no spans; their control flow counts toward
  the span they sit in.

``branches`` counts decision points: ``if`` (each ``else if`` too), loops, ``case`` (not
``default``), ``catch`` and ``?:``. ``nesting`` is the depth of ``if``, loops, ``switch`` and
``try`` inside one another, with an ``else if`` chain as deep as its first ``if``.

``calls`` lists each function's and method's callees once, in first-call order (at most
:data:`~spanlens_lsp.indexing.languages.common.MAX_CALLS`), as written with arguments and indexes
elided: ``this.save``, ``console.log``, ``a.b().c``, ``handlers[]``, ``super``, ``import``.
``new Foo()`` is a call of ``Foo`` (as ``Foo()`` is in Python); optional chaining reads as a
plain member (``a?.b()`` -> ``a.b``), TypeScript's type arguments and ``!`` go
(``foo<T>(x)`` -> ``foo``), a string literal receiver reads ``String`` (``"a".trim`` ->
``String.trim``) and other expressions ``(...)``. Tagged templates are calls of their tag.
Calls in anonymous callbacks count for the span they sit in; a named function value
(``const f = () => ...``) inside a span keeps its own.
"""

from __future__ import annotations

import re
from typing import Any

import tree_sitter_javascript
from tree_sitter import Node

from spanlens_lsp.indexing.languages.common import (
    callee_renderer,
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

COMMENT_TYPES = frozenset({"comment"})

#: Values that make a variable or class field a function span.
FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "generator_function", "function"}
)
CLASS_VALUES = frozenset({"class"})

BRANCH_TYPES = frozenset(
    {
        "if_statement",
        "for_statement",
        "for_in_statement",
        "while_statement",
        "do_statement",
        "switch_case",
        "catch_clause",
        "ternary_expression",
    }
)
NESTING_TYPES = frozenset(
    {
        "if_statement",
        "for_statement",
        "for_in_statement",
        "while_statement",
        "do_statement",
        "switch_statement",
        "try_statement",
    }
)
ELSE_IF = frozenset({("else_clause", "if_statement")})


def doc_of(source: bytes, anchor: Node) -> str | None:
    """The comment block directly above ``anchor`` (JSDoc or ``//`` lines)."""
    return preceding_comment(source, anchor, COMMENT_TYPES)


def type_text(source: bytes, annotation: Node | None) -> str | None:
    """A TypeScript type annotation without its leading colon (None for plain JavaScript)."""
    if annotation is None:
        return None
    text = " ".join(text_of(source, annotation).split())
    return text[1:].lstrip() if text.startswith(":") else text


def params_of(source: bytes, function: Node) -> list[dict[str, Any]]:
    """The ``params`` fact: name (the pattern as written, ``...rest`` included), type, default."""
    single = function.child_by_field_name("parameter")
    if single is not None:  # x => ...
        return [param_fact(text_of(source, single))]
    parameters = function.child_by_field_name("parameters")
    if parameters is None:
        return []
    params = []
    for param in parameters.named_children:
        kind = param.type
        if kind in ("required_parameter", "optional_parameter"):
            pattern = param.child_by_field_name("pattern")
            value = param.child_by_field_name("value")
            params.append(
                param_fact(
                    text_of(source, pattern) if pattern is not None else text_of(source, param),
                    type_text(source, param.child_by_field_name("type")),
                    text_of(source, value) if value is not None else None,
                )
            )
        elif kind == "assignment_pattern":
            left = param.child_by_field_name("left")
            right = param.child_by_field_name("right")
            params.append(
                param_fact(
                    text_of(source, left) if left is not None else text_of(source, param),
                    None,
                    text_of(source, right) if right is not None else None,
                )
            )
        elif kind not in ("comment", "decorator"):
            params.append(param_fact(text_of(source, param)))
    return params


def function_facts(source: bytes, function: Node, anchor: Node) -> dict[str, Any]:
    """params, returns and doc of a function-like node, its doc comment above ``anchor``."""
    return {
        "params": params_of(source, function),
        "returns": type_text(source, function.child_by_field_name("return_type")),
        "doc": doc_of(source, anchor),
    }


def _function(
    source: bytes,
    node: Node,
    function: Node,
    name: str,
    name_node: Node | None,
    kind: str,
    anchor: Node,
) -> Definition:
    body = function.child_by_field_name("body")
    return Definition(
        kind=kind,
        name=name,
        node=node,
        name_node=name_node,
        body=body,
        inner=(body,) if body is not None else (),
        facts=function_facts(source, function, anchor),
    )


def class_definition(
    source: bytes, node: Node, name: str, name_node: Node | None, anchor: Node, kind: str = "class"
) -> Definition:
    """A class (or TypeScript interface or enum, by ``kind``), walked for its member spans."""
    body = node.child_by_field_name("body")
    members = body.named_children if body is not None else []
    return Definition(
        kind=kind,
        name=name,
        node=node,
        name_node=name_node,
        body=body,
        inner=members if kind == "class" else (),
        facts={"doc": doc_of(source, anchor), "fields": fields_of(source, members, kind)},
    )


def fields_of(source: bytes, members: list[Node], kind: str) -> list[str]:
    """The ``fields`` fact: what a body declares that is no span (fields, properties, enum
    members, interface method signatures)."""
    names = []
    for member in members:
        member_type = member.type
        if member_type == "property_identifier":  # an enum member without a value
            names.append(text_of(source, member))
            continue
        if member_type in ("field_definition", "public_field_definition"):
            value = member.child_by_field_name("value")
            if value is not None and value.type in FUNCTION_VALUES:
                continue  # a method span
        elif member_type not in ("property_signature", "enum_assignment") and not (
            member_type == "method_signature" and kind == "interface"
        ):
            continue
        name = member.child_by_field_name("property") or member.child_by_field_name("name")
        if name is not None:
            names.append(text_of(source, name))
    return names


def with_doc_from(found: Definition | None, source: bytes, anchor: Node) -> Definition | None:
    """``found`` with its doc comment taken from above ``anchor`` (an ``export``) instead."""
    if found is not None and "doc" in found.facts:
        found.facts["doc"] = doc_of(source, anchor)
    return found


def function_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``function f() {}`` and ``function* g() {}``."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return _function(source, node, node, text_of(source, name), name, "function", node)


def class_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``class C {}`` (and TypeScript's ``abstract class``)."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return class_definition(source, node, text_of(source, name), name, node)


def method(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """A class method; methods of object literals are no spans."""
    if direct_in != "class":
        return None
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return _function(source, node, node, text_of(source, name), name, "method", node)


def field_method(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """A class field holding a function: ``handle = () => {}``."""
    if direct_in != "class":
        return None
    value = node.child_by_field_name("value")
    name = node.child_by_field_name("property") or node.child_by_field_name("name")
    if value is None or name is None or value.type not in FUNCTION_VALUES:
        return None
    return _function(source, node, value, text_of(source, name), name, "method", node)


def _named_value(source: bytes, node: Node, declarator: Node, anchor: Node) -> Definition | None:
    name = declarator.child_by_field_name("name")
    value = declarator.child_by_field_name("value")
    if name is None or value is None or name.type != "identifier":
        return None
    if value.type in FUNCTION_VALUES:
        return _function(source, node, value, text_of(source, name), name, "function", anchor)
    if value.type in CLASS_VALUES:
        found = class_definition(source, value, text_of(source, name), name, anchor)
        found.node = node
        return found
    return None


def variable_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``const f = () => {}``: the whole declaration is the span when it declares one name."""
    declarators = [c for c in node.named_children if c.type == "variable_declarator"]
    if len(declarators) != 1:
        return None  # the walk reaches each declarator on its own
    return _named_value(source, node, declarators[0], node)


def variable_declarator(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """One declarator of ``const a = () => {}, b = () => {}``."""
    return _named_value(source, node, node, node)


def export_handler(handlers: dict[str, Handler]) -> Handler:
    """The ``export_statement`` handler for a language whose declarations ``handlers`` knows."""

    def export_statement(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
        inner = node.child_by_field_name("declaration")
        if inner is not None:
            handler = handlers.get(inner.type)
            if handler is None:
                return None
            return with_doc_from(handler(source, inner, direct_in), source, node)
        value = node.child_by_field_name("value")  # export default <expression>
        if value is None:
            return None
        name_node = value.child_by_field_name("name")
        if name_node is not None:
            name = text_of(source, name_node)
        else:  # the name range of an anonymous default export is its ``default`` keyword
            name = "default"
            name_node = next((c for c in node.children if c.type == "default"), None)
        if value.type in FUNCTION_VALUES:
            return _function(source, value, value, name, name_node, "function", node)
        if value.type in CLASS_VALUES:
            return class_definition(source, value, name, name_node, node)
        return None

    return export_statement


_NAMES = frozenset(
    {
        "identifier",
        "property_identifier",
        "private_property_identifier",
        "this",
        "super",
        "import",
    }
)
_UNWRAP = frozenset({"parenthesized_expression", "non_null_expression"})


def _render(source: bytes, node: Node, depth: int) -> str:
    """A callee expression with arguments and indexes elided (``a.b().c``, ``m[].f``)."""
    kind = node.type
    if kind in _NAMES:
        return text_of(source, node)
    if depth > 16:
        return "(...)"
    if kind == "member_expression":
        obj = node.child_by_field_name("object")
        prop = node.child_by_field_name("property")
        head = _render(source, obj, depth + 1) if obj is not None else "(...)"
        return f"{head}.{text_of(source, prop) if prop is not None else ''}"
    if kind == "call_expression":
        function = node.child_by_field_name("function")
        return (_render(source, function, depth + 1) if function is not None else "(...)") + "()"
    if kind == "new_expression":
        constructor = node.child_by_field_name("constructor")
        return f"new {_render(source, constructor, depth + 1) if constructor else '(...)'}()"
    if kind == "subscript_expression":
        obj = node.child_by_field_name("object")
        return (_render(source, obj, depth + 1) if obj is not None else "(...)") + "[]"
    if kind in _UNWRAP and node.named_child_count:
        return _render(source, node.named_children[0], depth + 1)
    if kind in ("string", "template_string"):
        return "String"
    return "(...)"


_callee_name = callee_renderer(re.compile(rb"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*"), _render)


def call_expression(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``f(x)``, ``this.save()``, ``a.b().c()``, ``tag`...```: the callee as written."""
    function = node.child_by_field_name("function")
    if function is not None and function.type == "await_expression" and function.named_child_count:
        # TypeScript reads ``await a.f<T>(x)`` as a call of ``await a.f``: the call is a.f's.
        function = function.named_children[0]
    name = _callee_name(source, function)
    if name is not None:
        calls[name] = None


def new_expression(source: bytes, node: Node, calls: dict[str, None]) -> None:
    """``new Foo(x)`` calls ``Foo``."""
    name = _callee_name(source, node.child_by_field_name("constructor"))
    if name is not None:
        calls[name] = None


CALL_HANDLERS = {"call_expression": call_expression, "new_expression": new_expression}

HANDLERS: dict[str, Handler] = {
    "function_declaration": function_declaration,
    "generator_function_declaration": function_declaration,
    "class_declaration": class_declaration,
    "method_definition": method,
    "field_definition": field_method,
    "lexical_declaration": variable_declaration,
    "variable_declaration": variable_declaration,
    "variable_declarator": variable_declarator,
}
HANDLERS["export_statement"] = export_handler(HANDLERS)

RULES = SpanRules(
    handlers=HANDLERS,
    branch_types=BRANCH_TYPES,
    nesting_types=NESTING_TYPES,
    else_if=ELSE_IF,
    call_handlers=CALL_HANDLERS,
)


def create(language: str) -> RulesExtractor:
    """The JavaScript (and JSX) extractor."""
    return RulesExtractor(language, tree_sitter_javascript.language(), RULES)
