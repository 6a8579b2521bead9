"""The prompt builder of prompt version 2, kept only so that bench_prompt_speed can measure
the current prompts against it in the same run (issue 16 §3). Never imported by server code.

A copy of ``spanlens_lsp.enrichment.prompt.build`` and the reply bounds of ``schema`` as they were
at prompt version 2: the span-specific request JSON (ids, path, parameters and facts) first, then
each span's context and code; instructions listing example side effects and pitfalls; reply
bounds that do not depend on the span's size; class context or imports, never both.
"""

from __future__ import annotations

import json
import re
from typing import Any

from spanlens_lsp.enrichment.prompt.build import (
    REQUEST_CLOSE,
    REQUEST_OPEN,
    TEMPLATE_TOKENS_PER_MESSAGE,
    Prompt,
    span_bounds,
)
from spanlens_lsp.enrichment.prompt.excerpts import estimate_tokens, excerpt_lines, numbered_line
from spanlens_lsp.enrichment.prompt.schema import (
    BOUND_KEYWORDS,
    EVIDENCE_FIELDS,
    FIELDS,
    LIST_CAPS,
    MAX_INPUT_CHARS,
    MAX_INPUTS,
    MAX_ITEM_CHARS,
    MAX_SNIPPET_LINES,
    MAX_SUMMARY_WORDS,
    MAX_TAG_CHARS,
    SpanBounds,
    reply_token_bound,
    strip_keywords,
)
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.store.rows import SpanRow

PROMPT_VERSION = 2
_MAX_REPLY_TOKENS = 4096
_FACT_LIST_CAPS = {"calls": 25, "members": 40, "raises": 15, "side_effects": 15}
_FACTS_LEFT_OUT = ("docstring", "doc", "tokens")
_TAGS = (LIST_CAPS["tags"], MAX_TAG_CHARS)
_SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)
_BOUND_SIZES = (600, 4, 160, 360, 6)
_TAGS = (LIST_CAPS["tags"], MAX_TAG_CHARS)
_SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)

SYSTEM_PROMPT = f"""You document source code for a code-intelligence tool.
For each span of code you are given, reply with one JSON object and nothing else:
- "summary": what the code does and why a caller would use it, plain prose, at most \
{MAX_SUMMARY_WORDS} words; never repeat the code itself.
- "inputs": one entry per parameter, written "name: meaning", where name is exactly one of \
the span's "parameters"; an empty list when the span has no parameters.
- "outputs": what it returns or yields, short phrases (at most {LIST_CAPS["outputs"]}).
- "side_effects": I/O, mutation of arguments or shared state, network, processes (at most \
{LIST_CAPS["side_effects"]}); empty list if none.
- "pitfalls": ways a caller can misuse it or be surprised (edge cases, exceptions, \
performance; at most {LIST_CAPS["pitfalls"]}); empty list if none.
- "tags": one to {LIST_CAPS["tags"]} lowercase topic words.
- "usage_snippet": a short example call (at most {MAX_SNIPPET_LINES} lines), or null.
- "evidence": entries {{"field": <one of the fields above>, "lines": [first, last]}} citing \
the line numbers shown next to the code; every cited line lies inside the span's "lines".
Each list entry is one short sentence, said once. Write a name in backticks only when it \
appears in the code, exactly as written there.
State only what the code shows. Do not invent parameters, names, behaviour or lines."""

_BATCH_INSTRUCTIONS = (
    'Reply with {"enrichments": [...]}: one object per span of the request, each with its '
    '"span_id" and the fields described above, judged on that span alone.'
)
_SINGLE_INSTRUCTIONS = "Reply with the JSON object for this span."

_SYSTEM_TOKENS = estimate_tokens(SYSTEM_PROMPT)


def build_prompt(
    sources: list[SpanSource], context_tokens: int | None = None, ratio: float = 1.0
) -> Prompt:
    """The prompt for one span (or a batch), fitted into ``context_tokens`` when given.

    The reply schema is bounded (see :func:`bounded_schema`) and ``max_tokens`` is its bound,
    sized to the room the prompt leaves. When the prompt with the smallest reply would not fit,
    the optional enclosing context goes first; then each span is cut to an excerpt (skeleton
    plus most relevant lines). ``ratio`` calibrates the estimate (server-counted tokens over
    estimated tokens of an earlier build).
    """
    batch = len(sources) > 1
    spans = [span_bounds(s) for s in sources]
    _, floor = bounded_schema(spans, 0)

    def tokens(user: str) -> int:
        return int((_SYSTEM_TOKENS + estimate_tokens(user)) * ratio) + 2 * (
            TEMPLATE_TOKENS_PER_MESSAGE
        )

    budgets: dict[int, int] = {}
    with_context = True
    user = _user_message(sources, budgets)
    total = tokens(user)
    if context_tokens is not None and total + floor > context_tokens:
        with_context = False
        user = _user_message(sources, budgets, context=False)
        total = tokens(user)
    if context_tokens is not None and total + floor > context_tokens:
        overhead = tokens(_user_message(sources, {}, code=False, context=False))
        code_room = max(64, int((context_tokens - floor - overhead) / ratio))
        budgets = {s.span.id: max(32, code_room // len(sources)) for s in sources}
        user = _user_message(sources, budgets, context=False)
        total = tokens(user)
    reply_room = None if context_tokens is None else context_tokens - total
    schema, bound = bounded_schema(spans, reply_room)
    return Prompt(
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ],
        schema=schema,
        schema_name="spanlens_batch" if batch else "spanlens_enrichment",
        max_tokens=min(_MAX_REPLY_TOKENS, bound),
        contexts=[s.validation_context() for s in sources],
        tokens=total,
        excerpted=tuple(budgets),
        context_tokens=context_tokens,
        dropped_context=not with_context and any(s.context for s in sources),
    )


def _user_message(
    sources: list[SpanSource],
    budgets: dict[int, int],
    code: bool = True,
    context: bool = True,
) -> str:
    request = {
        "task": "spanlens.enrich",
        "prompt_version": PROMPT_VERSION,
        "mode": "batch" if len(sources) > 1 else "single",
        "spans": [_request_entry(s, s.span.id in budgets) for s in sources],
    }
    parts = [
        "Describe the code below.",
        f"{REQUEST_OPEN}\n{json.dumps(request, ensure_ascii=False)}\n{REQUEST_CLOSE}",
    ]
    for source in sources:
        if context and source.context:
            parts.append(f"Context of span {source.span.id}:\n{source.context}")
        if code:
            parts.append(_code_block(source, budgets.get(source.span.id)))
    parts.append(_BATCH_INSTRUCTIONS if len(sources) > 1 else _SINGLE_INSTRUCTIONS)
    return "\n\n".join(parts)


def _request_entry(source: SpanSource, excerpt: bool) -> dict[str, Any]:
    span = source.span
    params = span.facts.get("params")
    return {
        "span_id": span.id,
        "path": span.path,
        "language": span.language,
        "kind": span.kind,
        "name": span.name,
        "lines": [source.first_line, source.last_line],
        "parameters": (
            [str(p.get("name", "")) for p in params if isinstance(p, dict)]
            if isinstance(params, list)
            else None
        ),
        "facts": prompt_facts(span.facts),
        "excerpt": excerpt,
    }


def prompt_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts a prompt carries: long lists capped, text the code already shows left out."""
    out: dict[str, Any] = {}
    for key, value in facts.items():
        if key in _FACTS_LEFT_OUT or value in (None, [], ""):
            continue
        cap = _FACT_LIST_CAPS.get(key)
        out[key] = value[:cap] if cap and isinstance(value, list) else value
    return out


def _code_block(source: SpanSource, budget: int | None) -> str:
    span = source.span
    whole = [(source.first_line + i, line) for i, line in enumerate(source.lines)]
    numbered: list[tuple[int, str | None]] = list(whole)
    if budget is not None:
        numbered = excerpt_lines(whole, budget, span.facts)
        note = " (excerpt: skeleton and most relevant lines; omitted lines marked)"
    else:
        note = ""
    body = "\n".join(
        numbered_line(n, line) if line is not None else _gap(n) for n, line in numbered
    )
    header = (
        f"Code of span {span.id}: {span.kind} {span.name}, {span.path} lines "
        f"{source.first_line}-{source.last_line}{note}"
    )
    return f"{header}\n```{span.language}\n{body}\n```"


def _gap(count: int) -> str:
    return f"      ⋮ ({count} lines omitted)"


def bounded_schema(
    spans: list[SpanBounds],
    room_tokens: int | None = None,
    keywords: frozenset[str] = BOUND_KEYWORDS,
) -> tuple[dict[str, Any], int]:
    """The tightest reply schema for ``spans`` (one, or a batch) and its reply-token bound.

    Every string has a ``maxLength`` and every list a ``maxItems``; ``inputs`` holds at most one
    entry per parameter, each starting with one of the span's parameter names; evidence lines
    lie within the span; a batch's ids are the request's ids. Sizes shrink (down to a quarter)
    until the bound fits ``room_tokens``. Only the ``keywords`` the engine enforces are kept;
    the bound is computed from the full schema either way, so a reply that keeps to it fits.
    """
    schema: dict[str, Any] = {}
    bound = 0
    for scale in _SCALES:
        schema = _bounded(spans, scale)
        bound = reply_token_bound(schema)
        if room_tokens is None or bound <= room_tokens:
            break
    return strip_keywords(schema, BOUND_KEYWORDS - keywords), bound


def _bounded(spans: list[SpanBounds], scale: float) -> dict[str, Any]:
    summary, items, item_chars, snippet, evidence = (max(1, int(v * scale)) for v in _BOUND_SIZES)
    item_chars = min(item_chars, MAX_ITEM_CHARS)

    def text(limit: int) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": limit}

    def entry(span: SpanBounds) -> dict[str, Any]:
        params = [p for p in span.params or () if p]
        inputs_item = text(
            min(MAX_INPUT_CHARS, item_chars + max((len(p) for p in params), default=0))
        )
        if params:
            names = "|".join(re.escape(p) for p in params)
            # llama.cpp ignores maxLength next to a pattern: the pattern bounds the length.
            inputs_item["pattern"] = f"^({names}): .{{1,{item_chars}}}$"
        inputs_max = min(len(params) if span.params is not None else items, MAX_INPUTS)
        props: dict[str, Any] = {
            "summary": text(summary),
            "inputs": {"type": "array", "items": inputs_item, "maxItems": inputs_max},
            **{
                key: {
                    "type": "array",
                    "items": text(item_chars),
                    "maxItems": min(items, LIST_CAPS[key]),
                }
                for key in ("outputs", "side_effects", "pitfalls")
            },
            "tags": {"type": "array", "items": text(_TAGS[1]), "maxItems": _TAGS[0]},
            "usage_snippet": {"type": ["string", "null"], "maxLength": snippet},
            "evidence": {
                "type": "array",
                "maxItems": evidence,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["field", "lines"],
                    "properties": {
                        "field": {"type": "string", "enum": list(EVIDENCE_FIELDS)},
                        "lines": {
                            "type": "array",
                            "items": {
                                "type": "integer",
                                "minimum": span.first_line,
                                "maximum": span.last_line,
                            },
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    },
                },
            },
        }
        return {
            "type": "object",
            "additionalProperties": False,
            "required": list(FIELDS),
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


def enclosing_context(span: SpanRow, file_spans: list[SpanRow], file_lines: list[str]) -> str:
    """The class a span sits in (header and members), else the module's imports."""
    containers = [
        other
        for other in file_spans
        if other.id != span.id
        and "members" in other.facts
        and other.start_line <= span.start_line
        and other.end_line >= span.end_line
    ]
    if containers:
        owner = max(containers, key=lambda s: s.start_line)
        members = ", ".join(str(m) for m in owner.facts.get("members", [])[:40])
        doc = str(owner.facts.get("docstring") or owner.facts.get("doc") or "").strip()
        parts = [f"Inside {owner.kind} {owner.name}: {owner.facts.get('signature', '')}"]
        if doc:
            parts.append("doc: " + doc.split("\n\n")[0][:300])
        if members:
            parts.append("members: " + members)
        return "\n".join(parts)
    imports = [
        line.strip()
        for line in file_lines[: span.start_line]
        if line.startswith(("import ", "from ", "use ", "#include", "using "))
        or (line.startswith(("const ", "import{")) and "require(" in line)
    ][:15]
    return ("Module imports:\n" + "\n".join(imports)) if imports else ""
