"""What a span's code and facts make certain about its reply, for the reply schema to demand
and the validator to check (one predicate each, so the two never disagree):

- :func:`effects_certain`: why ``side_effects: []`` ("none") would be false: the facts show
  the code writes, prints, logs, opens, sends or spawns (:data:`CERTAIN_EFFECTS`); for facts
  with no side-effect notion (Go, TypeScript), it calls a function whose effect is certain
  (:data:`KNOWN_EFFECT_CALLS`); or a method changes its own object's state.
- :func:`declared_output`: the declared return type under which ``outputs: []`` ("returns
  nothing") would be false; :func:`output_certain`: why ``outputs: []`` would be false, the
  declared type or, with none declared, a ``return`` of a value in code with no nested
  function (whose returns would not be the span's).
- :func:`raises_certain`: why ``pitfalls: []`` ("no surprise for a caller") would be false:
  the span itself raises an exception that escapes it (the prompt names "an exception it lets
  escape" as a pitfall). Python: a ``raise`` of a name the facts list, outside every ``try``
  body and nested block of another function; TypeScript, JavaScript and the like: a
  ``throw`` in code with no ``try``/``catch`` and no nested function; Go: a ``panic(`` with
  no ``recover()`` and no nested function.
- :func:`effects_ruled_out`: the effects (files, network, processes, printing) the code cannot
  have: the facts show none of that kind and every call is one that cannot reach it (a
  builtin, an exception, a string or container method, a pure standard module).
"""

from __future__ import annotations

import builtins
import re

from spanlens_lsp.enrichment.prompt.source import SpanContext

#: Fact categories that make "no side effects" false (``environment`` also counts reads).
CERTAIN_EFFECTS = frozenset(
    {"file_io", "network", "subprocess", "printing", "logging", "global_write", "nonlocal_write"}
)

#: Calls whose effect is certain whatever the code around them, for the languages whose facts
#: have no side-effect notion (Go, TypeScript, JavaScript): printing, writing or removing
#: opening, reading, writing or removing files, sending, spawning (the prompt asks for each).
KNOWN_EFFECT_CALLS = {
    "printing": re.compile(
        r"^(?:console\.(?:log|error|warn|info|debug|trace)|fmt\.(?:Print|Println|Printf)"
        r"|process\.(?:stdout|stderr)\.write|println|print)$"
    ),
    "file_io": re.compile(
        r"^(?:fs\.(?:promises\.)?(?:readFile|writeFile|appendFile|open|unlink|rm|rmdir|mkdir"
        r"|rename|copyFile)(?:Sync)?|os\.(?:Open|ReadFile|Create|WriteFile|Remove|RemoveAll"
        r"|Mkdir|MkdirAll|Rename|OpenFile)"
        # Node's file functions imported by name (`import { readFileSync } from "fs"`).
        r"|(?:readFile|writeFile|appendFile|copyFile)(?:Sync)?|(?:unlink|rmdir|mkdir)Sync)$"
    ),
    "network": re.compile(r"^(?:fetch|http\.(?:Get|Post|PostForm|Head)|net\.Dial\w*)$"),
    "subprocess": re.compile(
        r"^(?:exec\.Command(?:Context)?|child_process\.\w+|(?:spawn|execFile|execSync))$"
    ),
}

#: Methods that set up their own new object: assigning to its attributes is no side effect.
CONSTRUCTORS = frozenset({"__init__", "__new__", "__post_init__", "constructor", "__enter__"})
#: An assignment target on the method's own object (``self.count``, ``this.items[key]``).
_OWN_STATE = re.compile(r"^\(?(?:self|this)\s*[.\[]")
#: A call that changes a container in place, on the method's own object's state
#: (``self.items.pop``, ``this.counts.set``, ``this.counts.clear``).
OWN_STATE_CALL = re.compile(
    r"^(?:self|this)\.[\w.]+\.(?:append|extend|insert|remove|pop|popitem|clear|update"
    r"|setdefault|add|discard|set|delete|push|shift|unshift|splice|sort|reverse)$"
)
#: An assignment, augmented assignment or ``del`` target at the start of a line.
_TARGET = re.compile(
    r"^\s*(?:del\s+(?P<deleted>[^\n#]+)|(?P<target>[\w.\[\]'\", ()*]+?)\s*"
    r"(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=))",
    re.MULTILINE,
)
#: A Go method's header: its receiver's name and whether it is a pointer (``func (c *Cache)``).
_GO_RECEIVER = re.compile(r"func\s*\(\s*(?P<name>\w+)\s+(?P<pointer>\*)?")
#: Declared returns (without spaces) under which "returns nothing" (``outputs: []``) is true.
_NOTHING_DECLARED = frozenset(
    {"None", "void", "Promise<void>", "never", "NoReturn", "Never", "undefined", "()"}
)


def call_effects(calls: tuple[str, ...]) -> list[str]:
    """The certain effects of ``calls`` by :data:`KNOWN_EFFECT_CALLS`, sorted."""
    return sorted(
        {kind for call in calls for kind, known in KNOWN_EFFECT_CALLS.items() if known.match(call)}
    )


def assigned_targets(code: str) -> list[str]:
    """Assignment, augmented-assignment and ``del`` targets of ``code`` (after its first line,
    the header), without spaces."""
    body = _body(code)
    found = []
    for match in _TARGET.finditer(body):
        text = match.group("deleted") or match.group("target") or ""
        found += [part.strip() for part in text.split(",") if part.strip()]
    return found


def own_state_writes(ctx: SpanContext) -> list[str]:
    """What a method, not a constructor, changes of its own object: assignments (and
    ``del``) to its attributes or items, and in-place container calls on them. The caller
    sees that change, so "no side effects" is false."""
    if _GO_RECEIVER.match(ctx.code):  # a Go method: its owner is its receiver's type
        return go_receiver_writes(ctx.code, assigned_targets(ctx.code))
    if ctx.owner_class is None or ctx.name.rsplit(".", 1)[-1] in CONSTRUCTORS:
        return []
    writes = [t for t in assigned_targets(ctx.code) if _OWN_STATE.match(t)]
    return writes + [f"{c}()" for c in ctx.calls or () if OWN_STATE_CALL.match(c)]


def go_receiver_writes(code: str, targets: list[str]) -> list[str]:
    """The assignment ``targets`` of a Go method that change what its caller sees through the
    receiver: any field or element of a pointer receiver (``func (c *Cache)``: ``c.limit``,
    ``c.entries[key]``); only an element of a field of a value receiver (a map or slice, shared
    with the caller's copy: ``c.entries[key]``; ``c.limit = 1`` changes the copy alone)."""
    header = _GO_RECEIVER.match(code)
    if header is None:
        return []
    name = re.escape(header.group("name"))
    own = rf"^\(?{name}\s*[.\[]" if header.group("pointer") else rf"^{name}\.\w+\["
    return [t for t in targets if re.match(own, t)]


def own_names(ctx: SpanContext) -> tuple[str, ...]:
    """The names a method calls its own object by (``self``, ``this``, a Go receiver such as
    ``c``), or () for a span that is not a method."""
    header = _GO_RECEIVER.match(ctx.code)
    if header:
        return (header.group("name"),)
    if ctx.owner_class is not None:
        return ("self", "this")
    return ()


def effects_certain(ctx: SpanContext) -> str | None:
    """Why "no side effects" is false for the span ("the code has network", "the method
    changes self.items[name]"), or None when the facts leave it possible. A class or struct
    has none of its own (its methods' side effects are theirs)."""
    if ctx.container:
        return None
    writes = own_state_writes(ctx)
    if writes:
        return f"the method changes {writes[0][:40]}"
    if ctx.effects is None:
        known = call_effects(ctx.calls or ())
    else:
        known = sorted(CERTAIN_EFFECTS.intersection(ctx.effects))
    return f"the code has {', '.join(known)}" if known else None


#: Effect kinds a reply may claim, the fact categories that show each, and the words that
#: claim it (a claim with a negation, "does not touch the network", claims nothing).
EFFECT_KINDS: dict[str, tuple[frozenset[str], re.Pattern[str]]] = {
    "file I/O": (
        frozenset({"file_io"}),
        re.compile(
            r"\b(?:open|read|writ|creat|delet|remov|sav|load|append|flush|truncat)\w*\b[^.;]{0,40}"
            r"\b(?:files?|disk|directory|directories|filesystem)\b"
            r"|\b(?:files?|disk)\b[^.;]{0,20}\b(?:i/o|io|access|writes?|reads?|writing|reading"
            r"|creation|operations?)\b",
            re.I,
        ),
    ),
    "network": (
        frozenset({"network"}),
        re.compile(r"\b(?:network|https?|urls?|sockets?|downloads?|uploads?)\b", re.I),
    ),
    "processes": (
        frozenset({"subprocess"}),
        re.compile(
            r"\b(?:subprocess(?:es)?|spawn\w*|child process\w*|shell commands?"
            r"|(?:runs?|executes?) (?:a |the )?(?:shell |system )?command)\b",
            re.I,
        ),
    ),
    "printing": (
        frozenset({"printing", "logging"}),
        re.compile(r"\b(?:prints?|printed|printing|stdout|stderr|console|logs? to)\b", re.I),
    ),
}
_NEGATED = re.compile(r"\b(?:no|not|never|without|none|nothing|neither|nor)\b|n't\b", re.I)
#: Builtins that reach files, terminals or other code (the rest of Python's builtins cannot).
_IMPURE_BUILTINS = frozenset(
    {"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint", "help"}
)
#: Functions that cannot reach files, network, processes or the terminal: Python's builtins
#: but :data:`_IMPURE_BUILTINS`, and Go's and TypeScript/JavaScript's own.
_PURE_FUNCTIONS = frozenset(dir(builtins)) - _IMPURE_BUILTINS | frozenset(
    {"len", "cap", "make", "append", "copy", "delete", "new", "panic", "recover", "string"}
    | {"parseInt", "parseFloat", "isNaN", "isFinite", "Number", "String", "Boolean", "Symbol"}
    | {"BigInt", "encodeURIComponent", "decodeURIComponent", "structuredClone"}
)
#: Standard modules (Python, Go, JavaScript) whose every function is free of those effects.
_PURE_MODULES = re.compile(
    r"^(?:math|cmath|re|string|textwrap|itertools|functools|operator|collections|heapq|bisect"
    r"|hashlib|hmac|base64|binascii|struct|decimal|fractions|statistics|dataclasses|enum"
    r"|typing|copy|unicodedata|strconv|strings|unicode|utf8|errors|sort|slices|maps|bytes"
    r"|sha1|sha256|sha512|md5|hex|Math|JSON|Object|Array|Number|String|Reflect|Date)\."
)
#: Methods of strings and numbers: whatever their receiver, no effect beyond it.
_PURE_METHODS = frozenset(
    {"join", "split", "strip", "lstrip", "rstrip", "trim", "trimStart", "trimEnd", "lower"}
    | {"upper", "toLowerCase", "toUpperCase", "replace", "replaceAll", "startswith"}
    | {"endswith", "startsWith", "endsWith", "format", "isdigit", "isalnum", "isalpha"}
    | {"isspace", "encode", "decode", "toFixed", "toString", "padStart", "padEnd", "substring"}
    | {"charAt", "charCodeAt", "casefold", "partition", "rpartition", "zfill", "ljust", "rjust"}
    | {"center", "expandtabs", "splitlines", "title", "capitalize", "isupper", "islower"}
)
#: Methods of containers (dicts, lists, sets, maps, arrays): pure on a container, but the same
#: names are a client's requests (``requests.get``, ``self.session.get``), so they count only
#: on a receiver that does not look like a client (:data:`_CLIENT_LIKE`).
_CONTAINER_METHODS = frozenset(
    {"get", "set", "has", "pop", "popitem", "items", "keys", "values", "entries", "append"}
    | {"extend", "insert", "remove", "clear", "update", "setdefault", "copy", "count", "index"}
    | {"sort", "reverse", "add", "discard", "push", "shift", "unshift", "splice", "slice"}
    | {"map", "filter", "reduce", "forEach", "find", "findIndex", "some", "every", "includes"}
    | {"indexOf", "concat", "union", "intersection", "difference", "isdisjoint", "issubset"}
    | {"issuperset", "delete"}
)
_CLIENT_LIKE = re.compile(
    r"session|client|request|http|api|conn|sock|db|database|cursor|redis|cache|store|fs|os"
    r"|file|stream|writer|reader|pipe|proc|remote|server|bucket|queue|channel|logger|log",
    re.IGNORECASE,
)
#: Formatting functions of modules that also print (``fmt.Sprintf``, not ``fmt.Println``).
_PURE_FORMATTING = re.compile(r"^fmt\.(?:Errorf|Sprintf|Sprint|Sprintln)$")
_EXCEPTION_NAME = re.compile(r"(?:Error|Exception|Warning)$")


def pure_module_call(call: str) -> bool:
    """Whether ``call`` is a function of a pure standard module (``JSON.stringify``,
    ``math.floor``, ``fmt.Sprintf``): no effect on anything, its receiver included."""
    return bool(_PURE_MODULES.match(call) or _PURE_FORMATTING.match(call))


def pure_call(call: str) -> bool:
    """Whether ``call`` (as the facts name it) cannot reach files, network, processes or the
    terminal: a pure builtin or standard function, an exception, a string or container
    method."""
    name = call.rpartition(".")[2]
    if _EXCEPTION_NAME.search(name):
        return True
    if "." not in call:
        return call in _PURE_FUNCTIONS
    if _PURE_MODULES.match(call) or _PURE_FORMATTING.match(call) or name in _PURE_METHODS:
        return True
    receiver = call.rpartition(".")[0]
    return name in _CONTAINER_METHODS and not _CLIENT_LIKE.search(receiver)


def effects_ruled_out(ctx: SpanContext) -> dict[str, list[str]]:
    """The effect kinds (:data:`EFFECT_KINDS`) the span cannot have, each with the calls that
    show it (every one pure), or ``{}`` when the facts cannot tell (a call into unknown code
    may do anything)."""
    calls = ctx.calls
    if calls is None or not all(pure_call(c) for c in calls):
        return {}
    shown = set(ctx.effects or ()) | set(call_effects(calls))
    return {
        kind: list(calls)
        for kind, (categories, _words) in EFFECT_KINDS.items()
        if not categories & shown
    }


def claimed_effect(item: str) -> str | None:
    """The effect kind a side-effect entry claims (:data:`EFFECT_KINDS`), or None (no kind,
    or negated before it: "does not touch the network"; "if it doesn't exist" after the claim
    negates nothing)."""
    for kind, (_categories, words) in EFFECT_KINDS.items():
        found = words.search(item)
        if found and not _NEGATED.search(item[: found.start()]):
            return kind
    return None


def declared_output(ctx: SpanContext) -> str | None:
    """The declared return type under which "returns nothing" is false (anything but
    ``None``/``void``/``never`` and their kin), or None."""
    declared = (ctx.returns or "").strip()
    if declared and re.sub(r"\s+", "", declared) not in _NOTHING_DECLARED:
        return declared
    return None


#: A ``return`` with its value (``return data``; a bare ``return`` has none).
_RETURN = re.compile(r"^\s*return\b(?P<value>[^\n#]*)", re.MULTILINE)
#: A function inside the span: its returns are not the span's.
_NESTED_FUNCTION = re.compile(
    r"^\s*(?:async\s+)?(?:def|function|func)\b|\blambda\b|=>|\bfunc\s*\(", re.M
)
_NO_VALUE = frozenset({"", "None", "nil", "undefined", "null"})


def return_values(code: str) -> list[str]:
    """What each ``return`` of ``code`` returns, as written (``""`` for a bare one)."""
    return [match.group("value").strip() for match in _RETURN.finditer(code)]


def returned_value(ctx: SpanContext) -> str | None:
    """The first value the span's code returns (``data``), when it has no nested function,
    or None."""
    body = _body(ctx.code)
    if _NESTED_FUNCTION.search(body):
        return None
    values = (value.split(";", 1)[0].strip() for value in return_values(body))
    return next((value for value in values if value not in _NO_VALUE), None)


def output_certain(ctx: SpanContext) -> str | None:
    """Why "returns nothing" (``outputs: []``) is false for the span ("the code declares ->
    str", "the code returns data"), or None. A class or struct returns nothing of its own (its
    methods' returns are theirs)."""
    if ctx.container:
        return None
    declared = declared_output(ctx)
    if declared:
        return f"the code declares -> {declared}"
    if (ctx.returns or "").strip():
        return None  # declared to return nothing
    value = returned_value(ctx)
    return f"the code returns {value[:40]}" if value else None


#: A ``raise`` of a named exception at the start of a line (``raise ValueError(...)``).
_RAISE_LINE = re.compile(r"^[ \t]*raise\s+(?P<name>[\w.]+)")
#: A block header a ``raise`` may sit under: ``try:`` (which may catch it), a nested function
#: or class (whose raises are not the span's), anything else (an ``if``, ``with``, handler).
_TRY_HEADER = re.compile(r"^try\s*:")
_OTHER_SCOPE = re.compile(r"^(?:async\s+)?(?:def|class)\b|\blambda\b")
_THROW = re.compile(r"^[ \t]*(?:[^\n/]*?[;{)][ \t]*)?throw\s+(?:new\s+)?(?P<name>[\w.]+)", re.M)
_TRY_CATCH = re.compile(r"\b(?:try|catch)\b|\.catch\(")
_PANIC = re.compile(r"^[ \t]*(?:[^\n/]*?[;{)][ \t]*)?panic\(", re.M)


def _header_index(lines: list[str]) -> int:
    """The index of a Python span's own ``def``/``class`` line, after its decorators."""
    return next((i for i, line in enumerate(lines) if _OTHER_SCOPE.match(line.strip())), 0)


def _escaping_raise(lines: list[str], header: int, index: int) -> bool:
    """Whether the ``raise`` on ``lines[index]`` leaves the span (``lines[header]`` is the
    span's own ``def``/``class`` line, after its decorators): no enclosing ``try:`` body,
    nested function or class between it and the header. A handler (``except``, ``finally``)
    or any other block encloses it harmlessly."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    for line in reversed(lines[header + 1 : index]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        depth = len(line) - len(line.lstrip())
        if depth >= indent:
            continue
        if _TRY_HEADER.match(stripped) or _OTHER_SCOPE.search(stripped):
            return False
        indent = depth
    return True


def raises_certain(ctx: SpanContext) -> str | None:
    """Why "no pitfalls" (``pitfalls: []``) is false for the span: the exception it raises or
    throws itself and lets escape ("the code raises ValueError (line 12)"), or None when the
    code shows none or cannot be judged (a raise inside a ``try``, in a nested function)."""
    lines = ctx.code.split("\n")
    if ctx.raises is not None:
        named = set(ctx.raises)
        header = _header_index(lines)
        for index in range(header + 1, len(lines)):
            found = _RAISE_LINE.match(lines[index])
            if found and found.group("name") in named and _escaping_raise(lines, header, index):
                return f"the code raises {found.group('name')} (line {ctx.first_line + index})"
        return None
    body = "\n".join(lines[1:])
    if _NESTED_FUNCTION.search(body):
        return None
    thrown = _THROW.search(body)
    if thrown and not _TRY_CATCH.search(body):
        line = ctx.first_line + 1 + body.count("\n", 0, thrown.start())
        return f"the code throws {thrown.group('name')} (line {line})"
    panic = _PANIC.search(body)
    if panic and "recover()" not in body:
        line = ctx.first_line + 1 + body.count("\n", 0, panic.start())
        return f"the code panics (line {line})"
    return None


#: Calls whose failure or effect a caller must know of, by the line they sit on: each a
#: pattern, what it makes certain, and whether a ``try`` around it (Python), a try/catch in
#: the span (TypeScript, JavaScript) or nothing (Go: its errors are returned, but a file it
#: creates replaces an existing one) keeps it from the caller. Checked in order, first match
#: wins. Seen in the fourth quality run: ``pitfalls: []`` for ``open(path, "w")``, ``urlopen``,
#: ``JSON.stringify`` and ``os.Create``, each reviewed as leaving out what bites.
RISKY_CALLS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    # Python
    (
        re.compile(r"\bopen\([^)\n]*,\s*(?:mode\s*=\s*)?[\"'][wW]b?\+?[\"']"),
        "py",
        "replaces an existing file",
    ),
    (re.compile(r"(?<![\w.])open\("), "py", "raises OSError when the file cannot be opened"),
    (re.compile(r"\bjson\.loads?\("), "py", "raises ValueError on malformed JSON"),
    (re.compile(r"\burlopen\("), "py", "raises URLError when the request fails"),
    (
        re.compile(r"\bsubprocess\.\w+\([^\n]*\btimeout\s*="),
        "py",
        "raises TimeoutExpired when the command runs too long",
    ),
    (
        re.compile(r"\bsubprocess\.check_(?:call|output)\(|\bcheck\s*=\s*True"),
        "py",
        "raises CalledProcessError when the command fails",
    ),
    # TypeScript, JavaScript
    (re.compile(r"\bwriteFile(?:Sync)?\("), "js", "replaces an existing file"),
    (re.compile(r"\breadFile(?:Sync)?\("), "js", "throws when the file cannot be read"),
    (re.compile(r"\bJSON\.parse\("), "js", "throws SyntaxError on malformed JSON"),
    (re.compile(r"\bJSON\.stringify\("), "js", "throws TypeError on a cyclic or BigInt value"),
    (re.compile(r"(?<![\w.])fetch\("), "js", "rejects when the request fails"),
    # Go
    (re.compile(r"\bos\.(?:Create|WriteFile)\("), "go", "replaces an existing file"),
)
_GO_FUNC = re.compile(r"^\s*func\b")
_JS_FUNC = re.compile(r"\bfunction\b|^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?class\b")


_LANGUAGES = {"python": "py", "go": "go", "typescript": "js", "tsx": "js", "javascript": "js"}


def _language(ctx: SpanContext) -> str | None:
    """ "py", "go" or "js" (TypeScript, JavaScript) for the checks that read code by language,
    or None for another language. Without :attr:`SpanContext.language` it is told from the
    code: Python facts list raises, a Go span starts with ``func``, a TypeScript or
    JavaScript one is a ``function`` or a ``class``."""
    if ctx.language:
        return _LANGUAGES.get(ctx.language)
    if ctx.raises is not None:
        return "py"
    if _GO_FUNC.match(ctx.code):
        return "go"
    if _JS_FUNC.search(ctx.code.split("\n", 1)[0]):
        return "js"
    return None


def risky_call(ctx: SpanContext) -> str | None:
    """Why "no pitfalls" is false for the span by a call it makes (:data:`RISKY_CALLS`):
    "open(...) on line 14 raises OSError when the file cannot be opened", or None when no such
    call escapes it (inside a ``try``, a nested function, a span with try/catch)."""
    language = _language(ctx)
    if language is None or ctx.container:
        return None
    lines = ctx.code.split("\n")
    body = "\n".join(lines[1:])
    if language == "js" and (_TRY_CATCH.search(body) or _NESTED_FUNCTION.search(body)):
        return None
    header = 0
    if language == "py":
        header = _header_index(lines)
    for index in range(header + 1, len(lines)):
        code = lines[index].split("#", 1)[0] if language == "py" else lines[index]
        if code.lstrip().startswith(("//", "*")):
            continue
        for pattern, lang, what in RISKY_CALLS:
            found = pattern.search(code) if lang == language else None
            if found is None:
                continue
            if language == "py" and not _escaping_raise(lines, header, index):
                break
            call = found.group(0).split("(", 1)[0].strip()
            return f"{call}() on line {ctx.first_line + index} {what}"
    return None


#: What opens a file for appending (then "appends to it" may be true).
_APPEND_MODE = re.compile(
    r"O_APPEND|appendFile|\bopen\([^)\n]*,\s*(?:mode\s*=\s*)?[\"'][aA]b?\+?[\"']"
)


def replaces_file(ctx: SpanContext) -> str | None:
    """Why "it appends to an existing file" is false for the span: it opens a file for
    writing, which replaces what was there ("os.Create() on line 63 replaces an existing
    file"), and opens none for appending; or None."""
    reason = risky_call(ctx)
    if (
        reason
        and reason.endswith("replaces an existing file")
        and not _APPEND_MODE.search(ctx.code)
    ):
        return reason
    return None


def pitfall_certain(ctx: SpanContext) -> str | None:
    """Why "no pitfalls" (``pitfalls: []``) is false for the span: an exception it raises and
    lets escape (:func:`raises_certain`), else a call whose failure or effect reaches the
    caller (:func:`risky_call`); None when the code shows neither."""
    return raises_certain(ctx) or risky_call(ctx)


def nothing_returned(ctx: SpanContext) -> str | None:
    """Why an output is false for the span ("the code declares -> None", "the code returns
    no value"), or None when it may return something. Certain for a declared nothing (``None``,
    ``void``), and, with nothing declared, for a Python, Go or TypeScript/JavaScript
    ``function`` with no ``return`` of a value, no ``yield``, no arrow function or lambda
    (whose value is returned without ``return``) and no nested function. A class is judged
    by :attr:`SpanContext.container`."""
    if ctx.container:
        return None
    declared = (ctx.returns or "").strip()
    if declared:
        if re.sub(r"\s+", "", declared) in _NOTHING_DECLARED and declared != "never":
            return f"the code declares -> {declared}"
        return None
    language = _language(ctx)
    if language is None or (language == "js" and not _JS_FUNC.search(ctx.code.split("\n")[0])):
        return None
    body = _body(ctx.code)
    if "=>" in ctx.code or re.search(r"\b(?:yield|lambda)\b", ctx.code):
        return None
    if _NESTED_FUNCTION.search(body) or "\n" not in ctx.code:
        return None
    if any(value not in _NO_VALUE for value in return_values(body)):
        return None
    return "the code returns no value"


#: A return of what a removal takes out: Python's ``dict.pop``/``list.pop``/``popitem``/
#: ``deque.popleft``, JavaScript's ``Array.pop``/``shift``/``splice``.
_REMOVED_VALUE = re.compile(r"^[\w$.\[\]]+\.(pop|popitem|popleft|shift|splice)\(.*\)\s*;?$")


def returned_removal(ctx: SpanContext) -> str | None:
    """The removal call (``pop``) whose value every ``return`` of the span gives back
    (``return self.items.pop(name)``), or None: what it returns is what was taken out."""
    values = [v.strip() for v in return_values(_body(ctx.code))]
    found = [_REMOVED_VALUE.match(v) for v in values]
    if not values or not all(found):
        return None
    return next(m.group(1) for m in found if m)


#: A returned function: an arrow function, a function expression, a lambda.
_FUNCTION_VALUE = re.compile(
    r"^(?:async\s+)?(?:\([^()]*\)|[\w$]+)\s*=>|^(?:async\s+)?function\b|^lambda\b"
)
#: A function defined inside a span (Python ``def``, JavaScript ``function``).
_INNER_FUNCTION = re.compile(r"^\s+(?:async\s+)?(?:def|function)\s+([\w$]+)", re.MULTILINE)


def returns_function(ctx: SpanContext) -> bool:
    """Whether every ``return`` of the span gives back a function: an arrow function, a
    function expression, a lambda, or a function defined inside it (``return wrapper``);
    the returns inside a Python function defined in it are that function's."""
    body = _body(ctx.code)
    inner = set(_INNER_FUNCTION.findall(body))
    values = [v.strip().rstrip(";").strip() for v in return_values(_outside_nested_defs(body))]
    return bool(values) and all(_FUNCTION_VALUE.match(v) or v in inner for v in values)


def _body(code: str) -> str:
    """The span's code after its first (header) line."""
    return code.split("\n", 1)[1] if "\n" in code else ""


def _outside_nested_defs(body: str) -> str:
    """``body`` without the bodies of the Python functions defined in it (their ``return``
    lines are theirs, not the span's)."""
    kept: list[str] = []
    nested_at: int | None = None
    for line in body.split("\n"):
        indent = len(line) - len(line.lstrip())
        if nested_at is not None and (not line.strip() or indent > nested_at):
            continue
        nested_at = None
        if re.match(r"\s*(?:async\s+)?def\s", line):
            nested_at = indent
        kept.append(line)
    return "\n".join(kept)
