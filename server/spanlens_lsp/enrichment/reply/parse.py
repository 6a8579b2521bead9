"""Parse and repair a model's reply: find its JSON object, then make only the repairs that
cannot change what the model said.

1. :func:`extract_json` finds the JSON object in the text (a bare object, one inside a
   Markdown fence, or one surrounded by prose).
2. :func:`repair` drops keys the schema does not know, turns a string into a one-item list,
   drops blank and "none" list items (``No side effects; ...`` included), moves an exception
   told as a side effect or an output to the pitfalls, drops exact and near-duplicate list
   entries, swaps evidence written backwards (``[181, 180]``), turns an
   empty snippet into null, strips a fence around the snippet and clamps it to 12 lines.

What is left is judged by :mod:`.validate`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from spanlens_lsp.enrichment.prompt.certain import pure_module_call
from spanlens_lsp.enrichment.prompt.schema import (
    FIELDS,
    LIST_CAPS,
    LIST_FIELDS,
    MAX_SNIPPET_LINES,
)
from spanlens_lsp.enrichment.reply import grounding
from spanlens_lsp.enrichment.reply.placeholders import UNSAFE_REASON, placeholder_reason

_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n(.*?)\n\s*```", re.DOTALL)
_MAX_OBJECT_STARTS = 64
#: One line of code in a single pair of backticks (inline code, not a Go raw string: a line
#: that is only a raw string literal is no usage example).
_TICKED = re.compile(r"`([^`\n]+)`")


# ----------------------------------------------------------------------------- parsing


def extract_json(text: str) -> tuple[Any, bool] | None:
    """The JSON value in ``text`` and whether prose or fences had to be stripped; None if none."""
    stripped = text.strip()
    try:
        return json.loads(stripped), False
    except ValueError:
        pass
    for match in _FENCE.finditer(text):
        try:
            return json.loads(match.group(1)), True
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    start = text.find("{")
    tries = 0
    while start != -1 and tries < _MAX_OBJECT_STARTS:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value, True
        start = text.find("{", start + 1)
        tries += 1
    return None


# ----------------------------------------------------------------------------- repair


def repair(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``obj`` with only safe repairs applied, and what was repaired."""
    repairs: list[str] = []
    data = {k: v for k, v in obj.items() if k in FIELDS}
    dropped = sorted(set(obj) - set(data) - {"span_id"})
    if dropped:
        repairs.append("dropped unknown keys " + ", ".join(dropped))
    for key in LIST_FIELDS:
        value = data.get(key)
        if isinstance(value, str):
            data[key] = [value.strip()] if value.strip() else []
            repairs.append(f"{key}: string made a list")
        elif isinstance(value, list) and any(isinstance(v, str) and not v.strip() for v in value):
            data[key] = [v for v in value if not (isinstance(v, str) and not v.strip())]
            repairs.append(f"{key}: blank items dropped")
        value = data.get(key)
        if isinstance(value, list) and any(_says_nothing(v, key) for v in value):
            # ["None"] as side effects says what [] says (the prompt asks for an empty list),
            # and so do "stream: none" and "network: no network calls are made".
            data[key] = [v for v in value if not _says_nothing(v, key)]
            repairs.append(f"{key}: 'none' items dropped")
        value = data.get(key)
        if key in _EXCEPTION_FIELDS and isinstance(value, list):
            moved = _move_exceptions(data, key)
            if moved:
                repairs.append(f"{key}: {moved} exceptions moved to pitfalls")
        value = data.get(key)
        misplaced = _MISPLACED.get(key)
        if misplaced and isinstance(value, list) and any(map(misplaced, value)):
            # Side effects: "returns next", "json_load: parses the JSON data", "JSON.stringify"
            # (the outputs say the first; the rest is computation): none claims anything
            # done. Tags: "description" between two real tags (a tag is a label: dropping one
            # that says nothing loses nothing and invents nothing).
            data[key] = [v for v in value if not misplaced(v)]
            repairs.append(f"{key}: {_MISPLACED_NOTE[key]} dropped")
        value = data.get(key)
        if isinstance(value, list):
            # Saying a thing twice adds nothing: keep the first of each (near-)duplicate.
            data[key], repeats = grounding.dedupe(value)
            if repeats:
                repairs.append(f"{key}: {repeats} repeated entries dropped")
    if isinstance(data.get("summary"), str):
        data["summary"] = data["summary"].strip()
    if isinstance(data.get("evidence"), list):
        data["evidence"] = [dict(i) if isinstance(i, dict) else i for i in data["evidence"]]
    swapped = _swap_backward_evidence(data.get("evidence"))
    if swapped:
        repairs.append(f"evidence: {swapped} backward line ranges swapped")
    snippet = data.get("usage_snippet")
    if isinstance(snippet, str):
        data["usage_snippet"], note = _repair_snippet(snippet)
        if note:
            repairs.append(note)
    return data, repairs


def _says_nothing(item: Any, key: str = "") -> bool:
    if not isinstance(item, str):
        return False
    for text in _with_and_without_label(item.strip().lower()):
        if text.rstrip(".") in _NOTHING or _NONE_SENTENCE.match(text) is not None:
            return True
        # "no process is spawned": a side effect that says one is not had (a pitfall such
        # as "no check for an empty list" is one).
        if key == "side_effects" and _NO_EFFECT.match(text):
            return True
    return False


_NO_EFFECT = re.compile(r"^(?:no|not|never|nothing)\b|^(?:it|this \w+) (?:does not|doesn't)\b")


#: A label a small model puts before an entry ("next: ", "`json_load`: ", "error - ").
_LABEL = re.compile(r"^\W*[\w.`*\[\]()]{1,40}\s*(?::|\s[-\u2013\u2014])\s+")
#: The subject an entry may open with ("it", "the function", a call: "urlopen() raises URLError
#: when the request fails", run 26) and the verbs that say an
#: exception comes ("may raise", "throws"): shared by :data:`_NOT_AN_EFFECT` and
#: :data:`_RAISES`.
_SUBJECT = r"^\W*(?:(?:it|this function|the function|the method|`?[A-Za-z_][\w.]*\(\)`?)\s+)?"
_RAISE_VERB = r"(?:(?:may|might|can|will)\s+(?:raise|throw)|raises?|throws?)"
#: A side-effect entry (after its label) that tells a return value, an exception or a
#: computation, not an effect.
_NOT_AN_EFFECT = re.compile(
    _SUBJECT + r"(?:" + _RAISE_VERB + r"|returns?"
    r"|yields?|rejects?|is returned|are returned|parses|decodes|encodes|converts|computes"
    r"|calculates|serializes|deserializes|uses|handles)\b"
    # "output is returned as a string or an error" (run 15): a return, its subject first.
    r"|^\W*(?:the\s+|its\s+)?\w+(?:\s+\w+)?\s+(?:is|are)\s+returned\b",
    re.I,
)
#: An entry labelled with an exception's name.
_EXCEPTION_LABEL = re.compile(r"^\W*[\w.]*(?:Error|Exception)`?\s*:")
#: An entry that opens with an exception's name and says when it comes ("URLError when the
#: request fails", "ValueError is raised if ...", "Error is thrown if ..."). The name is a
#: class's, in its case: "error is logged to stderr" is an effect.
_EXCEPTION_FIRST = re.compile(
    r"^\W*(?:\w+\.)*(?:[A-Z]\w*)?(?:Error|Exception)`?\s+(?i:when|if|is|are|on|in case)\b"
)
#: A whole pitfall that says nothing a caller can act on: "may not handle errors gracefully",
#: "does not handle errors gracefully" (runs 11, 13, 14), "error handling is not robust".
_EMPTY_PITFALL = re.compile(
    r"^(?:(?:the|this)\s+(?:function|method|code)\s+|it\s+)?"
    r"(?:(?:may|might|does|do|can)\s*(?:not|n't)|doesn't|cannot|can't)\s+handle\s+"
    r"(?:all\s+|any\s+)?(?:errors?|exceptions?|edge cases)\s+"
    r"(?:gracefully|properly|correctly|well|robustly)\W*$"
    r"|^(?:the\s+)?error handling (?:is|may be) (?:not robust|minimal|limited|poor)\W*$",
    re.IGNORECASE,
)
#: An output entry (after its label) that tells an exception, not a value.
_NOT_AN_OUTPUT = re.compile(r"^\W*(?:raises?|throws?)\b", re.I)
#: A whole entry that is only a call's name (``JSON.stringify``, ``json.load()``).
_BARE_CALL = re.compile(r"^\W*(?P<call>[A-Za-z_][\w.]*)(?:\(\))?\W*$")


def _with_and_without_label(item: str) -> tuple[str, str]:
    """``item`` as written and without its leading label (``"next: "``, ``"error - "``): the
    rules that read an entry's start read both."""
    return item, _LABEL.sub("", item, count=1)


def _not_effect(item: Any) -> bool:
    if not isinstance(item, str):
        return False
    bare = _BARE_CALL.match(item)
    if bare and pure_module_call(bare.group("call")):
        return True
    if _EXCEPTION_LABEL.match(item) or _EXCEPTION_FIRST.match(item):
        # "URLError: if the request fails, the function raises an exception", "URLError when
        # the request fails" (run 14): an exception, which the pitfalls tell.
        return True
    return any(_NOT_AN_EFFECT.match(text) for text in _with_and_without_label(item))


#: Fields where an exception is told by mistake: the prompt calls an exception that escapes a
#: pitfall.
_EXCEPTION_FIELDS = ("outputs", "side_effects")
#: An entry (after its label) that says an exception comes ("raises ValueError if ...", "may
#: throw", "Throws an Error if ...").
_RAISES = re.compile(_SUBJECT + _RAISE_VERB + r"\b", re.I)
#: An exception's name (``URLError``, ``json.JSONDecodeError``, ``RangeError``).
_EXCEPTION_NAME = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception)\b")


def _tells_exception(item: Any) -> bool:
    if not isinstance(item, str):
        return False
    if _EXCEPTION_LABEL.match(item) or _EXCEPTION_FIRST.match(item):
        return True
    return any(_RAISES.match(text) for text in _with_and_without_label(item))


def _move_exceptions(data: dict[str, Any], key: str) -> int:
    """Move ``data[key]``'s entries that tell an exception the pitfalls do not to the
    pitfalls, where the prompt asks for them (Qwen2.5-Coder-1.5B wrote "URLError if the request
    fails" as a side effect and "none" as the pitfall, four times in one run: the words are the
    model's, only their field changes). An exception the pitfalls already name, or one named by
    no class ("it may raise an exception") when the pitfalls say anything, is left where it is
    (the misplaced-entry rule drops it). Entries past the pitfalls' cap are left too. Returns
    how many moved."""
    pitfalls = data.get("pitfalls")
    if not isinstance(pitfalls, list):
        return 0  # a wrong shape is the validator's to reject
    said = [p for p in pitfalls if isinstance(p, str) and not _says_nothing(p, "pitfalls")]
    known = {name.lower() for p in said for name in _EXCEPTION_NAME.findall(p)}
    moved: list[str] = []
    for entry in data[key]:
        if len(said) + len(moved) >= LIST_CAPS["pitfalls"] or not _tells_exception(entry):
            continue
        names = {name.lower() for name in _EXCEPTION_NAME.findall(entry)}
        if (names and not names & known) or (not names and not said and not moved):
            moved.append(entry)
    if moved:
        data[key] = [v for v in data[key] if v not in moved]
        data["pitfalls"] = [*pitfalls, *moved]
    return len(moved)


def _placeholder_tag(tag: Any) -> bool:
    """A tag that stands in for one ("description", "TODO", "n/a"; written as compact JSON,
    Qwen2.5-Coder-1.5B put "description" between two real tags in a third of its replies).
    Text with control or bidi characters is no placeholder: the validator rejects the whole
    reply for it."""
    if not isinstance(tag, str):
        return False
    reason = placeholder_reason(tag)
    return reason is not None and reason != UNSAFE_REASON


def _says_nothing_pitfall(item: Any) -> bool:
    return isinstance(item, str) and _EMPTY_PITFALL.match(item.strip()) is not None


def _not_output(item: Any) -> bool:
    return isinstance(item, str) and any(
        _NOT_AN_OUTPUT.match(text) for text in _with_and_without_label(item)
    )


#: Entries of a list that belong elsewhere, dropped by :func:`repair`, with the note said.
_MISPLACED = {
    "side_effects": _not_effect,
    "outputs": _not_output,
    "pitfalls": _says_nothing_pitfall,
    "tags": _placeholder_tag,
}
_MISPLACED_NOTE = {
    "side_effects": "returns, raises and computations",
    "outputs": "exceptions",
    "pitfalls": "pitfalls that say nothing ('does not handle errors gracefully')",
    "tags": "placeholder tags",
}


#: List items that mean "there are none".
_NOTHING = frozenset({"none", "n/a", "na", "nothing", "no side effects", "no pitfalls"})
#: A sentence that says there are none ("No side effects; the method does not modify ...").
_NONE_SENTENCE = re.compile(
    r"^(?:none\s*(?:[;:,.(\-\u2013\u2014]|$)|no\s+(?:side[- ]effects?|pitfalls?)\b|"
    # Run 19: "[]: no return value" as a second output of a function that returns one.
    r"(?:no\s+return(?:ed)?\s+values?|nothing\s+is\s+returned)\W*$|"
    r"(?:it|this \w+|the \w+)\s+(?:has|causes|produces)\s+no\s+side[- ]effects?\b|"
    r"(?:it|this \w+|the \w+)\s+does\s+not\s+have\s+(?:any\s+)?side[- ]effects?\b|"
    # Run 13: "There are no known pitfalls in this code." for a class.
    r"there\s+(?:are|is)\s+no\s+(?:known\s+|obvious\s+|other\s+)?"
    r"(?:side[- ]effects?|pitfalls?)\b)"
)


def _swap_backward_evidence(evidence: Any) -> int:
    """Swap ``[last, first]`` evidence ranges in place (the same lines, written backwards)."""
    swapped = 0
    for item in evidence if isinstance(evidence, list) else []:
        lines = item.get("lines") if isinstance(item, dict) else None
        if (
            isinstance(lines, list)
            and len(lines) == 2
            and all(type(n) is int for n in lines)
            and lines[0] > lines[1]
        ):
            item["lines"] = [lines[1], lines[0]]
            swapped += 1
    return swapped


def _repair_snippet(snippet: str) -> tuple[str | None, str | None]:
    text = snippet.strip("\n")
    if not text.strip():
        return None, "usage_snippet: empty made null"
    note = None
    match = _FENCE.fullmatch(text.strip())
    if match:
        text = match.group(1)
        note = "usage_snippet: fence stripped"
    ticked = _TICKED.fullmatch(text.strip())
    if ticked:
        # Run 22: "`inventory.save('inventory.json')`", Markdown's inline code around a line
        # that is code already; shown in a code block, the backticks break it.
        text = ticked.group(1)
        note = "usage_snippet: backticks stripped"
    lines = text.splitlines()
    if len(lines) > MAX_SNIPPET_LINES:
        text = "\n".join(lines[:MAX_SNIPPET_LINES])
        note = f"usage_snippet: clamped to {MAX_SNIPPET_LINES} lines"
    if open_brackets(text):
        # An example call cut at its length bound (``err := c.Put(``) is no example, and the
        # field may be null: dropped rather than asked again (Qwen2.5-Coder-1.5B wrote the
        # same over-long snippet for Go's `Cache.Put` in all six tries of one run).
        return None, "usage_snippet: cut at its bound, dropped"
    return text, note


def open_brackets(code: str) -> bool:
    """Whether ``code`` leaves a bracket open (what a cut at a length bound leaves)."""
    depth = 0
    for char in code:
        depth += (char in "([{") - (char in ")]}")
    return depth > 0
