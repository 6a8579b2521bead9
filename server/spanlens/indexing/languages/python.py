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
  ``os.remove``/``rename``/``makedirs``/..., ``shutil.*``, ``.write_text()``, ``.unlink()``
  and other pathlib-style methods on any receiver), ``network`` (``requests.``, ``httpx.``,
  ``aiohttp.``, ``urllib.request.``, ``socket.``, ``http.client.``, ...), ``subprocess``
  (``subprocess.*``, ``os.system``/``popen``/``exec*``/``spawn*``), ``environment`` (reads
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

import ast
import inspect
import re
import threading
from collections.abc import Container
from typing import Any

import tree_sitter_python
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from spanlens.indexing.hashing import content_hash
from spanlens.indexing.languages.common import (
    MAX_CALLS,
    approx_tokens,
    line_count,
    make_span,
    reparse,
    skeleton_text,
    text_of,
)
from spanlens.indexing.spans import Extraction, ParsedSource, Span, assign_ordinals

_LANGUAGE = Language(tree_sitter_python.language())

# One pattern per thing a span's facts need. ``matches`` come back in source order (by the
# node each pattern captures), which lets one sweep hand every match to its enclosing span.
_FILE_QUERY = Query(
    _LANGUAGE,
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

# Run only over the few bodies that declare ``global``/``nonlocal`` names.
_TARGET_QUERY = Query(
    _LANGUAGE,
    """
    (assignment left: (_) @target)
    (augmented_assignment left: (_) @target)
    (for_statement left: (_) @target)
    (for_in_clause left: (_) @target)
    (delete_statement (_) @target)
    (named_expression name: (_) @target)
    """,
)

# Run only over the few bodies whose text mentions ``environ``.
_ENVIRON_QUERY = Query(_LANGUAGE, '((attribute) @environ (#eq? @environ "os.environ"))')

_DOTTED_NAME = re.compile(rb"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_IDENTIFIER = re.compile(r"[^\W\d]\w*")
_STRING_PREFIX = re.compile(r"[A-Za-z]*")

_EXTRAS = frozenset({"comment", "line_continuation"})
_PARAM_WRAPPERS = frozenset({"typed_parameter", "typed_default_parameter", "default_parameter"})


class _Frame:
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

    def __init__(self, source: bytes, def_node: Node, parent: _Frame | None) -> None:
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
        self.children: list[_Frame] = []
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


class PythonExtractor:
    """Extracts Python spans and facts; one parser per thread, queries shared."""

    def __init__(self, language: str = "python") -> None:
        self.language = language
        self._local = threading.local()

    def _parser(self) -> Parser:
        parser: Parser | None = getattr(self._local, "parser", None)
        if parser is None:
            parser = Parser(_LANGUAGE)
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
                frame.suspect = _has_own_error(node)
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


def _sweep(source: bytes, matches: list[tuple[int, dict[str, list[Node]]]]) -> list[_Frame] | None:
    """Frames for every def/class, with the calls, raises and control flow of their bodies.

    ``matches`` must be in source order; None when they are not.
    """
    frames: list[_Frame] = []
    stack: list[_Frame] = []  # the defs/classes enclosing the current position
    top_end = -1  # where the innermost open frame ends (-1: none open)
    last = 0
    dotted = _DOTTED_NAME.fullmatch
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
            frame = _Frame(source, node, parent)
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
            # Inline fast path of _expression_name: most callees are plain dotted names.
            raw = source[pos : node.end_byte]
            if dotted(raw):
                owner.calls[raw.decode("ascii")] = None
            else:
                owner.calls[_render(source, node, 0)] = None
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
            exc = _first_named(node)
            if exc is None:
                continue  # a bare ``raise`` re-raises what is being handled
            if exc.type == "call":
                exc = exc.child_by_field_name("function") or exc
            owner.raises[_expression_name(source, exc)] = None
        else:
            names = [text_of(source, c) for c in node.named_children if c.type == "identifier"]
            if node.type == "global_statement":
                owner.globals.extend(names)
            else:
                owner.nonlocals.extend(names)
    return frames


# --- spans ---------------------------------------------------------------------------------


def _function_span(
    source: bytes, frame: _Frame, span_node: Node, known_hashes: Container[str]
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
    params, params_text = _params(source, params_node)
    returns_node = node.child_by_field_name("return_type")
    returns = _collapse(text_of(source, returns_node)) if returns_node is not None else None
    type_params = node.child_by_field_name("type_parameters")
    signature = "".join(
        [
            "async def " if is_async else "def ",
            frame.name,
            _collapse(text_of(source, type_params)) if type_params is not None else "",
            params_text,
            f" -> {returns}" if returns is not None else "",
        ]
    )
    calls = list(frame.calls)
    facts: dict[str, Any] = {
        "signature": signature,
        "params": params,
        "returns": returns,
        "decorators": _decorators(source, span_node),
        "docstring": _docstring(source, node.child_by_field_name("body")),
        "raises": list(frame.raises),
        "calls": calls[:MAX_CALLS],
        "side_effects": _side_effects(source, frame, calls),
        "is_async": is_async,
        "lines": line_count(span_node),
        "nesting": frame.nesting,
        "branches": frame.branches,
        "tokens": approx_tokens(text),
    }
    return make_span(source, span_node, name_node, frame.qualname, kind, facts, digest)


def _class_span(
    source: bytes, frame: _Frame, span_node: Node, known_hashes: Container[str]
) -> Span:
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
            if arg.type in _EXTRAS:
                continue
            arg_text = _collapse(text_of(source, arg))
            arguments.append(arg_text)
            if arg.type not in ("keyword_argument", "dictionary_splat"):
                bases.append(arg_text)
    signature = "".join(
        [
            "class ",
            frame.name,
            _collapse(text_of(source, type_params)) if type_params is not None else "",
            f"({', '.join(arguments)})" if superclasses is not None else "",
            ":",
        ]
    )
    facts: dict[str, Any] = {
        "signature": signature,
        "bases": bases,
        "decorators": _decorators(source, span_node),
        "docstring": _docstring(source, body),
        "members": list(dict.fromkeys(c.name for c in frame.children)),
        "attributes": _class_attributes(source, body),
        "lines": line_count(span_node),
        "tokens": approx_tokens(skeleton),
    }
    return make_span(source, span_node, frame.name_node, frame.qualname, "class", facts, digest)


# --- facts ---------------------------------------------------------------------------------


def _params(source: bytes, params_node: Node | None) -> tuple[list[dict[str, Any]], str]:
    """The parameters as fact dicts, and the parameter list as the signature shows it."""
    if params_node is None:
        return [], "()"
    items = [c for c in params_node.named_children if c.type not in _EXTRAS]
    text = text_of(source, params_node)
    if "\n" in text or "#" in text:
        # Laid out over lines (perhaps with comments): rebuild it from the parameters.
        text = f"({', '.join(_collapse(text_of(source, c)) for c in items)})"
    else:
        text = _collapse(text)
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
                annotation = _collapse(text_of(source, type_node))
            if value_node is not None:
                default = _collapse(text_of(source, value_node))
            target = item.child_by_field_name("name") or _first_named(item) or item
        param_kind = kind
        if target.type == "list_splat_pattern":
            param_kind = "var_positional"
            kind = "keyword_only"
        elif target.type == "dictionary_splat_pattern":
            param_kind = "var_keyword"
        if target.type in ("list_splat_pattern", "dictionary_splat_pattern"):
            target = _first_named(target) or target
        params.append(
            {
                "name": text_of(source, target),
                "annotation": annotation,
                "default": default,
                "kind": param_kind,
            }
        )
    return params, text


def _decorators(source: bytes, span_node: Node) -> list[str]:
    if span_node.type != "decorated_definition":
        return []
    out: list[str] = []
    for child in span_node.named_children:
        if child.type == "decorator":
            expr = _first_named(child)
            if expr is not None:
                out.append(_collapse(text_of(source, expr)))
    return out


def _docstring(source: bytes, body: Node | None) -> str | None:
    """The cleaned docstring, as ``ast.get_docstring`` would give it, or None."""
    if body is None:
        return None
    stmt = _first_named(body)
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


def _class_attributes(source: bytes, body: Node | None) -> list[str]:
    """Names assigned directly in a class body (``x = 1``, ``x: int``, ``a, b = ...``)."""
    if body is None:
        return []
    names: dict[str, None] = {}
    for stmt in body.named_children:
        if stmt.type != "expression_statement":
            continue
        expr = _first_named(stmt)
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


# Fixed call names and prefixes per side-effect category. A prefix ends with ".", so
# ``socket.`` matches ``socket.create_connection`` but not ``socketserver.x``.
_EFFECT_NAMES: dict[str, str] = {
    "open": "file_io",
    "io.open": "file_io",
    "os.open": "file_io",
    "codecs.open": "file_io",
    "os.remove": "file_io",
    "os.unlink": "file_io",
    "os.rename": "file_io",
    "os.renames": "file_io",
    "os.replace": "file_io",
    "os.mkdir": "file_io",
    "os.makedirs": "file_io",
    "os.rmdir": "file_io",
    "os.removedirs": "file_io",
    "os.truncate": "file_io",
    "os.symlink": "file_io",
    "os.link": "file_io",
    "os.chmod": "file_io",
    "os.chown": "file_io",
    "os.utime": "file_io",
    "os.listdir": "file_io",
    "os.scandir": "file_io",
    "os.walk": "file_io",
    "glob.glob": "file_io",
    "glob.iglob": "file_io",
    "urlopen": "network",
    "os.system": "subprocess",
    "os.popen": "subprocess",
    "os.fork": "subprocess",
    "os.forkpty": "subprocess",
    "Popen": "subprocess",
    "asyncio.create_subprocess_exec": "subprocess",
    "asyncio.create_subprocess_shell": "subprocess",
    "os.getenv": "environment",
    "os.getenvb": "environment",
    "os.putenv": "environment",
    "os.unsetenv": "environment",
    "getenv": "environment",
    "print": "printing",
    "pprint": "printing",
    "pprint.pprint": "printing",
}
_EFFECT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("shutil.", "file_io"),
    ("requests.", "network"),
    ("httpx.", "network"),
    ("aiohttp.", "network"),
    ("urllib.request.", "network"),
    ("urllib3.", "network"),
    ("http.client.", "network"),
    ("socket.", "network"),
    ("ftplib.", "network"),
    ("smtplib.", "network"),
    ("asyncio.open_connection", "network"),
    ("asyncio.start_server", "network"),
    ("subprocess.", "subprocess"),
    ("os.exec", "subprocess"),
    ("os.spawn", "subprocess"),
    ("os.posix_spawn", "subprocess"),
    ("os.environ.", "environment"),
    ("os.environb.", "environment"),
    ("sys.stdout.", "printing"),
    ("sys.stderr.", "printing"),
    ("logging.", "logging"),
)
# Methods that read or write files whatever the receiver (pathlib.Path and friends).
_FILE_METHODS = frozenset(
    {"write_text", "read_text", "write_bytes", "read_bytes", "unlink", "mkdir", "rmdir", "touch"}
)
_LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "fatal"}
)
_NOT_LOGGING = frozenset({"logging.getLogger", "logging.getLevelName", "logging.getLoggerClass"})

_effects_cache: dict[str, tuple[str, ...]] = {}


def _call_effects(callee: str) -> tuple[str, ...]:
    """Side-effect categories a call to ``callee`` implies (by name; nothing is resolved)."""
    cached = _effects_cache.get(callee)
    if cached is not None:
        return cached
    found: set[str] = set()
    category = _EFFECT_NAMES.get(callee)
    if category is not None:
        found.add(category)
    for prefix, category in _EFFECT_PREFIXES:
        if callee.startswith(prefix):
            found.add(category)
    if callee in _NOT_LOGGING:
        found.discard("logging")
    receiver, _, method = callee.rpartition(".")
    if receiver:
        if method in _FILE_METHODS:
            found.add("file_io")
        if method in _LOG_METHODS and _is_logger_name(receiver.rpartition(".")[2]):
            found.add("logging")
    result = tuple(sorted(found))
    if len(_effects_cache) > 65536:
        _effects_cache.clear()
    _effects_cache[callee] = result
    return result


def _is_logger_name(name: str) -> bool:
    name = name.lower().lstrip("_")
    return name in ("log", "logger", "logging") or name.endswith(("logger", "_log"))


def _side_effects(source: bytes, frame: _Frame, calls: list[str]) -> list[str]:
    found: set[str] = set()
    cache = _effects_cache
    for callee in calls:
        effects = cache.get(callee)
        if effects is None:
            effects = _call_effects(callee)
        if effects:
            found.update(effects)
    body = frame.def_node.child_by_field_name("body")
    if body is None:
        return sorted(found)
    if "environment" not in found and source.find(b"environ", frame.start, frame.end) != -1:
        hits = QueryCursor(_ENVIRON_QUERY).captures(body).get("environ", [])
        if any(_owned_directly(frame, hit) for hit in hits):
            found.add("environment")
    if frame.globals or frame.nonlocals:
        written: set[str] = set()
        for target in QueryCursor(_TARGET_QUERY).captures(body).get("target", []):
            if _owned_directly(frame, target):
                written.update(_IDENTIFIER.findall(text_of(source, target)))
        if written.intersection(frame.globals):
            found.add("global_write")
        if written.intersection(frame.nonlocals):
            found.add("nonlocal_write")
    return sorted(found)


def _owned_directly(frame: _Frame, node: Node) -> bool:
    """True when ``node`` is in ``frame``'s body and not in the body of a nested def/class."""
    pos = node.start_byte
    # Direct children suffice: their bodies contain all deeper definitions.
    return not any(child.start <= pos < child.end for child in frame.children)


def _has_own_error(def_node: Node) -> bool:
    """True when the error is in the definition itself, not only inside a nested span."""
    body = def_node.child_by_field_name("body")
    children = def_node.children + (body.children if body is not None else [])
    return any(c.type == "ERROR" or c.is_missing for c in children)


# --- small node helpers --------------------------------------------------------------------


def _first_named(node: Node) -> Node | None:
    """The first named child that is not a comment or line continuation."""
    if not node.named_child_count:
        return None
    child: Node | None = node.named_child(0)
    while child is not None and child.type in _EXTRAS:
        child = child.next_named_sibling
    return child


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _expression_name(source: bytes, node: Node) -> str:
    """A short name for a callee or exception: ``os.path.join``, ``super().__init__``."""
    raw = source[node.start_byte : node.end_byte]
    if _DOTTED_NAME.fullmatch(raw):
        return raw.decode("ascii")
    return _render(source, node, 0)


def _render(source: bytes, node: Node, depth: int) -> str:
    """Render an expression with call arguments and subscripts elided."""
    kind = node.type
    if kind == "identifier":
        return text_of(source, node)
    if depth > 16:
        return "(...)"
    if kind == "attribute":
        obj = node.child_by_field_name("object")
        attr = node.child_by_field_name("attribute")
        head = _render(source, obj, depth + 1) if obj is not None else "(...)"
        return f"{head}.{text_of(source, attr) if attr is not None else ''}"
    if kind == "call":
        function = node.child_by_field_name("function")
        return (_render(source, function, depth + 1) if function is not None else "(...)") + "()"
    if kind == "subscript":
        value = node.child_by_field_name("value")
        return (_render(source, value, depth + 1) if value is not None else "(...)") + "[]"
    if kind in ("string", "concatenated_string"):
        return "str"
    if kind == "parenthesized_expression":
        inner = _first_named(node)
        return _render(source, inner, depth + 1) if inner is not None else "(...)"
    return "(...)"
