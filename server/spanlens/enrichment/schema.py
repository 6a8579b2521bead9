"""The enrichment JSON schema: what a model must return for one span, and for a batch.

Two views of one schema. :data:`ENRICHMENT_SCHEMA` is the full contract, checked locally
with jsonschema. :func:`wire_schema` is what goes to a provider as the structured-output
format: the same shape without length and range keywords, which some servers reject (OpenAI
strict mode) or cannot turn into a grammar.

Replies cite evidence by file line number (the prompt numbers the code that way); stored
enrichments hold them relative to the span (1 = its first line), because an enrichment is
keyed by content hash and stays valid when its span moves or has an identical twin
(see :func:`spanlens.enrichment.validation.to_span_lines`).

Bump ``SCHEMA_VERSION`` in ``version.py`` when the shape changes: older enrichments then
show as stale, not lost.
"""

from __future__ import annotations

import copy
from typing import Any

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
#: Fields that hold lists of short strings.
LIST_FIELDS = ("inputs", "outputs", "side_effects", "pitfalls", "tags")
#: Fields an evidence entry may point at.
EVIDENCE_FIELDS = ("summary", "inputs", "outputs", "side_effects", "pitfalls", "usage_snippet")

MAX_SUMMARY_WORDS = 120
MAX_SNIPPET_LINES = 12
MAX_ITEM_CHARS = 300
MAX_ITEMS = 20
MAX_INPUTS = 64

_SHORT_LIST: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": MAX_ITEM_CHARS},
    "maxItems": MAX_ITEMS,
}

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
    # One entry per parameter: some functions have dozens (subprocess.Popen has 25).
    "inputs": {**_SHORT_LIST, "maxItems": MAX_INPUTS},
    "outputs": _SHORT_LIST,
    "side_effects": _SHORT_LIST,
    "pitfalls": _SHORT_LIST,
    "tags": {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 40},
        "maxItems": 8,
    },
    "usage_snippet": {"type": ["string", "null"], "maxLength": 2000},
    "evidence": {"type": "array", "items": _EVIDENCE, "maxItems": 40},
}

#: One span's enrichment: the object stored in ``enrichments.data``.
ENRICHMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": list(FIELDS),
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
                "required": ["span_id", *FIELDS],
                "properties": {"span_id": {"type": "integer"}, **_PROPERTIES},
            },
        }
    },
}

_WIRE_DROPPED = {"minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"}


def wire_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without length and range keywords, for a provider's structured output."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _WIRE_DROPPED}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(copy.deepcopy(schema))  # type: ignore[no-any-return]
