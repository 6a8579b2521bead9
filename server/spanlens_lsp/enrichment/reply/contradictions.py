"""Contradictions: what a reply states that the span's code and facts say is false.

Each check judges only what the parser knows for certain and stays silent where it cannot
judge (an untyped return, a call into unknown code, a free-form phrase):

- **Claimed none.** ``side_effects`` empty (or only "no side effects" entries, which repair
  drops) while the facts show the code writes, prints, logs, opens, sends or spawns; for
  facts with no side-effect notion (Go, TypeScript), while it calls a function whose effect
  is certain (``console.log``, ``fetch``, ``os.Create``, ``exec.Command``: see
  :data:`~spanlens_lsp.enrichment.prompt.certain.KNOWN_EFFECT_CALLS`;
  the predicate is :func:`~spanlens_lsp.enrichment.prompt.certain.effects_certain`, which the
  reply schema shares).
- **Ruled-out effects.** A side effect claimed for code with no call, no assignment to an
  attribute or item and no ``global``/``nonlocal`` write; "mutation of arguments" claimed for
  code that assigns to no parameter's attribute or item and calls no parameter's method; a
  file, network, process or printing effect claimed for code whose facts show none of that
  kind and whose every call is one that cannot reach it (a builtin, an exception, a string or
  container method: :func:`~spanlens_lsp.enrichment.prompt.certain.effects_ruled_out`).
- **Declared return.** No output (``[]``: "returns nothing") on a span that declares a
  return type other than ``None``/``void``/``never``, or declares none and returns a value
  (with no nested function); an output on a ``-> None``
  (TypeScript ``void``) span; an output
  written as a type that the declared return type contradicts (``t.Callable[P, R | None]``
  for ``R | None``, a class for ``str``; ``Optional``/``Union`` unwrapped); for a method
  whose every ``return`` is ``return self``, an output that is neither the instance nor its
  class; an output labelled with a basic type the declared return contradicts
  (``string: the output`` for ``-> error``); for a class or struct, an output written as a
  bare type other than its own (``number`` for ``Counter``, ``map[string]string`` for Go's
  ``Cache``). ``Any``/``object``/``unknown`` returns, type
  variables and prose outputs are never judged. An output for a function that returns no
  value (no ``return`` of one, no ``yield``, no lambda or nested function:
  :func:`~spanlens_lsp.enrichment.prompt.certain.nothing_returned`).
- **No pitfall.** ``pitfalls`` empty while the span raises an exception that escapes it
  (a ``raise`` outside every ``try`` body, a ``throw`` in code without ``try``/``catch``, a
  Go ``panic`` without ``recover``), or makes a call whose failure or effect reaches its
  caller (``open``, ``json.loads``, ``urlopen``, ``fetch``, ``JSON.parse``, ``os.Create``
  outside a ``try``: :func:`~spanlens_lsp.enrichment.prompt.certain.pitfall_certain`, shared
  with the schema).
- **Subject.** A method's summary whose subject is its class ("The ``_LazyFile`` class is ...").
- **Prompt echo.** Text copied from the prompt's own field instructions (read from
  :data:`~spanlens_lsp.enrichment.prompt.build.SYSTEM_PROMPT`, so the check follows the prompt) or
  from an earlier prompt version's that models were seen to copy (:data:`EARLIER_INSTRUCTIONS`).
- **Cut text.** A summary that ends mid-sentence: an open backtick, quote or bracket, a
  dangling operator or comma, or a trailing function word without closing punctuation; a
  list entry that ends the same way (an open bracket, a comma, a trailing article,
  conjunction or "of": prepositions may end a phrase); a usage snippet with an open bracket.
- **Another script.** Text in a script the code does not use (a Chinese word inside an
  English sentence: ``the conversion失败``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from spanlens_lsp.enrichment.prompt.build import SYSTEM_PROMPT
from spanlens_lsp.enrichment.prompt.certain import (
    assigned_targets,
    claimed_effect,
    effects_certain,
    effects_ruled_out,
    nothing_returned,
    output_certain,
    own_names,
    pitfall_certain,
    replaces_file,
    return_values,
    returned_removal,
    returns_function,
)
from spanlens_lsp.enrichment.prompt.source import SpanContext
from spanlens_lsp.enrichment.reply import grounding
from spanlens_lsp.enrichment.reply.parse import open_brackets

_MUTATION = re.compile(
    r"\b(?:mutat\w*|modif\w*|chang\w*|alter\w*)\b[^.;]{0,40}\b(?:arguments?|parameters?|inputs?)\b"
    r"|\b(?:arguments?|parameters?)\b[^.;]{0,30}\b(?:mutated|modified|changed|altered)\b",
    re.IGNORECASE,
)
_TYPE_EXPR = re.compile(
    r"^[A-Za-z_][\w.]*(?:\[[\w.\[\], |\"'-]*\])?(?:\s*\|\s*[A-Za-z_][\w.\[\], ]*)*$"
)
_TYPE_PART = re.compile(r"[A-Za-z_][\w.]*")
#: Declared returns that say the code returns nothing (Python, TypeScript).
_NOTHING_RETURNED = frozenset({"None", "void"})
#: Declared types that say nothing (anything may be returned).
_ANY_TYPES = frozenset({"Any", "object", "unknown", "any", "interface"})
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
    errors += pitfall_errors(data["pitfalls"], ctx)
    errors += class_subject_errors(str(data["summary"]), ctx)
    errors += append_errors(data, ctx)
    errors += echo_errors(data)
    reason = cut_reason(str(data["summary"]))
    if reason:
        errors.append(f"summary is cut mid-sentence ({reason})")
    errors += cut_item_errors(data)
    errors += script_errors(data, ctx.code)
    return errors


# ----------------------------------------------------------------------------- side effects


def effect_errors(side_effects: list[str], ctx: SpanContext) -> list[str]:
    """Side effects claimed against the facts, and "none" where the facts show some (or, for
    facts with no side-effect notion, where a call with a certain effect shows some, or where
    a method changes its own object's state)."""
    if not side_effects:
        # The reply schema demands an entry by the same predicate (``effects_certain``).
        reason = effects_certain(ctx)
        return [f"side_effects claims none, but {reason}"] if reason else []
    return (
        _claims_against_facts(side_effects, ctx)
        or _kinds_ruled_out(side_effects, ctx)
        or unchanged_state_errors(side_effects, ctx)
    )


#: Words that claim a change ("checked and possibly adjusted", "updates", "resets").
_CHANGE_WORDS = re.compile(
    r"\b(?:adjust|chang|modif|updat|increas|decreas|increment|decrement|reset|mutat|alter"
    r"|overwrit|grow|shrink)\w*",
    re.IGNORECASE,
)


def unchanged_state_errors(side_effects: list[str], ctx: SpanContext) -> list[str]:
    """A method's side effect that claims a field of its own object changes (``c.limit``:
    "checked and possibly adjusted", seen for Go's ``Cache.Put`` in two runs) when the code
    neither assigns to that field nor calls a method on it. Not judged when the method calls
    another of its object's methods (``self.reset()``), which may change anything."""
    owners = own_names(ctx)
    if not owners or ctx.calls is None:
        return []
    own = "|".join(re.escape(o) for o in owners)
    if any(re.fullmatch(rf"(?:{own})\.\w+", call) for call in ctx.calls):
        return []
    targets = assigned_targets(ctx.code)
    for item in side_effects:
        if not _CHANGE_WORDS.search(item):
            continue
        for found in re.finditer(rf"\b(?:{own})\.\w+\b(?![(\w])", item):
            name = found.group(0)
            changed = any(
                t == name or t.startswith((f"{name}.", f"{name}[")) for t in targets
            ) or any(call.startswith(f"{name}.") for call in ctx.calls)
            if not changed:
                return [f"side_effects claims {name} changes, but the code never assigns it"]
    return []


def _kinds_ruled_out(side_effects: list[str], ctx: SpanContext) -> list[str]:
    """A file, network, process or printing effect claimed for code that cannot have one."""
    ruled_out = effects_ruled_out(ctx)
    if not ruled_out:
        return []
    for item in side_effects:
        kind = claimed_effect(item)
        if kind in ruled_out:
            calls = ", ".join(ruled_out[kind][:4])
            return [
                f"side_effects claims {item[:40]!a}, but the code has no {kind}: it calls "
                + (f"only {calls}" if calls else "nothing")
            ]
    return []


def _claims_against_facts(side_effects: list[str], ctx: SpanContext) -> list[str]:
    """Any effect claimed for code that calls and changes nothing; a mutation of arguments
    claimed for code that touches none (Python facts, which list effects)."""
    if ctx.effects is None or ctx.effects or ctx.calls is None:
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


def _mutates_a_parameter(params: list[str], targets: list[str], calls: tuple[str, ...]) -> bool:
    for param in params:
        if any(re.match(rf"\(?{re.escape(param)}[.\[]", target) for target in targets):
            return True
        if any(call.startswith(param + ".") for call in calls):
            return True
    return False


# ----------------------------------------------------------------------------- files

#: A claim that the span adds to an existing file rather than replacing it ("appends to it if
#: it does", "appends lines to the file if it exists", "the path where the file will be
#: created or appended").
_APPEND_CLAIM = re.compile(
    r"\bappend(?:s|ed|ing)?\s+(?:[\w`'\"]+\s+){0,3}?(?:to\s+)?"
    r"(?:it|the (?:existing )?file|an existing file)\b"
    r"|\b(?:created|creates?|create)\s+or\s+append(?:ed|s)?\b",
    re.IGNORECASE,
)


def append_errors(data: dict[str, Any], ctx: SpanContext) -> list[str]:
    """A claim that the span appends to an existing file when the code opens the file for
    writing, which replaces it (Qwen2.5-Coder-1.5B on Go's ``os.Create``: "creates the file
    if it does not exist or appends to it if it does")."""
    reason = replaces_file(ctx)
    if reason is None:
        return []
    for where, text in _texts(data, ("inputs", "side_effects", "pitfalls")):
        for claim in _APPEND_CLAIM.finditer(text):
            # "does not append to an existing file" (run 14) says what the code does.
            if not _NEGATED.search(text[: claim.start()]):
                return [f"{where} claims it appends to the file, but {reason}"]
    return []


#: A negation just before a claim, in the same clause ("does not ", "never ", "instead of ").
_NEGATED = re.compile(
    r"(?:\b(?:not|never|cannot|instead of|rather than|without|no longer)|n't)\s+(?:\w+\s+)?$",
    re.IGNORECASE,
)


# ----------------------------------------------------------------------------- pitfalls


def pitfall_errors(pitfalls: list[str], ctx: SpanContext) -> list[str]:
    """ "No pitfall" for a span that raises an exception it lets escape (the prompt names that a
    pitfall) or makes a call whose failure or effect reaches its caller (``open``, ``fetch``,
    ``os.Create``); what the entries say is not judged."""
    if pitfalls:
        return []
    # The reply schema demands an entry by the same predicate (``pitfall_certain``).
    reason = pitfall_certain(ctx)
    return [f"pitfalls claims none, but {reason}"] if reason else []


# ----------------------------------------------------------------------------- outputs


#: An output written as a bare type (``number``, ``map[string]string``, ``*Cache``, ``A | B``):
#: no space once those around ``|`` and ``,`` are gone.
_BARE_TYPE = re.compile(r"[`'\"]?[\w.*&\[\]<>(),|]+[`'\"]?")
_TYPE_SEPARATOR = re.compile(r"\s*([|,])\s*")


def output_errors(outputs: list[str], ctx: SpanContext) -> list[str]:
    """Outputs the declared return type (or ``return self``) contradicts, "nothing" for a
    span that declares it returns something, and a type as the output of a class."""
    if ctx.container:
        own = ctx.name.rpartition(".")[2]
        for item in outputs:
            bare = _BARE_TYPE.fullmatch(_TYPE_SEPARATOR.sub(r"\1", item.strip()))
            if bare and own not in item and not _NONE_WORDS.search(item):
                # Seen: `Counter` given `number` (its method's), `Cache` `map[string]string`.
                return [
                    f"outputs claims {item[:40]!a}, but a class or struct returns nothing of "
                    "its own (calling it makes an instance)"
                ]
    removed = _removed_claim(outputs, ctx) or _result_claim(outputs, ctx)
    if removed:
        return [removed]
    if not outputs:
        # The reply schema demands an entry by the same predicate (``output_certain``).
        reason = output_certain(ctx)
        return [f"outputs claims nothing is returned, but {reason}"] if reason else []
    if ctx.owner_class and returns_only_self(ctx.code):
        for item in outputs:
            if not _SELF_WORDS.search(item) and ctx.owner_class not in item:
                return [f"outputs claims {item[:40]!a}, but the method returns self"]
    declared = (ctx.returns or "").strip()
    # What the outputs claim is returned ("None", "nothing" claim nothing).
    claimed = [item for item in outputs if not _NONE_WORDS.search(item)]
    if not declared:
        # The reply schema allows no entry by the same predicate (``nothing_returned``).
        nothing = nothing_returned(ctx)
        if nothing and claimed:
            return [f"outputs claims {claimed[0][:40]!a}, but {nothing}"]
        return []
    if declared in _NOTHING_RETURNED:
        if claimed:
            return [f"outputs claims {claimed[0][:40]!a}, but the code declares -> {declared}"]
        return []
    if _ANY_TYPES.intersection(p.rpartition(".")[2] for p in _TYPE_PART.findall(declared)):
        return []
    for item in outputs:
        reason = type_contradiction(item, declared) or label_contradiction(item, declared)
        if reason:
            return [f"outputs claims {item[:40]!a}, {reason}"]
    return []


#: An output that says the value is what remains ("the number of items left after removal").
_REMAINING = re.compile(r"\b(?:left|remaining|remains?|still (?:in|held))\b", re.I)
#: An output that says it is what a function gives back ("the result of the debounced
#: function", "the return value of fn"), its label aside.
_RESULT_OF = re.compile(
    r"^\W*(?:[\w$.]+\s*:\s*)?(?:the\s+)?(?:result|return value|output|value returned)\s+"
    r"(?:of|by|from)\b",
    re.I,
)


def _removed_claim(outputs: list[str], ctx: SpanContext) -> str | None:
    """Why an output that says it returns what remains is false for code whose every return
    gives back what a removal took out (``return self.items.pop(name)``), or None. Seen in
    15 of 16 reviewed replies for ``Inventory.remove``: "the number of items left after
    removal" (``pop`` returns the value removed)."""
    call = returned_removal(ctx)
    if call is None:
        return None
    for item in outputs:
        found = _REMAINING.search(item)
        if found and not _NEGATED.search(item[: found.start()]):
            # Said plainly: told only "returns what pop() removed", the 1.5B model wrote "the
            # number of items remaining" again in five retries of run 22.
            return (
                f"outputs claims {item[:40]!a}, but {call}() returns the value it removed, "
                "not what remains"
            )
    return None


def _result_claim(outputs: list[str], ctx: SpanContext) -> str | None:
    """Why an output that says it is a function's result is false for code whose every
    return gives back a function (:func:`.certain.returns_function`), or None. Seen twice
    for ``debounce``: "the result of the debounced function" (it returns the debounced
    function itself)."""
    if not returns_function(ctx):
        return None
    for item in outputs:
        if _RESULT_OF.match(item):
            return f"outputs claims {item[:40]!a}, but the code returns a function, not its result"
    return None


#: Basic type names an output may be labelled with (``string: the parsed value``).
_BASIC_TYPES = frozenset(
    {"str", "string", "int", "integer", "float", "bool", "boolean", "bytes", "number", "error"}
    | {"int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64"}
    | {"float32", "float64", "byte", "rune", "bigint"}
)
_LABEL = re.compile(r"^\s*[`*]*(?P<label>[A-Za-z]\w*)[`*]*\s*(?::|\s[-–—])\s+\S")


def label_contradiction(item: str, declared: str) -> str | None:
    """Why an output labelled with a basic type (``string: the output``) contradicts the
    ``declared`` return type, or None (no basic-type label, or one the declaration allows)."""
    match = _LABEL.match(item)
    if not match or match.group("label").lower() not in _BASIC_TYPES:
        return None
    label = match.group("label").lower()
    wanted = [p.rpartition(".")[2] for p in _TYPE_PART.findall(declared)]
    if not wanted or any(_is_type_var(p) for p in wanted):
        return None
    if any(_compatible(label, w) for w in wanted):
        return None
    return f"but the code declares -> {declared}"


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
    values = return_values(code)
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
    # Prompt versions 5 and 6 (side effects).
    "what it does beyond computing its return value, naming each file, stream, process, "
    "network call, object or state it opens, reads, writes, sends, spawns or changes",
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


def _texts(data: dict[str, Any], lists: tuple[str, ...]) -> list[tuple[str, str]]:
    """The summary and each entry of the ``lists`` fields, each with its field's name."""
    return [("summary", str(data["summary"]))] + [
        (key, str(item)) for key in lists for item in data[key]
    ]


#: The kinds of thing the prompt lists for side effects (file, stream, process, network,
#: object, state): one entry naming four of them repeats the list, whatever its words
#: ("subprocess.run opens and reads from files, processes, networks, objects or states").
_EFFECT_KIND_WORDS = re.compile(
    r"\b(?P<kind>file|stream|process|network|object|state)(?:s|es)?\b", re.IGNORECASE
)
_KINDS_LISTED = 4


def lists_effect_kinds(item: str) -> bool:
    """Whether a side-effect entry names :data:`_KINDS_LISTED` or more of the prompt's kinds
    of effect (the prompt's list said back, not an effect of the code)."""
    kinds = {m.group("kind").lower() for m in _EFFECT_KIND_WORDS.finditer(item)}
    return len(kinds) >= _KINDS_LISTED


def echo_errors(data: dict[str, Any]) -> list[str]:
    """Texts of ``data`` copied from the prompt's instructions."""
    for where, text in _texts(data, ("outputs", "side_effects", "pitfalls")):
        if echoes_prompt(text):
            return [f"{where} copies the prompt's instructions: {text[:40]!a}"]
    for item in data["side_effects"]:
        if lists_effect_kinds(str(item)):
            return [f"side_effects lists the prompt's kinds of effect: {str(item)[:60]!a}"]
    for key in ("side_effects", "pitfalls"):
        items = [grounding.fold(i) for i in data[key]]
        if len(items) >= 2 and any(
            all(f" {i} " in f" {text} " for i in items) for text in instruction_texts()
        ):
            return [f"{key} lists the prompt's own examples: {', '.join(data[key])[:60]!a}"]
    return []


# ----------------------------------------------------------------------------- cut text


def cut_reason(summary: str) -> str | None:
    """Why ``summary`` ends mid-sentence (a length bound cut it), or None."""
    text = summary.rstrip()
    if not text or (text[-1] in ".!?" and not text.endswith("...")):
        return None  # a closed sentence, whatever stray backtick it holds
    reason = _open_mark(text)
    if reason:
        return reason
    if text[-1] in "=([{,:-+*/&|<":
        return f"ends with {text[-1]!a}"
    if text[-1] in ".!?)`\"'":
        return None
    last = text.split()[-1].lower()
    if last in _FUNCTION_WORDS:
        return f"ends with {last!a}"
    if _SENTENCE_BREAK.search(text):
        # Run 24, `Cache`: "... The `limit` field specifies how many entries can be stored
        # before new ones" (its bound). Sentences before it ended; this one did not.
        return "its last sentence has no end"
    return None


#: The end of one sentence and the start of the next.
_SENTENCE_BREAK = re.compile(r"[.!?]\s+[A-Z`\"']")


def _open_mark(text: str) -> str | None:
    """An open backtick or bracket in ``text`` (what a cut leaves), or None."""
    if text.count("`") % 2:
        return "an open backtick"
    if text.count("(") > text.count(")") or text.count("[") > text.count("]"):
        return "an open bracket"
    return None


#: Words a list entry cannot end with (a preposition may: "the file to read from").
_ITEM_END_WORDS = frozenset(
    {"the", "a", "an", "and", "or", "of", "that", "which", "its", "their", "is", "are", "than"}
)


def cut_item_reason(item: str) -> str | None:
    """Why a list entry ends mid-phrase (a length bound cut it), or None."""
    text = item.rstrip()
    if not text:
        return None
    reason = _open_mark(text)
    if reason:
        return reason
    if text[-1] in ",(:[{":
        return f"ends with {text[-1]!a}"
    last = text.split()[-1].lower()
    if last in _ITEM_END_WORDS:
        return f"ends with {last!a}"
    return None


def cut_item_errors(data: dict[str, Any]) -> list[str]:
    """List entries and a usage snippet that a length bound cut mid-phrase."""
    for key in ("inputs", "outputs", "side_effects", "pitfalls"):
        for item in data[key]:
            reason = cut_item_reason(str(item))
            if reason:
                return [f"{key} entry is cut ({reason}): {str(item)[-40:]!a}"]
    snippet = data.get("usage_snippet")
    if isinstance(snippet, str) and open_brackets(snippet):
        return [f"usage_snippet is cut (an open bracket): {snippet[-40:]!a}"]
    return []


# ----------------------------------------------------------------------------- other scripts

#: Letters of scripts an English reply has no reason to switch to: CJK, kana, Hangul,
#: Cyrillic, Arabic, Hebrew, Thai.
_OTHER_SCRIPT = re.compile(
    "[\u0400-\u04ff\u0590-\u05ff\u0600-\u06ff\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af]+"
)


def script_errors(data: dict[str, Any], code: str) -> list[str]:
    """Text in a script the span's code does not use (a model switching language mid-reply)."""
    for where, text in _texts(data, ("inputs", "outputs", "side_effects", "pitfalls")):
        for match in _OTHER_SCRIPT.finditer(text):
            if match.group()[0] not in code:
                return [f"{where} switches to another script: {match.group()[:20]!a}"]
    return []
