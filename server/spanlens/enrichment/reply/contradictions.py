"""Contradictions: what a reply states that the span's code and facts say is false.

Each check judges only what the parser knows for certain and stays silent where it cannot
judge (an untyped return, a call into unknown code, a free-form phrase):

- **Claimed none.** ``side_effects`` empty (or only "no side effects" entries, which repair
  drops) while the facts show the code writes, prints, logs, opens, sends or spawns; for
  facts with no side-effect notion (Go, TypeScript), while it calls a function whose effect
  is certain (``console.log``, ``fetch``, ``os.Create``, ``exec.Command``: see
  :data:`KNOWN_EFFECT_CALLS`).
- **Ruled-out effects.** A side effect claimed for code with no call, no assignment to an
  attribute or item and no ``global``/``nonlocal`` write; "mutation of arguments" claimed for
  code that assigns to no parameter's attribute or item and calls no parameter's method.
- **Declared return.** No output (``[]``: "returns nothing") on a span that declares a
  return type other than ``None``/``void``/``never``; an output on a ``-> None``
  (TypeScript ``void``) span; an output
  written as a type that the declared return type contradicts (``t.Callable[P, R | None]``
  for ``R | None``, a class for ``str``; ``Optional``/``Union`` unwrapped); for a method
  whose every ``return`` is ``return self``, an output that is neither the instance nor its
  class. ``Any``/``object`` returns, type variables and prose outputs are never judged.
- **Subject.** A method's summary whose subject is its class ("The ``_LazyFile`` class is ...").
- **Prompt echo.** Text copied from the prompt's own field instructions (read from
  :data:`~spanlens.enrichment.prompt.build.SYSTEM_PROMPT`, so the check follows the prompt) or
  from an earlier prompt version's that models were seen to copy (:data:`EARLIER_INSTRUCTIONS`).
- **Cut summary.** A summary that ends mid-sentence: an open backtick, quote or bracket, a
  dangling operator or comma, or a trailing function word without closing punctuation.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from spanlens.enrichment.prompt.build import SYSTEM_PROMPT
from spanlens.enrichment.prompt.source import SpanContext
from spanlens.enrichment.reply import grounding

#: Fact categories that make "no side effects" false (``environment`` also counts reads).
CERTAIN_EFFECTS = frozenset(
    {"file_io", "network", "subprocess", "printing", "logging", "global_write", "nonlocal_write"}
)
_MUTATION = re.compile(
    r"\b(?:mutat\w*|modif\w*|chang\w*|alter\w*)\b[^.;]{0,40}\b(?:arguments?|parameters?|inputs?)\b"
    r"|\b(?:arguments?|parameters?)\b[^.;]{0,30}\b(?:mutated|modified|changed|altered)\b",
    re.IGNORECASE,
)
#: An assignment, augmented assignment or ``del`` target at the start of a line.
_TARGET = re.compile(
    r"^\s*(?:del\s+(?P<deleted>[^\n#]+)|(?P<target>[\w.\[\]'\", ()*]+?)\s*"
    r"(?:[-+*/%@&|^]|//|\*\*|<<|>>)?=(?!=))",
    re.MULTILINE,
)
_RETURN = re.compile(r"^\s*return\b(?P<value>[^\n#]*)", re.MULTILINE)
_TYPE_EXPR = re.compile(
    r"^[A-Za-z_][\w.]*(?:\[[\w.\[\], |\"'-]*\])?(?:\s*\|\s*[A-Za-z_][\w.\[\], ]*)*$"
)
_TYPE_PART = re.compile(r"[A-Za-z_][\w.]*")
#: Declared returns that say the code returns nothing (Python, TypeScript).
_NOTHING_RETURNED = frozenset({"None", "void"})
#: Declared returns (without spaces) under which "returns nothing" (``outputs: []``) is true.
_NOTHING_DECLARED = frozenset(
    {"None", "void", "Promise<void>", "never", "NoReturn", "Never", "undefined", "()"}
)
#: Declared types that say nothing (anything may be returned).
_ANY_TYPES = frozenset({"Any", "object"})
#: Type heads that name the same thing (compared lower-cased, last dotted part).
_SAME_KIND = (
    frozenset({"iterator", "iterable", "generator", "iter"}),
    frozenset({"str", "string", "text", "anystr"}),
    frozenset({"list", "sequence", "array", "tuple"}),
    frozenset({"dict", "mapping", "mutablemapping"}),
    frozenset({"int", "integer", "number", "float"}),
    frozenset({"bool", "boolean"}),
)
_SELF_WORDS = re.compile(r"\b(?:self|itself|instance|same|context manager|this)\b", re.I)
_NONE_WORDS = re.compile(
    r"\b(?:none|nonetype|nothing|null|void|nonexistent|no (?:return )?value)\b", re.IGNORECASE
)
#: Names that are types whatever their case (the rest must start with a capital to be one).
_LOWER_TYPES = frozenset(
    {"str", "int", "float", "bool", "bytes", "bytearray", "list", "dict", "set", "frozenset"}
    | {"tuple", "complex", "type", "object", "memoryview", "range"}
)
_FUNCTION_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "for",
        "in",
        "on",
        "by",
        "with",
        "from",
        "as",
        "at",
        "that",
        "which",
        "when",
        "if",
        "into",
        "than",
        "its",
        "their",
        "is",
        "are",
        "be",
    ]
)
_CLASS_SUBJECT_TAIL = re.compile(
    r"^[`*'\"]*\s+(?:class\b(?!\s*(?:'s|constructor|initiali[sz]er|method))|"
    r"(?:is|represents)\s+(?:a|an)\b)",
    re.IGNORECASE,
)


def contradiction_errors(data: dict[str, Any], ctx: SpanContext) -> list[str]:
    """Every statement of ``data`` the span's code and facts contradict."""
    errors = effect_errors(data["side_effects"], ctx)
    errors += output_errors(data["outputs"], ctx)
    errors += class_subject_errors(str(data["summary"]), ctx)
    errors += echo_errors(data)
    reason = cut_reason(str(data["summary"]))
    if reason:
        errors.append(f"summary is cut mid-sentence ({reason})")
    return errors


# ----------------------------------------------------------------------------- side effects


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
        r"|Mkdir|MkdirAll|Rename|OpenFile))$"
    ),
    "network": re.compile(r"^(?:fetch|http\.(?:Get|Post|PostForm|Head)|net\.Dial\w*)$"),
    "subprocess": re.compile(
        r"^(?:exec\.Command(?:Context)?|child_process\.\w+|(?:spawn|execFile|execSync))$"
    ),
}


def call_effects(calls: tuple[str, ...]) -> list[str]:
    """The certain effects of ``calls`` by :data:`KNOWN_EFFECT_CALLS`, sorted."""
    return sorted(
        {kind for call in calls for kind, known in KNOWN_EFFECT_CALLS.items() if known.match(call)}
    )


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


def own_state_writes(ctx: SpanContext) -> list[str]:
    """What a method, not a constructor, changes of its own object: assignments (and
    ``del``) to its attributes or items, and in-place container calls on them. The caller
    sees that change, so "no side effects" is false."""
    if ctx.owner_class is None or ctx.name.rsplit(".", 1)[-1] in CONSTRUCTORS:
        return []
    writes = [t for t in assigned_targets(ctx.code) if _OWN_STATE.match(t)]
    return writes + [f"{c}()" for c in ctx.calls or () if OWN_STATE_CALL.match(c)]


def effect_errors(side_effects: list[str], ctx: SpanContext) -> list[str]:
    """Side effects claimed against the facts, and "none" where the facts show some (or, for
    facts with no side-effect notion, where a call with a certain effect shows some, or where
    a method changes its own object's state)."""
    if not side_effects:
        writes = own_state_writes(ctx)
        if writes:
            return [f"side_effects claims none, but the method changes {writes[0][:40]}"]
    if ctx.effects is None:
        known = call_effects(ctx.calls or ())
        if not side_effects and known:
            return [f"side_effects claims none, but the code has {', '.join(known)}"]
        return []
    certain = sorted(CERTAIN_EFFECTS.intersection(ctx.effects))
    if not side_effects:
        if certain:
            return [f"side_effects claims none, but the code has {', '.join(certain)}"]
        return []
    if ctx.effects or ctx.calls is None:
        return []
    targets = assigned_targets(ctx.code)
    if not ctx.calls and not any("." in t or "[" in t for t in targets):
        return [
            f"side_effects claims {side_effects[0][:40]!a}, but the code calls nothing and "
            "assigns to no attribute or item"
        ]
    params = [p for p in ctx.params or () if p and p not in ("self", "cls", "this")]
    for item in side_effects:
        if _MUTATION.search(item) and not _mutates_a_parameter(params, targets, ctx.calls):
            return [
                f"side_effects claims {item[:40]!a}, but the code assigns to no parameter's "
                "attribute or item and calls no parameter's method"
            ]
    return []


def assigned_targets(code: str) -> list[str]:
    """Assignment, augmented-assignment and ``del`` targets of ``code`` (after its first line,
    the header), without spaces."""
    body = code.split("\n", 1)[1] if "\n" in code else ""
    found = []
    for match in _TARGET.finditer(body):
        text = match.group("deleted") or match.group("target") or ""
        found += [part.strip() for part in text.split(",") if part.strip()]
    return found


def _mutates_a_parameter(params: list[str], targets: list[str], calls: tuple[str, ...]) -> bool:
    for param in params:
        if any(re.match(rf"\(?{re.escape(param)}[.\[]", target) for target in targets):
            return True
        if any(call.startswith(param + ".") for call in calls):
            return True
    return False


# ----------------------------------------------------------------------------- outputs


def output_errors(outputs: list[str], ctx: SpanContext) -> list[str]:
    """Outputs the declared return type (or ``return self``) contradicts, and "nothing" for
    a span that declares it returns something."""
    if not outputs:
        declared = (ctx.returns or "").strip()
        if declared and _flat(declared) not in _NOTHING_DECLARED:
            return [f"outputs claims nothing is returned, but the code declares -> {declared}"]
        return []
    if ctx.owner_class and returns_only_self(ctx.code):
        for item in outputs:
            if not _SELF_WORDS.search(item) and ctx.owner_class not in item:
                return [f"outputs claims {item[:40]!a}, but the method returns self"]
    declared = (ctx.returns or "").strip()
    if not declared:
        return []
    if declared in _NOTHING_RETURNED:
        claimed = [item for item in outputs if not _NONE_WORDS.search(item)]
        if claimed:
            return [f"outputs claims {claimed[0][:40]!a}, but the code declares -> {declared}"]
        return []
    if _ANY_TYPES.intersection(p.rpartition(".")[2] for p in _TYPE_PART.findall(declared)):
        return []
    for item in outputs:
        reason = type_contradiction(item, declared)
        if reason:
            return [f"outputs claims {item[:40]!a}, {reason}"]
    return []


def type_contradiction(item: str, declared: str) -> str | None:
    """Why an output written as a type contradicts the ``declared`` return type, or None
    (prose, the same type, a compatible one, or one the check cannot judge)."""
    text = item.strip().strip("`").strip().rstrip(".").strip("`").strip()
    if not _TYPE_EXPR.match(text) or " " in text.replace(" | ", "|").replace(", ", ","):
        return None
    head = text.split("[", 1)[0].split("|", 1)[0].strip().rpartition(".")[2]
    if not (head.lstrip("_")[:1].isupper() or head in _LOWER_TYPES):
        return None  # a function's name (`textwrap.shorten`) or a word, not a type
    flat, want = _flat(text), _flat(declared)
    if flat == want:
        return None
    if want in flat:
        return f"a type built around the declared {declared}"
    wanted = [p.rpartition(".")[2] for p in _TYPE_PART.findall(declared)]
    if any(_is_type_var(p) for p in wanted):
        return None
    for head in _heads(flat):
        if head in _ANY_TYPES or head == "Self" or not head:
            continue
        if not any(_compatible(head, w) for w in wanted):
            return f"but the code declares -> {declared}"
    return None


def _heads(flat: str) -> list[str]:
    """The outer type names of the alternatives of a type without spaces, ``Optional[X]`` and
    ``Union[X, Y]`` unwrapped (``Optional[str]`` gives ``str`` and ``None``)."""
    heads: list[str] = []
    for alternative in _split_top(flat, "|"):
        head, _, rest = alternative.partition("[")
        name = head.rpartition(".")[2]
        if name in ("Optional", "Union") and rest.endswith("]"):
            for inner in _split_top(rest[:-1], ","):
                heads += _heads(inner)
            if name == "Optional":
                heads.append("None")
        else:
            heads.append(name)
    return heads


def _split_top(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` outside brackets."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += (char == "[") - (char == "]")
        if char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


def _flat(type_text: str) -> str:
    return re.sub(r"\s+", "", type_text)


def _is_type_var(name: str) -> bool:
    return re.fullmatch(r"[A-Z][A-Za-z]?\d?|_?[A-Z]\w*_?co|_?[A-Z]\w*_?contra", name) is not None


def _compatible(head: str, declared: str) -> bool:
    a, b = head.lower(), declared.lower()
    if a in b or b in a:
        return True
    return any(a in group and b in group for group in _SAME_KIND)


def returns_only_self(code: str) -> bool:
    """Whether ``code`` has returns and each is ``return self``."""
    values = [m.group("value").strip() for m in _RETURN.finditer(code)]
    return bool(values) and all(value == "self" for value in values)


# ----------------------------------------------------------------------------- subject


def class_subject_errors(summary: str, ctx: SpanContext) -> list[str]:
    """A method's summary whose subject is its class ("The `X` class is ...")."""
    owner = ctx.owner_class
    if not owner:
        return []
    subject = grounding.summary_subject(summary)
    if subject != owner:
        return []
    tail = summary.split(owner, 1)[1]
    if _CLASS_SUBJECT_TAIL.match(tail):
        return [f"summary describes the class {owner}, not the method {ctx.name}"]
    return []


# ----------------------------------------------------------------------------- prompt echo


#: Field instructions of earlier prompt versions (before version 3) that models were seen to
#: copy into replies as content (issue 16's review of Qwen2.5-Coder-1.5B): a model or a cached
#: prompt may still echo them, so they stay recognised after the prompt's wording moved on.
EARLIER_INSTRUCTIONS = (
    "I/O, mutation of arguments or shared state, network, processes; empty list if none.",
    "ways a caller can misuse it or be surprised (edge cases, exceptions, performance); "
    "empty list if none.",
    "what the code does and why a caller would use it, plain prose; never repeat the code itself.",
    "what it returns or yields, short phrases.",
    "Each list entry is one short sentence, said once.",
)


@functools.cache
def instruction_text() -> str:
    """The current prompt's instructions, folded (see :func:`grounding.fold`)."""
    return grounding.fold(SYSTEM_PROMPT)


@functools.cache
def instruction_texts() -> tuple[str, ...]:
    """Every instruction text a reply may copy, folded: the current prompt's, then each of
    :data:`EARLIER_INSTRUCTIONS`."""
    return (instruction_text(), *(grounding.fold(text) for text in EARLIER_INSTRUCTIONS))


def _in_instructions(folded: str) -> str | None:
    """The instruction text ``folded`` (a folded phrase) is copied from, or None."""
    return next((t for t in instruction_texts() if f" {folded} " in f" {t} "), None)


def echoes_prompt(item: str) -> bool:
    """Whether ``item`` is copied from the prompt's instructions (the current ones or an
    earlier version's): four words or more, or a comma list ("mutation of arguments" alone
    may be a terse true claim)."""
    folded = grounding.fold(item)
    if not folded or _in_instructions(folded) is None:
        return False
    return len(folded.split()) >= 4 or "," in item


def echo_errors(data: dict[str, Any]) -> list[str]:
    """Texts of ``data`` copied from the prompt's instructions."""
    texts = [("summary", str(data["summary"]))]
    texts += [(key, item) for key in ("outputs", "side_effects", "pitfalls") for item in data[key]]
    for where, text in texts:
        if echoes_prompt(text):
            return [f"{where} copies the prompt's instructions: {text[:40]!a}"]
    for key in ("side_effects", "pitfalls"):
        items = [grounding.fold(i) for i in data[key]]
        if len(items) >= 2 and any(
            all(f" {i} " in f" {text} " for i in items) for text in instruction_texts()
        ):
            return [f"{key} lists the prompt's own examples: {', '.join(data[key])[:60]!a}"]
    return []


# ----------------------------------------------------------------------------- cut summary


def cut_reason(summary: str) -> str | None:
    """Why ``summary`` ends mid-sentence (a length bound cut it), or None."""
    text = summary.rstrip()
    if not text or (text[-1] in ".!?" and not text.endswith("...")):
        return None  # a closed sentence, whatever stray backtick it holds
    if text.count("`") % 2:
        return "an open backtick"
    if text.count("(") > text.count(")") or text.count("[") > text.count("]"):
        return "an open bracket"
    if text[-1] in "=([{,:-+*/&|<":
        return f"ends with {text[-1]!a}"
    if text[-1] in ".!?)`\"'":
        return None
    last = text.split()[-1].lower()
    if last in _FUNCTION_WORDS:
        return f"ends with {last!a}"
    return None
