"""Prompts: what a model is told about one span (or a batch of spans) and how to answer.

Every prompt is ordered stable-first, so that consecutive requests for one file share the
longest prefix an engine's prompt cache can reuse: the instructions (:data:`SYSTEM_PROMPT`,
the same for every span), then the file's context (its path and imports, the same for every
span of the file; for a method, its class), then the span: its code with its real line
numbers, what to describe (the span named as the subject), and a machine-readable request
between ``<spanlens-request>`` tags: for one span its id and parameter names (the code block's
header says its kind, name and 1-based lines, the file line its path); for a batch, each
span's id, path, kind, name, lines and parameter names, and ``"mode": "batch"``.
What the code shows (signature, docstring, parameters) is not said again as facts. A span
too long for the context window is shown as an excerpt: its skeleton (header, docstring,
control-flow lines, returns and raises) plus the most relevant lines that fit, with the
omitted ranges marked and what they call and raise listed — never a blind character cut.
Bump ``PROMPT_VERSION`` when a change to what the model is asked makes earlier enrichments
worth redoing (not for a change of form only, such as the request block's size).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

from spanlens_lsp.enrichment.prompt.certain import (
    effects_certain,
    nothing_returned,
    output_certain,
    pitfall_certain,
    returned_removal,
    returns_function,
)
from spanlens_lsp.enrichment.prompt.excerpts import (
    estimate_tokens,
    excerpt_lines,
    numbered_line,
)
from spanlens_lsp.enrichment.prompt.schema import SpanBounds, bounded_schema, summary_words
from spanlens_lsp.enrichment.prompt.source import SpanContext, SpanSource
from spanlens_lsp.indexing.spans import CONTAINER_KINDS
from spanlens_lsp.presentation.text import clean_text

REQUEST_OPEN = "<spanlens-request>"
REQUEST_CLOSE = "</spanlens-request>"
_MAX_REPLY_TOKENS = 4096
#: Facts about the lines an excerpt leaves out (the code shown says the rest).
_EXCERPT_FACTS = {"calls": 25, "raises": 15}

#: The instructions every enrichment prompt starts with, word for word (the validator may
#: import it to recognise a reply that copies them). It never varies by span, so an engine's
#: prompt cache reuses it; what varies comes after it.
SYSTEM_PROMPT = """You document source code for a code-intelligence tool. You are shown a \
file's context, then one span of it (a function, method or class) with its line numbers. \
Reply with one JSON object and nothing else:
- "summary": what the span does and why a caller would use it, in plain prose. A method is \
described as itself, never as its class.
- "inputs": for each parameter, "name: what the caller passes for it", the meaning and not \
the type.
- "outputs": what it returns or yields, each as "value: what it means to the caller"; [] \
when it returns nothing.
- "side_effects": what calling it does besides returning a value, each a short sentence \
that starts with a verb and names what the code acts on; never a return value, an \
exception or a computation; [] when the code shows none.
- "pitfalls": surprises the code shows for a caller, such as an exception it lets escape or \
an input it mishandles; [] when there are none.
- "tags": one to three lowercase topic words.
- "usage_snippet": one short example call on one line, or null.
Never restate the signature, the types or the docstring, and never write "none" as an \
entry. Write a name in backticks only when it appears in the code, exactly as written there. \
State only what the code shows; do not invent parameters, names, behaviour or lines."""

_BATCH_INSTRUCTIONS = (
    'Reply with {"enrichments": [...]}: one object per span above, each with its "span_id" '
    "and the fields described, judged on that span alone; summaries of at most {words} words."
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
    #: What prompts sharing a long prefix have in common (the file's path): an engine with
    #: several slots gets them on one slot, whose cached prompt they reuse.
    cache_key: str | None = None

    @property
    def is_batch(self) -> bool:
        """Whether the reply holds one entry per span."""
        return len(self.contexts) > 1


_SYSTEM_TOKENS = estimate_tokens(SYSTEM_PROMPT)
#: Tokens a chat template adds per message (role markers, separators).
TEMPLATE_TOKENS_PER_MESSAGE = 8


def single_prompt_tokens(source: SpanSource) -> int:
    """Estimated context a single-span prompt with the whole span needs, reply included."""
    context = source.validation_context()
    _, reply = bounded_schema([span_bounds(source, context)])
    user = _user_message([source], [context], {}, 99)
    return _SYSTEM_TOKENS + estimate_tokens(user) + reply


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


#: Most rejection reasons a retry repeats per span, and the longest one (characters): the
#: validator's reasons quote code and model text, which a retry repeats only cut short.
REJECTION_REASONS = 2
REJECTION_CHARS = 160
REJECTION_PREFIX = "Your previous answer was rejected: "


def with_rejection(prompt: Prompt, reasons: dict[int, list[str]]) -> Prompt:
    """``prompt`` asking again after its reply was rejected for ``reasons`` (the validator's,
    by span id): one line at the end of the user message, so the cached prefix is reused,
    saying why ("Your previous answer was rejected: side_effects claims none, but the code
    has network. Answer again."). Each reason is made one printable line and cut. The
    prompt itself when there is no reason or the line would not fit its context."""
    parts = []
    for span_id, errors in reasons.items():
        if span_id not in {c.span_id for c in prompt.contexts}:
            continue
        said = [_short_reason(e) for e in errors[:REJECTION_REASONS] if e.strip()]
        if said:
            text = "; ".join(said)
            parts.append(f"span {span_id}: {text}" if prompt.is_batch else text)
    if not parts:
        return prompt
    note = f"{REJECTION_PREFIX}{'; '.join(parts)}. Answer again."
    tokens = prompt.tokens + estimate_tokens(note) + 1
    if prompt.context_tokens is not None and tokens + prompt.max_tokens > prompt.context_tokens:
        return prompt
    *head, last = prompt.messages
    messages = [*head, {**last, "content": f"{last['content']}\n\n{note}"}]
    return dataclasses.replace(prompt, messages=messages, tokens=tokens)


#: A reason's closing quote of the model's own text (``...is cut: 's or connection fail'``):
#: repeated to the model, it was copied back as an entry.
_QUOTED_TAIL = re.compile(r":\s*'[^']*'?$")


def _short_reason(reason: str) -> str:
    text = clean_text(reason, one_line=True).strip().rstrip(".")
    text = _QUOTED_TAIL.sub("", text).rstrip()
    return text if len(text) <= REJECTION_CHARS else text[: REJECTION_CHARS - 1] + "…"


def span_bounds(source: SpanSource, context: SpanContext | None = None) -> SpanBounds:
    """What the reply schema of ``source`` is bounded by (id, parameters, file lines);
    ``context`` is its :meth:`~SpanSource.validation_context` when the caller has it."""
    context = context or source.validation_context()
    return SpanBounds(
        source.span.id,
        context.params,
        source.first_line,
        source.last_line,
        effects_certain=effects_certain(context) is not None,
        returns_something=output_certain(context) is not None,
        pitfall_certain=pitfall_certain(context) is not None,
        nothing_returned=nothing_returned(context) is not None,
        container=context.container,
    )


def build_prompt(
    sources: list[SpanSource], context_tokens: int | None = None, ratio: float = 1.0
) -> Prompt:
    """The prompt for one span (or a batch of one file's spans), fitted into
    ``context_tokens`` when given.

    The reply schema is bounded by the span's size (see :func:`bounded_schema`) and
    ``max_tokens`` is its bound, shrunk to the room the prompt leaves; the summary's word count
    asked for follows the schema's. When the prompt with the smallest reply would not fit, the
    optional enclosing context goes first; then each span is cut to an excerpt (skeleton plus
    most relevant lines). ``ratio`` calibrates the estimate (server-counted tokens over
    estimated tokens of an earlier build).
    """
    batch = len(sources) > 1
    # Built once: the bounds, every draft of the user message and the validator read them.
    contexts = [s.validation_context() for s in sources]
    spans = [span_bounds(s, c) for s, c in zip(sources, contexts, strict=True)]
    full, floor = bounded_schema(spans, 0)
    words = summary_words(full)

    def tokens(user: str) -> int:
        return int((_SYSTEM_TOKENS + estimate_tokens(user)) * ratio) + 2 * (
            TEMPLATE_TOKENS_PER_MESSAGE
        )

    budgets: dict[int, int] = {}
    with_context = True
    user = _user_message(sources, contexts, budgets, words)
    total = tokens(user)
    if context_tokens is not None and total + floor > context_tokens:
        with_context = False
        user = _user_message(sources, contexts, budgets, words, context=False)
        total = tokens(user)
    if context_tokens is not None and total + floor > context_tokens:
        overhead = tokens(_user_message(sources, contexts, {}, words, code=False, context=False))
        code_room = max(64, int((context_tokens - floor - overhead) / ratio))
        budgets = {s.span.id: max(32, code_room // len(sources)) for s in sources}
        user = _user_message(sources, contexts, budgets, words, context=False)
        total = tokens(user)
    reply_room = None if context_tokens is None else context_tokens - total
    schema, bound = bounded_schema(spans, reply_room)
    # The word count asked for follows the schema's summary bound (same digits, same length).
    user = _user_message(sources, contexts, budgets, summary_words(schema), context=with_context)
    return Prompt(
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
        ],
        schema=schema,
        schema_name="spanlens_batch" if batch else "spanlens_enrichment",
        max_tokens=min(_MAX_REPLY_TOKENS, bound),
        contexts=contexts,
        tokens=total,
        excerpted=tuple(budgets),
        context_tokens=context_tokens,
        dropped_context=not with_context and any(s.context for s in sources),
        cache_key=sources[0].span.path,
    )


def prompt_text(prompt: Prompt) -> str:
    """The prompt's messages as one text, for a server tokenizer to count."""
    return "\n".join(m["content"] for m in prompt.messages)


def _user_message(
    sources: list[SpanSource],
    contexts: list[SpanContext],
    budgets: dict[int, int],
    words: int,
    code: bool = True,
    context: bool = True,
) -> str:
    """Stable first: the file, its context (imports; a method's class), then the span(s)."""
    first = sources[0].span
    parts = [f"File `{first.path}` ({first.language})."]
    if context:
        shown: list[str] = []
        for source in sources:
            if source.context and source.context not in shown:
                shown.append(source.context)
        parts += shown
    if code:
        parts += [_code_block(source, budgets.get(source.span.id)) for source in sources]
    if len(sources) > 1:
        parts.append(_BATCH_INSTRUCTIONS.replace("{words}", str(words)))
        parts += [
            f"Span {source.span.id} (`{source.span.name}`): {known}"
            for source, ctx in zip(sources, contexts, strict=True)
            if (known := known_from_code(ctx))
        ]
    else:
        known = known_from_code(contexts[0])
        parts.append(_subject(sources[0], contexts[0], words) + (f" {known}" if known else ""))
    request: dict[str, Any]
    if len(sources) > 1:
        request = {
            "mode": "batch",
            "spans": [_request_entry(s, c) for s, c in zip(sources, contexts, strict=True)],
        }
    else:
        # The code block's header and the file line say the rest: each token here is one a
        # small model evaluates again for every span (67 a span on the quality corpus, 26 %
        # of the message, when this block repeated path, kind, name and lines).
        entry = _request_entry(sources[0], contexts[0])
        request = {"span_id": entry["span_id"], "parameters": entry["parameters"]}
    parts.append(f"{REQUEST_OPEN}{json.dumps(request, ensure_ascii=False)}{REQUEST_CLOSE}")
    return "\n\n".join(parts)


#: The facts' effect categories as the prompt says them.
_EFFECT_WORDS = {
    "file_io": "file I/O",
    "subprocess": "a subprocess",
    "global_write": "a global write",
    "nonlocal_write": "a nonlocal write",
    "network": "network access",
}


def known_from_code(ctx: SpanContext) -> str:
    """What the code makes certain that a small model most often leaves out, said before it
    answers ("Known from the code: the code has file_io, so side_effects names it; the code
    raises ValueError (line 13), so pitfalls says when."), or "". The reply schema demands an
    entry for each and the validator rejects a reply without one (the same predicates), so
    saying it up front saves the retry that would say it after a rejection (measured with
    Qwen2.5-Coder-1.5B: forced to write an entry, it wrote "none", which is dropped)."""
    said = []
    effect = effects_certain(ctx)
    if effect:
        # In words, not the facts' category names: a small model copied "file_io" as a label.
        for category, words in _EFFECT_WORDS.items():
            effect = effect.replace(category, words)
        said.append(f"{effect}, so side_effects names it")
    pitfall = pitfall_certain(ctx)
    if pitfall:
        said.append(f"{pitfall}, so pitfalls says when")
    # What a return gives back, where the code is certain and the 1.5B model said otherwise
    # (run 24: "the number of items remaining" in six calls for `return self.items.pop(name)`).
    removal = returned_removal(ctx)
    if removal:
        said.append(f"the code returns the value {removal}() removed, not what remains")
    elif returns_function(ctx):
        said.append("the code returns a function, not the result of calling it")
    return f"Known from the code: {'; '.join(said)}." if said else ""


def _subject(source: SpanSource, context: SpanContext, words: int) -> str:
    """What a single-span reply is about: the span itself, named (a method, not its class;
    a class, not what its methods do when called)."""
    span = source.span
    owner, _, own = span.name.rpartition(".")
    line = (
        f"Describe the {span.kind} `{span.name}` (lines {source.first_line}-"
        f"{source.last_line}) in a JSON object; a summary of at most {words} words."
    )
    if owner and span.kind not in CONTAINER_KINDS:
        line += (
            f" The subject is the {span.kind} `{own}` itself: what calling it does, not what "
            f"its {_owner_kind(source)} `{owner}` is for."
        )
    if context.container:
        line += " Its methods are described on their own, so side_effects is []."
    return line


def _owner_kind(source: SpanSource) -> str:
    """The kind of the span's owner: its enclosing container's, else "type" (a Go method's
    receiver type sits outside it)."""
    context = source.context
    for kind in sorted(CONTAINER_KINDS):
        if f"\nEnclosing {kind} " in f"\n{context}":
            return kind
    return "type"


def _request_entry(source: SpanSource, context: SpanContext) -> dict[str, Any]:
    span = source.span
    params = span.facts.get("params")
    if isinstance(params, list):
        names: list[str] | None = [str(p.get("name", "")) for p in params if isinstance(p, dict)]
    else:
        # A class's inputs are its constructor's parameters, where the code makes them certain.
        known = context.params
        names = list(known) if known is not None else None
    return {
        "span_id": span.id,
        "path": span.path,
        "kind": span.kind,
        "name": span.name,
        "lines": [source.first_line, source.last_line],
        "parameters": names,
    }


def excerpt_facts(facts: dict[str, Any]) -> str:
    """What an excerpt's omitted lines may hold that the lines shown do not say: the calls
    and raises of the whole span, capped; "" when it has neither."""
    parts = []
    for key, cap in _EXCERPT_FACTS.items():
        value = facts.get(key)
        if isinstance(value, list) and value:
            parts.append(f"{key}: " + ", ".join(str(v) for v in value[:cap]))
    return ("Whole span " + "; ".join(parts) + ".") if parts else ""


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
        f"Code of span {span.id}: {span.kind} {span.name}, lines "
        f"{source.first_line}-{source.last_line}{note}"
    )
    block = f"{header}\n```{span.language}\n{body}\n```"
    facts = excerpt_facts(span.facts) if budget is not None else ""
    return f"{block}\n{facts}" if facts else block


def _gap(count: int) -> str:
    return f"      ⋮ ({count} lines omitted)"
