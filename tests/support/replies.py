"""TEST-ONLY: valid (and deliberately broken) model replies built from spanlens prompts.

A spanlens prompt carries a machine-readable request between ``<spanlens-request>`` tags:
span ids, paths, 1-based line ranges and parameter names (for a single span only its id and
parameter names; the rest is read from the code block's header). :func:`valid_responder` reads it
and answers like a perfect model, so tests, LSP tests and benchmarks get valid enrichments for
arbitrary spans from the stand-in server::

    with StandinModelServer(responder=valid_responder) as server: ...

Never import this module from ``server/`` code: it fabricates enrichments by design.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Collection
from typing import Any

from tests.support.standin import RecordedRequest, Reply

from spanlens_lsp.enrichment.prompt.certain import call_effects, nothing_returned, own_state_writes
from spanlens_lsp.enrichment.prompt.source import SpanContext, context_for
from spanlens_lsp.indexing.languages import get_extractor
from spanlens_lsp.indexing.source import normalise_source

_REQUEST = re.compile(r"<spanlens-request>\s*(\{.*?\})\s*</spanlens-request>", re.DOTALL)
_DOCGEN = re.compile(r"<spanlens-docgen>\s*(\{.*?\})\s*</spanlens-docgen>", re.DOTALL)


def parse_docgen_request(request: RecordedRequest) -> dict[str, Any] | None:
    """The docgen request (path, language, span names) inside a chat request, or None."""
    for message in reversed(request.messages):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str):
            match = _DOCGEN.search(content)
            if match:
                return json.loads(match.group(1))  # type: ignore[no-any-return]
    return None


def valid_overview(docgen: dict[str, Any]) -> dict[str, Any]:
    """A valid file overview for a docgen request: it names only the file's spans."""
    names = docgen["spans"]
    return {
        "purpose": f"Test overview of {docgen['path']}.",
        "responsibilities": [f"`{name}` does its part." for name in names[:4]] or ["Nothing."],
        "structure": f"The file holds {len(names)} spans.",
    }


def parse_request(request: RecordedRequest) -> dict[str, Any] | None:
    """The spanlens request inside a chat request's user message, or None; a single span's
    (its id and parameters only) completed from the message's file line and code header."""
    for message in reversed(request.messages):
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str):
            match = _REQUEST.search(content)
            if match:
                parsed: dict[str, Any] = json.loads(match.group(1))
                return parsed if "spans" in parsed else _single(parsed, content)
    return None


_FILE_LINE = re.compile(r"^File `(?P<path>[^`]+)`", re.MULTILINE)


def _single(parsed: dict[str, Any], content: str) -> dict[str, Any]:
    span_id = parsed["span_id"]
    header = re.search(
        rf"^Code of span {span_id}: (?P<kind>\S+) (?P<name>.+?), lines (?P<a>\d+)-(?P<b>\d+)",
        content,
        re.MULTILINE,
    )
    path = _FILE_LINE.search(content)
    assert header is not None and path is not None, "a single span's prompt names both"
    span = {
        "span_id": span_id,
        "path": path["path"],
        "kind": header["kind"],
        "name": header["name"],
        "lines": [int(header["a"]), int(header["b"])],
        "parameters": parsed.get("parameters"),
    }
    return {"mode": "single", "spans": [span]}


def span_code(request: RecordedRequest, span_id: int) -> list[str]:
    """The code lines (without their numbers) the prompt shows for ``span_id``."""
    content = request.messages[-1].get("content", "")
    block = content.split(f"Code of span {span_id}:", 1)[1].split("```", 2)[1]
    return [line.split(" | ", 1)[1] for line in block.splitlines() if " | " in line]


def code_facts(request: RecordedRequest, span_id: int) -> dict[str, Any]:
    """What a perfect model reads in the code shown for ``span_id`` (the prompt states no
    facts): the parser's facts of that code on its own, a method's wrapped in a class for the
    languages whose methods only parse inside one; {} when it does not parse."""
    content = request.messages[-1].get("content", "")
    if f"Code of span {span_id}:" not in content:
        return {}
    language = content.split(f"Code of span {span_id}:", 1)[1].split("```", 2)[1].split("\n")[0]
    text = textwrap.dedent("\n".join(span_code(request, span_id)))
    try:
        extractor = get_extractor(language.strip())
    except (KeyError, ValueError):
        return {}
    for wrapped, first in ((text, 0), (f"class Wrapper {{\n{text}\n}}", 1)):
        spans = extractor.extract(normalise_source(wrapped.encode())).spans
        for span in spans:
            if span.start_line == first and span.facts is not None:
                ctx = shown_context(request, span_id, span.facts, language.strip())
                seen = {
                    "changes_own_state": bool(own_state_writes(ctx)),
                    "returns_no_value": nothing_returned(ctx) is not None,
                }
                return {**span.facts, **{k: True for k, v in seen.items() if v}}
    return {}


def shown_context(
    request: RecordedRequest, span_id: int, facts: dict[str, Any], language: str = ""
) -> SpanContext:
    """What the product's rules judge the code shown for ``span_id`` by (its name, its class
    as context, its code), for a perfect model to say what they see: that it changes its own
    object (``self.x = ...``, ``this.counts.clear()`` in a method, not a constructor), which it
    names as a side effect; that it returns no value, which it gives no output."""
    content = request.messages[-1].get("content", "")
    parsed = parse_request(request) or {"spans": []}
    name = next((s["name"] for s in parsed["spans"] if s["span_id"] == span_id), "")
    code = "\n".join(span_code(request, span_id))
    return context_for(
        span_id,
        1,
        code.count("\n") + 1,
        facts,
        code,
        name=name,
        context=content,
        language=language,
    )


def request_span_ids(request: RecordedRequest) -> list[int]:
    """Span ids a chat request asks about (empty when it is no spanlens request)."""
    parsed = parse_request(request)
    return [int(s["span_id"]) for s in parsed["spans"]] if parsed else []


def valid_enrichment(span: dict[str, Any], facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """A schema- and fact-valid enrichment for one span entry of a request, given the facts
    of its code (see :func:`code_facts`)."""
    first, last = span["lines"]
    params = span.get("parameters") or []
    name = span["name"]
    facts = facts or span.get("facts") or {}
    # A perfect model says what the parser knows: no output for `-> None`, and the effects
    # the facts show (validation rejects "none" for code that writes, prints or spawns).
    returns_nothing = facts.get("returns") in ("None", "void") or facts.get("returns_no_value")
    changes = bool(facts.get("changes_own_state"))
    effects = facts.get("side_effects")
    if effects is None:  # Go, TypeScript: what their well-known calls certainly do
        effects = call_effects(tuple(facts.get("calls") or ()))
    return {
        "summary": f"Test enrichment for the {span['kind']} {name} in {span['path']}.",
        "inputs": [f"{p.lstrip('*&.')}: the {p.lstrip('*&.')} argument" for p in params],
        "outputs": [] if returns_nothing else ["whatever it computes"],
        "side_effects": [f"does {effect}, as the facts say" for effect in effects]
        + (["changes the object's own state, as its code shows"] if changes else []),
        "pitfalls": ["none known to the stand-in"],
        "tags": ["test"],
        "usage_snippet": f"{name.rsplit('.', 1)[-1]}(...)",
        "evidence": [{"field": "summary", "lines": [first, last]}],
    }


def valid_reply(request: RecordedRequest) -> Reply:
    """The reply a perfect model gives to ``request`` (single or batch)."""
    parsed = parse_request(request)
    if parsed is None:
        docgen = parse_docgen_request(request)
        if docgen is not None:
            return Reply.json(valid_overview(docgen))
        if "Is 2 greater than 1?" in json.dumps(request.json):
            return Reply.json({"answer": "yes"})  # `spanlens doctor`'s structured-output check
        return Reply.error(400, {"error": "not a spanlens request"})
    spans = parsed["spans"]
    if parsed.get("mode") == "batch":
        entries = [
            {"span_id": s["span_id"], **valid_enrichment(s, code_facts(request, s["span_id"]))}
            for s in spans
        ]
        return Reply.json({"enrichments": entries})
    return Reply.json(valid_enrichment(spans[0], code_facts(request, spans[0]["span_id"])))


def valid_responder(request: RecordedRequest) -> Reply:
    """A stand-in ``responder`` that answers every spanlens request validly."""
    return valid_reply(request)


def batch_responder(
    *, drop: Collection[int] = (), corrupt: Collection[int] = ()
) -> Callable[[RecordedRequest], Reply]:
    """Valid replies, except that batch replies leave out span ids in ``drop`` and give
    spans in ``corrupt`` an invented parameter (single-span calls always answer validly)."""

    def respond(request: RecordedRequest) -> Reply:
        parsed = parse_request(request)
        if parsed is None or parsed.get("mode") != "batch":
            return valid_reply(request)
        entries = []
        for span in parsed["spans"]:
            if span["span_id"] in drop:
                continue
            entry = {
                "span_id": span["span_id"],
                **valid_enrichment(span, code_facts(request, span["span_id"])),
            }
            if span["span_id"] in corrupt:
                entry["inputs"] = ["invented_param: not a real parameter"]
            entries.append(entry)
        return Reply.json({"enrichments": entries})

    return respond


def broken(request: RecordedRequest, how: str) -> Reply:
    """An invalid reply for ``request``'s first span: ``invented_param``, ``evidence_outside``,
    ``wrong_types``, ``empty_summary``, ``echo`` or ``not_json``."""
    parsed = parse_request(request)
    assert parsed is not None, "not a spanlens request"
    span = parsed["spans"][0]
    data = valid_enrichment(span, code_facts(request, span["span_id"]))
    last = span["lines"][1]
    if how == "invented_param":
        data["inputs"] = ["invented_param: not a real parameter"]
    elif how == "evidence_outside":
        data["evidence"] = [{"field": "summary", "lines": [last + 5, last + 9]}]
    elif how == "wrong_types":
        data["summary"] = 42
        data["tags"] = {"a": 1}
    elif how == "empty_summary":
        data["summary"] = "   "
    elif how == "echo":
        data["summary"] = "\n".join(span_code(request, span["span_id"]))
    elif how == "not_json":
        return Reply.content("Sure! Here is what the function does: it adds numbers.")
    else:
        raise ValueError(how)
    return Reply.json(data)
