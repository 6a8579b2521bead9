"""The enrichment JSON schema: what a model must return for one span, and for a batch.

Two views of one schema. :data:`ENRICHMENT_SCHEMA` is the full contract, checked locally
with jsonschema. :func:`wire_schema` is what goes to a provider as the structured-output
format: the same shape without length and range keywords, which some servers reject (OpenAI
strict mode) or cannot turn into a grammar.

Models are asked for :data:`ASKED_FIELDS`. ``evidence`` (line ranges citing the code) is no
longer asked for: nothing showed it, and a small model paid ~9 reply tokens a span for it. A
reply may still carry it (a model's own habit, an older stand-in); it is checked and kept then,
and every stored enrichment has the key (``[]`` when none was given), so the stored shape is
unchanged. Replies cite evidence by file line number (the prompt numbers the code that way);
stored enrichments hold them relative to the span (1 = its first line), because an enrichment
is keyed by content hash and stays valid when its span moves or has an identical twin
(see :func:`spanlens_lsp.enrichment.reply.validate.to_span_lines`).

Bump ``SCHEMA_VERSION`` in :mod:`spanlens_lsp.states` when the shape changes: older enrichments then
show as stale, not lost.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from spanlens_lsp.enrichment.prompt.names import needs_input

#: Fields of a stored enrichment, in the order prompts and hovers list them.
FIELDS = (
    "summary",
    "inputs",
    "outputs",
    "side_effects",
    "pitfalls",
    "tags",
    "usage_snippet",
    "evidence",
)
#: Fields a model is asked for (and a reply must hold): all but ``evidence``.
ASKED_FIELDS = FIELDS[:-1]
#: Fields that hold lists of short strings.
LIST_FIELDS = ("inputs", "outputs", "side_effects", "pitfalls", "tags")
#: Fields an evidence entry may point at.
EVIDENCE_FIELDS = ("summary", "inputs", "outputs", "side_effects", "pitfalls", "usage_snippet")

MAX_SUMMARY_WORDS = 120
MAX_SNIPPET_LINES = 12
#: Longest list entry, in characters: a sentence or two, not a paragraph.
MAX_ITEM_CHARS = 200
#: Longest ``inputs`` entry: a parameter name (some are long), a colon and a sentence.
MAX_INPUT_CHARS = 300
MAX_INPUTS = 64
#: Longest tag, in characters.
MAX_TAG_CHARS = 24
#: Most entries per list field: the local schema's ``maxItems``, the validator's cap and the
#: ceiling of every bounded schema sent to a model (one source for all three).
LIST_CAPS: dict[str, int] = {
    # One entry per parameter: some functions have dozens (subprocess.Popen has 25).
    "inputs": MAX_INPUTS,
    "outputs": 5,
    "side_effects": 6,
    "pitfalls": 6,
    "tags": 5,
}
#: Longest entry per list field (characters).
ITEM_CHARS: dict[str, int] = {
    "inputs": MAX_INPUT_CHARS,
    "outputs": MAX_ITEM_CHARS,
    "side_effects": MAX_ITEM_CHARS,
    "pitfalls": MAX_ITEM_CHARS,
    "tags": MAX_TAG_CHARS,
}


def _short_list(key: str) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": ITEM_CHARS[key]},
        "maxItems": LIST_CAPS[key],
    }


#: One evidence entry: a field and the [first, last] lines that show it (the validator holds
#: them within the span).
_EVIDENCE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["field", "lines"],
    "properties": {
        "field": {"type": "string", "enum": list(EVIDENCE_FIELDS)},
        "lines": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1},
            "minItems": 2,
            "maxItems": 2,
        },
    },
}

_PROPERTIES: dict[str, Any] = {
    "summary": {"type": "string", "minLength": 1, "maxLength": 1200},
    **{key: _short_list(key) for key in LIST_FIELDS},
    "usage_snippet": {"type": ["string", "null"], "maxLength": 2000},
    "evidence": {"type": "array", "items": _EVIDENCE, "maxItems": 40},
}

#: One span's enrichment: the object stored in ``enrichments.data``.
ENRICHMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": list(ASKED_FIELDS),
    "properties": _PROPERTIES,
}

#: A batch reply: one entry per span id of the request.
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["enrichments"],
    "properties": {
        "enrichments": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["span_id", *ASKED_FIELDS],
                "properties": {"span_id": {"type": "integer"}, **_PROPERTIES},
            },
        }
    },
}

_WIRE_DROPPED = {"minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"}


def wire_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without length and range keywords, for a provider's structured output."""
    return strip_keywords(schema, _WIRE_DROPPED)


# ----------------------------------------------------------------------------- bounds

#: Every bound keyword :func:`bounded_schema` may write. An engine that turns schemas into a
#: grammar enforces a subset (see ``Capabilities.bounds``); the rest is stripped for it.
BOUND_KEYWORDS = frozenset(
    {"maxLength", "minLength", "maxItems", "minItems", "enum", "pattern", "minimum", "maximum"}
)
#: Characters a reply token covers at least, for sizing ``max_tokens`` from string bounds.
#: Prose and identifiers average 3.5-4.5 with the tokenizers of local models; 3 keeps room
#: for the repetitive text a small model loops on.
BOUND_CHARS_PER_TOKEN = 3.0
#: Characters of summary allowed per word asked for: about twice an average word, so that a
#: reply keeping to the word count is never cut by the grammar at ``maxLength``.
SUMMARY_CHARS_PER_WORD = 12


@dataclass(frozen=True, slots=True)
class ReplySizes:
    """What one span's reply is bounded by at scale 1 (see :func:`reply_sizes`)."""

    #: Summary words the prompt asks for (its ``maxLength`` allows twice an average word).
    summary_words: int
    #: Entries per list (outputs, side effects, pitfalls).
    items: int
    #: Characters per list entry.
    item_chars: int
    #: Characters of the usage snippet.
    snippet_chars: int


#: Sizes by span length (at most that many lines; the last row for anything longer). A
#: 3-line getter has less to say than a 60-line function: its reply is bounded, and paid for
#: token by token, accordingly.
_SIZES_BY_LINES: tuple[tuple[int, ReplySizes], ...] = (
    (5, ReplySizes(20, 2, 120, 160)),
    (20, ReplySizes(30, 3, 140, 240)),
    (60, ReplySizes(40, 3, 160, 300)),
    (1 << 30, ReplySizes(60, 4, MAX_ITEM_CHARS, 360)),
)
_TAGS = (3, MAX_TAG_CHARS)
_SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)


def reply_sizes(lines: int) -> ReplySizes:
    """The reply bounds of a span of ``lines`` lines, at scale 1."""
    return next(sizes for most, sizes in _SIZES_BY_LINES if lines <= most)


def summary_words(schema: dict[str, Any]) -> int:
    """Summary words to ask for under ``schema`` (a one-span schema, or a batch's widest)."""
    props = schema.get("properties", {})
    if "enrichments" in props:
        items = props["enrichments"]["items"]
        return max(summary_words(entry) for entry in items.get("anyOf", [items]))
    limit = int(props.get("summary", {}).get("maxLength", 600))
    return max(10, limit // SUMMARY_CHARS_PER_WORD)


@dataclass(frozen=True, slots=True)
class SpanBounds:
    """What a reply for one span may mention: its id, parameter names and lines."""

    span_id: int
    #: None when the facts list no parameters (then ``inputs`` is bounded like other lists).
    params: tuple[str, ...] | None
    first_line: int
    last_line: int
    #: "No side effects" is false for the span (see :func:`.certain.effects_certain`):
    #: ``side_effects`` must hold an entry.
    effects_certain: bool = False
    #: The span declares or returns a value (see :func:`.certain.output_certain`): ``outputs`` must
    #: hold an entry.
    returns_something: bool = False
    #: The span raises an exception that escapes it, or makes a call whose failure or effect
    #: reaches its caller (see :func:`.certain.pitfall_certain`): ``pitfalls`` must hold an
    #: entry.
    pitfall_certain: bool = False
    #: The span returns no value (see :func:`.certain.nothing_returned`): ``outputs`` holds
    #: no entry.
    nothing_returned: bool = False
    #: A class or struct: it returns nothing of its own, so ``outputs`` holds no entry (a
    #: small model gave a class its method's return type, and repeated it when told why),
    #: and its side effects are its methods' (each described on its own, and listed in the
    #: class's hover), so ``side_effects`` holds none either.
    container: bool = False


def bounded_schema(
    spans: list[SpanBounds],
    room_tokens: int | None = None,
    keywords: frozenset[str] = BOUND_KEYWORDS,
) -> tuple[dict[str, Any], int]:
    """The tightest reply schema for ``spans`` (one, or a batch) and its reply-token bound.

    Every string has a ``maxLength`` and every list a ``maxItems``; ``inputs`` holds at most one
    entry per parameter, each starting with one of the span's parameter names, and at least
    one per parameter that must be described; ``side_effects`` and ``outputs`` hold at least
    one entry where "none" would be false (``effects_certain``, ``returns_something``, and
    ``pitfalls`` for ``pitfall_certain``), ``outputs`` none where nothing is returned (a class,
    ``nothing_returned``), ``side_effects`` none for a class (its methods' are theirs);
    each output is "value: what it means", not a bare type (a pattern); no evidence is asked
    for; a batch's ids are the request's ids. Sizes shrink
    (down to a quarter) until the bound fits ``room_tokens``. Only the ``keywords`` the engine
    enforces are kept; the bound is computed from the full schema either way, so a reply that
    keeps to it fits.
    """
    schema: dict[str, Any] = {}
    bound = 0
    for scale in _SCALES:
        schema = _bounded(spans, scale)
        bound = reply_token_bound(schema)
        if room_tokens is None or bound <= room_tokens:
            break
    return strip_keywords(schema, BOUND_KEYWORDS - keywords), bound


#: The words an input's meaning may open with in the grammar: prose, not a type.
_MEANING_OPENERS = "the|a|an|how|whether|which|what|any|one|each"


def _effect_pattern(chars: int) -> str:
    """A side effect that opens with a lower-case letter and not with "none" or "no "."""
    return "^([a-mo-z]|n[a-np-z]|no[a-mo-z]|non[a-df-z])[^\\n]{0," + str(max(1, chars - 4)) + "}$"


def _snippet_pattern(chars: int) -> str:
    """One line that does not end inside a call: Qwen2.5-Coder-1.5B closed the JSON string
    with a Go string literal's opening quote (``err := c.Put(``, five Go spans a run, each
    dropped); where the string may not end after ``(``, it escapes the quote instead (ten of
    ten Go snippets whole when tried)."""
    return "^[^\\n]{0," + str(max(0, chars - 1)) + "}[^(\\[{, \\n]$"


def _bounded(spans: list[SpanBounds], scale: float) -> dict[str, Any]:
    def text(limit: int) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": limit}

    def entry(span: SpanBounds) -> dict[str, Any]:
        sizes = reply_sizes(span.last_line - span.first_line + 1)
        words = max(10, int(sizes.summary_words * scale))
        summary = words * SUMMARY_CHARS_PER_WORD
        items, item_chars, snippet = (
            max(1, int(v * scale)) for v in (sizes.items, sizes.item_chars, sizes.snippet_chars)
        )
        params = [p for p in span.params or () if p]
        # Only the parameters that must be described are offered when there are any: an
        # entry for a receiver (``self``) would fill the ``minItems`` that ``path`` needs.
        params = [p for p in params if needs_input(p)] or params
        inputs_item = text(
            min(MAX_INPUT_CHARS, item_chars + max((len(p) for p in params), default=0))
        )
        if params:
            names = "|".join(re.escape(p) for p in params)
            # llama.cpp ignores maxLength next to a pattern: the pattern bounds the length. The
            # meaning opens as prose ("the", "a", "how", "whether", ...): a type first ("key:
            # string") is no meaning, which the validator rejects, and Qwen2.5-Coder-1.5B went
            # on from it to the next parameter ("key: string, by = 1 (optional) number ...",
            # six calls of run 23, never stored); 91 % of the reviewed-correct entries open so.
            # No colon after the name's: another parameter's "name:" cannot follow.
            inputs_item["pattern"] = f"^({names}): ({_MEANING_OPENERS}) [^:]{{1,{item_chars}}}$"
        inputs_max = min(len(params) if span.params is not None else items, MAX_INPUTS)
        # One entry per parameter (a receiver may go unsaid): the validator rejects fewer.
        inputs_min = min(len([p for p in params if needs_input(p)]), inputs_max)
        # What the validator would reject as a false "none" is demanded here (same predicate).
        lists_min = {
            "outputs": span.returns_something,
            "side_effects": span.effects_certain,
            "pitfalls": span.pitfall_certain,
        }
        patterns = {
            # A bare type says nothing the signature does not (a small model wrote `int`,
            # `string[]`, `*Cache` for most typed functions): an output says what it means.
            "outputs": f"^[^\\n]{{1,60}}: .{{8,{item_chars}}}$",
        }
        if span.effects_certain and not span.container:
            # Where the code has an effect, a side effect opens in lower case and not with
            # "none"/"no ": Qwen2.5-Coder-1.5B wrote the exception instead ("URLError if the
            # request fails", moved to the pitfalls) or "none" for `fetch_text` in six calls
            # of run 24, and never stored it.
            patterns["side_effects"] = _effect_pattern(item_chars)
        props: dict[str, Any] = {
            "summary": text(summary),
            "inputs": {
                "type": "array",
                "items": inputs_item,
                "maxItems": inputs_max,
                **({"minItems": inputs_min} if inputs_min else {}),
            },
            **{
                key: {
                    "type": "array",
                    "items": text(item_chars)
                    | ({"pattern": patterns[key]} if key in patterns else {}),
                    "maxItems": 0
                    if (key == "outputs" and (span.container or span.nothing_returned))
                    or (key == "side_effects" and span.container)
                    else min(items, LIST_CAPS[key]),
                    **({"minItems": 1} if lists_min.get(key) else {}),
                }
                for key in ("outputs", "side_effects", "pitfalls")
            },
            "tags": {"type": "array", "items": text(_TAGS[1]), "maxItems": _TAGS[0]},
            "usage_snippet": {
                "type": ["string", "null"],
                "maxLength": snippet,
                "pattern": _snippet_pattern(snippet),
            },
        }
        return {
            "type": "object",
            "additionalProperties": False,
            "required": list(ASKED_FIELDS),
            "properties": props,
        }

    if len(spans) == 1:
        return entry(spans[0])
    entries = []
    for span in spans:
        one = entry(span)
        one["required"] = ["span_id", *one["required"]]
        one["properties"] = {
            "span_id": {"type": "integer", "enum": [span.span_id]},
            **one["properties"],
        }
        entries.append(one)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["enrichments"],
        "properties": {
            "enrichments": {
                "type": "array",
                "items": {"anyOf": entries} if len(entries) > 1 else entries[0],
                "minItems": 1,
                "maxItems": len(spans),
            }
        },
    }


def reply_token_bound(schema: dict[str, Any]) -> int:
    """Tokens a reply that keeps to ``schema``'s bounds can take at most (JSON punctuation and
    keys included), with :data:`BOUND_CHARS_PER_TOKEN` for string contents."""

    def walk(node: Any) -> int:
        if not isinstance(node, dict):
            return 1
        if "anyOf" in node:
            return max(walk(option) for option in node["anyOf"])
        kind = node.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        if "object" in kinds:
            props = node.get("properties", {})
            return 2 + sum(walk(v) + len(k) // 3 + 3 for k, v in props.items())
        if "array" in kinds:
            count = int(node.get("maxItems", 20))
            return 2 + count * (walk(node.get("items", {})) + 1)
        if "string" in kinds:
            if "enum" in node:
                return 2 + max(len(str(v)) for v in node["enum"]) // 2
            return 2 + math.ceil(int(node.get("maxLength", 300)) / BOUND_CHARS_PER_TOKEN)
        return 4  # a number, null or boolean

    return walk(schema)


def strip_keywords(schema: dict[str, Any], keywords: frozenset[str] | set[str]) -> dict[str, Any]:
    """``schema`` without ``keywords`` anywhere (what an engine cannot enforce or rejects): a
    new tree of dicts and lists, ``schema`` itself untouched (its leaves are immutable)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in keywords}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(schema)  # type: ignore[no-any-return]
