"""Python extraction's building blocks: the language, the per-definition frame of the sweep,
and small node helpers that turn parameters, decorators, docstrings and targets into facts."""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any

import tree_sitter_python
from tree_sitter import Language, Node

from spanlens_lsp.indexing.languages.common import text_of

PYTHON_LANGUAGE = Language(tree_sitter_python.language())

DOTTED_NAME = re.compile(rb"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
IDENTIFIER = re.compile(r"[^\W\d]\w*")
_STRING_PREFIX = re.compile(r"[A-Za-z]*")

EXTRAS = frozenset({"comment", "line_continuation"})
_PARAM_WRAPPERS = frozenset({"typed_parameter", "typed_default_parameter", "default_parameter"})


class Frame:
    """One ``def`` or ``class`` while its file is being extracted."""

    __slots__ = (
        "branches",
        "calls",
        "children",
        "def_node",
        "end",
        "globals",
        "is_class",
        "name",
        "name_node",
        "nest_ends",
        "nesting",
        "nonlocals",
        "parent",
        "qualname",
        "raises",
        "start",
        "suspect",
    )

    def __init__(self, source: bytes, def_node: Node, parent: Frame | None) -> None:
        self.def_node = def_node
        self.parent = parent
        self.is_class = def_node.type == "class_definition"
        name_node = self.name_node = def_node.child_by_field_name("name")
        name: str = (
            source[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
            if name_node is not None
            else ""
        )
        self.name = name
        self.qualname: str = f"{parent.qualname}.{name}" if parent is not None else name
        body = def_node.child_by_field_name("body")
        # A match belongs to the innermost frame whose body holds it; one in a header (a
        # default value, a base class) runs in, and belongs to, the enclosing frame. A frame
        # without a body (a syntax error) owns its whole node.
        self.start = body.start_byte if body is not None else def_node.start_byte
        self.end = def_node.end_byte
        self.children: list[Frame] = []
        self.calls: dict[str, None] = {}
        self.raises: dict[str, None] = {}
        self.globals: list[str] = []
        self.nonlocals: list[str] = []
        self.nest_ends: list[int] = []
        self.nesting = 0
        self.branches = 0
        # Set when this frame's own structure is broken: what tree-sitter nests under it
        # then (often the following definitions) cannot be trusted, so it is not emitted.
        self.suspect = False


# --- small node helpers --------------------------------------------------------------------


def first_named(node: Node) -> Node | None:
    """The first named child that is not a comment or line continuation."""
    if not node.named_child_count:
        return None
    child: Node | None = node.named_child(0)
    while child is not None and child.type in EXTRAS:
        child = child.next_named_sibling
    return child


def collapse_spaces(text: str) -> str:
    return " ".join(text.split())


def expression_name(source: bytes, node: Node) -> str:
    """A short name for a callee or exception: ``os.path.join``, ``super().__init__``."""
    raw = source[node.start_byte : node.end_byte]
    if DOTTED_NAME.fullmatch(raw):
        return raw.decode("ascii")
    return render_node(source, node, 0)


def render_node(source: bytes, node: Node, depth: int) -> str:
    """Render an expression with call arguments and subscripts elided."""
    kind = node.type
    if kind == "identifier":
        return text_of(source, node)
    if depth > 16:
        return "(...)"
    if kind == "attribute":
        obj = node.child_by_field_name("object")
        attr = node.child_by_field_name("attribute")
        head = render_node(source, obj, depth + 1) if obj is not None else "(...)"
        return f"{head}.{text_of(source, attr) if attr is not None else ''}"
    if kind == "call":
        function = node.child_by_field_name("function")
        return (
            render_node(source, function, depth + 1) if function is not None else "(...)"
        ) + "()"
    if kind == "subscript":
        value = node.child_by_field_name("value")
        return (render_node(source, value, depth + 1) if value is not None else "(...)") + "[]"
    if kind in ("string", "concatenated_string"):
        return "str"
    if kind == "parenthesized_expression":
        inner = first_named(node)
        return render_node(source, inner, depth + 1) if inner is not None else "(...)"
    return "(...)"


# --- facts ---------------------------------------------------------------------------------


def parameter_facts(source: bytes, params_node: Node | None) -> tuple[list[dict[str, Any]], str]:
    """The parameters as fact dicts, and the parameter list as the signature shows it."""
    if params_node is None:
        return [], "()"
    items = [c for c in params_node.named_children if c.type not in EXTRAS]
    text = text_of(source, params_node)
    if "\n" in text or "#" in text:
        # Laid out over lines (perhaps with comments): rebuild it from the parameters.
        text = f"({', '.join(collapse_spaces(text_of(source, c)) for c in items)})"
    else:
        text = collapse_spaces(text)
    kind = (
        "positional_only" if any(c.type == "positional_separator" for c in items) else "positional"
    )
    params: list[dict[str, Any]] = []
    for item in items:
        item_type = item.type
        if item_type == "positional_separator":
            kind = "positional"
            continue
        if item_type == "keyword_separator":
            kind = "keyword_only"
            continue
        annotation = default = None
        target = item
        if item_type in _PARAM_WRAPPERS:
            type_node = item.child_by_field_name("type")
            value_node = item.child_by_field_name("value")
            if type_node is not None:
                annotation = collapse_spaces(text_of(source, type_node))
            if value_node is not None:
                default = collapse_spaces(text_of(source, value_node))
            target = item.child_by_field_name("name") or first_named(item) or item
        param_kind = kind
        if target.type == "list_splat_pattern":
            param_kind = "var_positional"
            kind = "keyword_only"
        elif target.type == "dictionary_splat_pattern":
            param_kind = "var_keyword"
        if target.type in ("list_splat_pattern", "dictionary_splat_pattern"):
            target = first_named(target) or target
        params.append(
            {
                "name": text_of(source, target),
                "annotation": annotation,
                "default": default,
                "kind": param_kind,
            }
        )
    return params, text


def decorator_texts(source: bytes, span_node: Node) -> list[str]:
    if span_node.type != "decorated_definition":
        return []
    out: list[str] = []
    for child in span_node.named_children:
        if child.type == "decorator":
            expr = first_named(child)
            if expr is not None:
                out.append(collapse_spaces(text_of(source, expr)))
    return out


def docstring_of(source: bytes, body: Node | None) -> str | None:
    """The cleaned docstring, as ``ast.get_docstring`` would give it, or None."""
    if body is None:
        return None
    stmt = first_named(body)
    if stmt is None or stmt.type != "expression_statement" or stmt.named_child_count != 1:
        return None
    expr = stmt.named_child(0)
    if expr is None or expr.type not in ("string", "concatenated_string"):
        return None
    value = _string_value(text_of(source, expr), expr.type == "string")
    if value is None:
        return None
    return inspect.cleandoc(value) or None


def _string_value(text: str, single: bool) -> str | None:
    """The value of a string literal; None for bytes and f-strings (never docstrings)."""
    if single:
        prefix = _STRING_PREFIX.match(text)
        letters = prefix.group().lower() if prefix else ""
        if "b" in letters or "f" in letters or "t" in letters:
            return None
        quoted = text[len(letters) :]
        quote = quoted[:3] if quoted[:3] in ('"""', "'''") else quoted[:1]
        content = quoted[len(quote) : len(quoted) - len(quote)]
        if "r" in letters or "\\" not in content:
            return content
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def class_attributes(source: bytes, body: Node | None) -> list[str]:
    """Names assigned directly in a class body (``x = 1``, ``x: int``, ``a, b = ...``)."""
    if body is None:
        return []
    names: dict[str, None] = {}
    for stmt in body.named_children:
        if stmt.type != "expression_statement":
            continue
        expr = first_named(stmt)
        while expr is not None and expr.type == "assignment":
            left = expr.child_by_field_name("left")
            if left is not None:
                for name in _target_names(source, left):
                    names[name] = None
            expr = expr.child_by_field_name("right")
    return list(names)


def _target_names(source: bytes, target: Node) -> list[str]:
    if target.type == "identifier":
        return [text_of(source, target)]
    if target.type in ("pattern_list", "tuple_pattern", "list_pattern"):
        out: list[str] = []
        for child in target.named_children:
            out.extend(_target_names(source, child))
        return out
    return []
