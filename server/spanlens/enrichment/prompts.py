"""Prompts: what a model is told about one span (or a batch of spans) and how to answer.

The user message carries a machine-readable request between ``<spanlens-request>`` tags
(span ids, paths, 1-based line ranges, parameter names, facts), then each span's code with
its real line numbers. The model answers with JSON following the schema. A span too long
for the context window is shown as an excerpt: its skeleton (header, docstring, control-flow
lines, returns and raises) plus the most relevant lines that fit, with the omitted ranges
marked — never a blind character cut. Bump ``PROMPT_VERSION`` when this text changes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from spanlens.enrichment.excerpts import (
    CHARS_PER_TOKEN,
    _numbered,
    estimate_tokens,
    excerpt_lines,
)
from spanlens.enrichment.grounding import NO_NAMES, Names
from spanlens.enrichment.schema import (
    LIST_CAPS,
    MAX_SNIPPET_LINES,
    MAX_SUMMARY_WORDS,
    SpanBounds,
    bounded_schema,
)
from spanlens.enrichment.validation import SpanContext, context_for
from spanlens.states import PROMPT_VERSION
from spanlens.store.db import SpanRow

__all__ = [
    "CHARS_PER_TOKEN",
    "estimate_tokens",
    "excerpt_lines",
]

REQUEST_OPEN = "<spanlens-request>"
REQUEST_CLOSE = "</spanlens-request>"
#: Reply tokens reserved for one span's enrichment when routing (the bound of its schema).
REPLY_TOKENS_SINGLE = 900
_MAX_REPLY_TOKENS = 4096
_FACT_LIST_CAPS = {"calls": 25, "members": 40, "raises": 15, "side_effects": 15}
_FACTS_LEFT_OUT = ("docstring", "doc", "tokens")

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


@dataclass(frozen=True, slots=True)
class SpanSource:
    """A span with the source lines the prompt shows and its enclosing context."""

    span: SpanRow
    #: The span's full lines, ``span.start_line`` .. ``span.end_line``.
    lines: list[str]
    #: Enclosing class (header, members) or module (imports) context; may be empty.
    context: str = ""
    #: Names of the span's file and the workspace a reply may mention (see grounding).
    names: Names = NO_NAMES

    @property
    def first_line(self) -> int:
        """1-based number of the span's first line."""
        return self.span.start_line + 1

    @property
    def last_line(self) -> int:
        """1-based number of the span's last line."""
        return self.span.end_line + 1

    @property
    def code(self) -> str:
        """The span's text."""
        return "\n".join(self.lines)

    def validation_context(self) -> SpanContext:
        """What a reply for this span is checked against (file line numbers)."""
        return context_for(
            self.span.id,
            self.first_line,
            self.last_line,
            self.span.facts,
            self.code,
            name=self.span.name,
            context=self.context,
            names=self.names,
        )

    def stored_context(self) -> SpanContext:
        """What a stored enrichment of this span is checked against (span-relative lines)."""
        return context_for(
            self.span.id,
            1,
            len(self.lines),
            self.span.facts,
            self.code,
            name=self.span.name,
            context=self.context,
            names=self.names,
        )


@dataclass(frozen=True, slots=True)
class Prompt:
    """A ready chat request and what its reply is validated against."""

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    schema_name: str
    max_tokens: int
    contexts: list[SpanContext]
    #: Estimated prompt tokens (see :func:`estimate_tokens`, times the calibration ratio).
    tokens: int
    #: Span ids shown as an excerpt rather than whole.
    excerpted: tuple[int, ...] = ()
    #: The context window the prompt was fitted into (None: not fitted).
    context_tokens: int | None = None
    #: Whether the enclosing context was left out to make room for the code.
    dropped_context: bool = False

    @property
    def is_batch(self) -> bool:
        """Whether the reply holds one entry per span."""
        return len(self.contexts) > 1


_SYSTEM_TOKENS = estimate_tokens(SYSTEM_PROMPT)
#: Tokens a chat template adds per message (role markers, separators).
TEMPLATE_TOKENS_PER_MESSAGE = 8


def single_prompt_tokens(source: SpanSource) -> int:
    """Estimated context a single-span prompt with the whole span needs, reply included."""
    return _SYSTEM_TOKENS + estimate_tokens(_user_message([source], {})) + REPLY_TOKENS_SINGLE


def with_more_reply_room(prompt: Prompt) -> Prompt | None:
    """The same prompt with twice the reply budget; None when it is at the ceiling or the
    larger reply could not fit the context the prompt was fitted into (a retry that cannot
    fit is not made)."""
    grown = min(_MAX_REPLY_TOKENS, 2 * prompt.max_tokens)
    if grown <= prompt.max_tokens:
        return None
    if prompt.context_tokens is not None and prompt.tokens + grown > prompt.context_tokens:
        return None
    return dataclasses.replace(prompt, max_tokens=grown)


def span_bounds(source: SpanSource) -> SpanBounds:
    """What the reply schema of ``source`` is bounded by (id, parameters, file lines)."""
    context = source.validation_context()
    return SpanBounds(source.span.id, context.params, source.first_line, source.last_line)


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


def prompt_text(prompt: Prompt) -> str:
    """The prompt's messages as one text, for a server tokenizer to count."""
    return "\n".join(m["content"] for m in prompt.messages)


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
    body = "\n".join(_numbered(n, line) if line is not None else _gap(n) for n, line in numbered)
    header = (
        f"Code of span {span.id}: {span.kind} {span.name}, {span.path} lines "
        f"{source.first_line}-{source.last_line}{note}"
    )
    return f"{header}\n```{span.language}\n{body}\n```"


def _gap(count: int) -> str:
    return f"      ⋮ ({count} lines omitted)"


# ----------------------------------------------------------------------------- excerpts


# ----------------------------------------------------------------------------- context


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
