"""TypeScript and TSX spans: the JavaScript ones, typed, plus interfaces, enums and namespaces.

On top of :mod:`spanlens_lsp.indexing.languages.javascript`:

- ``interface I`` -> interface, ``enum E`` -> enum; their members are no spans (they have no
  body to describe) and are listed in the ``fields`` fact instead.
- ``abstract class`` -> class; its ``abstract m(): T`` -> method ``C.m`` with no body.
- Overload signatures (``function f(a: string): void;``) and ``declare`` signatures are no
  spans: the implementation is the span.
- ``namespace N { function f() {} }`` -> function ``N.f`` (the namespace is no span).
- ``params`` carry their annotated types, ``returns`` the return type annotation.
- ``calls`` as in JavaScript; type arguments and non-null assertions are dropped from callees
  (``foo<T>(x)`` -> ``foo``, ``a!.b()`` -> ``a.b``).
"""

from __future__ import annotations

import tree_sitter_typescript
from tree_sitter import Node

from spanlens_lsp.indexing.languages import javascript
from spanlens_lsp.indexing.languages.common import (
    text_of,
)
from spanlens_lsp.indexing.languages.rules import (
    Definition,
    Handler,
    RulesExtractor,
    SpanRules,
)


def abstract_method(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``abstract area(): number`` in an abstract class: a method without a body."""
    if direct_in != "class":
        return None
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return Definition(
        kind="method",
        name=text_of(source, name),
        node=node,
        name_node=name,
        facts=javascript.function_facts(source, node, node),
    )


def interface_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``interface I { ... }``."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return javascript.class_definition(source, node, text_of(source, name), name, node, "interface")


def enum_declaration(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``enum E { A, B = 2 }``."""
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return javascript.class_definition(source, node, text_of(source, name), name, node, "enum")


def namespace(source: bytes, node: Node, direct_in: str | None) -> Definition | None:
    """``namespace N { ... }``: a naming scope for what it declares, no span itself."""
    name = node.child_by_field_name("name")
    body = node.child_by_field_name("body")
    if name is None or body is None:
        return None
    return Definition(kind=None, name=text_of(source, name), node=node, inner=body.named_children)


HANDLERS: dict[str, Handler] = {
    **javascript.HANDLERS,
    "abstract_class_declaration": javascript.class_declaration,
    "public_field_definition": javascript.field_method,
    "abstract_method_signature": abstract_method,
    "interface_declaration": interface_declaration,
    "enum_declaration": enum_declaration,
    "internal_module": namespace,
}
HANDLERS["export_statement"] = javascript.export_handler(HANDLERS)

RULES = SpanRules(
    handlers=HANDLERS,
    branch_types=javascript.BRANCH_TYPES,
    nesting_types=javascript.NESTING_TYPES,
    else_if=javascript.ELSE_IF,
    call_handlers=javascript.CALL_HANDLERS,
)


def create(language: str) -> RulesExtractor:
    """The extractor for ``typescript`` (.ts) or ``tsx`` (.tsx, JSX allowed)."""
    if language == "tsx":
        grammar = tree_sitter_typescript.language_tsx()
    else:
        grammar = tree_sitter_typescript.language_typescript()
    return RulesExtractor(language, grammar, RULES)
