"""Validate model replies. Nothing that fails here is ever stored.

A reply is first parsed and repaired (:mod:`.parse`: only repairs that cannot change what
the model said), then judged:

3. :func:`validate_enrichment` checks the schema (each list at most its cap of
   :data:`~spanlens_lsp.enrichment.prompt.schema.LIST_CAPS` entries, each entry sentence-length) and
   then the span's facts: evidence lines lie inside the span (1-based, as the prompt
   numbered them), inputs read ``name: meaning``, name real parameters and leave none out,
   the summary is neither empty, too long, nor the code echoed back, no text is a
   placeholder (``TODO``, ``...``, ``N/A``, lorem ipsum, only punctuation or control
   characters) or carries control or bidi characters, no list entry is a paragraph, every
   name the reply presents as code exists (see :mod:`.grounding`), the summary is not about
   another span, and nothing states what the code contradicts (see :mod:`.contradictions`).
   In a batch reply, spans that share one summary are all rejected (a collapsed batch).

:func:`rejection_detail` turns the verdicts of one call into the attempt's detail: one line
per rejected span, its name and the first rule it broke.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from spanlens_lsp.enrichment.prompt.names import RECEIVERS, identifiers, needs_input
from spanlens_lsp.enrichment.prompt.schema import ENRICHMENT_SCHEMA, LIST_FIELDS, MAX_SUMMARY_WORDS
from spanlens_lsp.enrichment.prompt.source import SpanContext
from spanlens_lsp.enrichment.reply import grounding
from spanlens_lsp.enrichment.reply.contradictions import contradiction_errors
from spanlens_lsp.enrichment.reply.parse import extract_json, repair
from spanlens_lsp.enrichment.reply.placeholders import placeholder_errors, placeholder_reason
from spanlens_lsp.presentation.text import clean_text

_LEADING_NAME = re.compile(r"^[\s`*'\"]*([A-Za-z_$][\w$]*)")
_VALIDATOR = jsonschema.Draft202012Validator(ENRICHMENT_SCHEMA)


@dataclass(slots=True)
class Validated:
    """The outcome of checking one reply (or one batch entry) for one span."""

    data: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when ``data`` is a valid enrichment that may be stored."""
        return self.data is not None and not self.errors

    def describe(self) -> str:
        """One line for logs and attempt rows."""
        return "; ".join(self.errors[:3]) if self.errors else "valid"


# ----------------------------------------------------------------------------- validation


def validate_enrichment(obj: Any, ctx: SpanContext) -> Validated:
    """Repair ``obj`` where safe and check it against the schema and the span's facts."""
    if not isinstance(obj, dict):
        return Validated(None, [f"expected a JSON object, got {type(obj).__name__}"])
    data, repairs = repair(obj)
    if ctx.container and data.get("side_effects"):
        # A class's side effects are its methods' (each described on its own and listed in
        # the class's hover): Qwen2.5-Coder-1.5B gave `Cache` its `Put`'s behaviour, half
        # wrong, and `Counter`, `Inventory` "none" beside methods that write state or files.
        data["side_effects"] = []
        repairs.append("side_effects: a class's dropped (its methods' are theirs)")
    snippet = data.get("usage_snippet")
    if isinstance(snippet, str):
        invented = grounding.invented_method(snippet, ctx.closed_class, ctx.known, ctx.names)
        if invented:
            # The field may be null: a usage example that calls what does not exist teaches
            # the wrong API, and dropping it loses nothing true.
            data["usage_snippet"] = None
            repairs.append(f"usage_snippet: calls {invented}, which {ctx.closed_class} lacks")
    errors = [_schema_message(e) for e in _VALIDATOR.iter_errors(data)]
    if not errors:
        errors = fact_errors(data, ctx)
    if errors:
        return Validated(None, errors, repairs)
    return Validated(data, [], repairs)


def validate_reply(text: str, ctx: SpanContext) -> Validated:
    """Validate the text of a single-span reply."""
    found = extract_json(text)
    if found is None:
        return Validated(None, ["no JSON object in the reply"])
    value, stripped = found
    result = validate_enrichment(value, ctx)
    if stripped:
        result.repairs.insert(0, "stripped text around the JSON")
    return result


def validate_batch_reply(text: str, contexts: Iterable[SpanContext]) -> dict[int, Validated]:
    """Validate each entry of a batch reply on its own; a missing entry is an error too."""
    by_id = {ctx.span_id: ctx for ctx in contexts}
    results = {sid: Validated(None, ["no entry for this span in the batch reply"]) for sid in by_id}
    found = extract_json(text)
    if found is None:
        for result in results.values():
            result.errors = ["no JSON object in the batch reply"]
        return results
    value, _ = found
    entries = value.get("enrichments") if isinstance(value, dict) else value
    if not isinstance(entries, list):
        for result in results.values():
            result.errors = ["batch reply has no 'enrichments' list"]
        return results
    summaries: dict[int, str] = {}
    for entry in entries:
        span_id = entry.get("span_id") if isinstance(entry, dict) else None
        if not isinstance(span_id, int) or span_id not in by_id or span_id in summaries:
            continue
        summaries[span_id] = grounding.fold(str(entry.get("summary") or ""))
        results[span_id] = validate_enrichment(entry, by_id[span_id])
    _reject_collapse(results, summaries)
    return results


def _reject_collapse(results: dict[int, Validated], summaries: dict[int, str]) -> None:
    """Reject every entry whose summary another span of the same reply shares: a batch that
    collapsed into one description (a small model's habit) describes at most one of them."""
    by_summary: dict[str, list[int]] = {}
    for span_id, folded in summaries.items():
        if folded:
            by_summary.setdefault(folded, []).append(span_id)
    for span_ids in by_summary.values():
        for span_id in span_ids if len(span_ids) > 1 else ():
            others = ", ".join(str(i) for i in span_ids if i != span_id)
            result = results[span_id]
            result.data = None
            result.errors.insert(0, f"summary is the same as span {others}'s in this reply")


#: Longest line of a rejection detail, and most lines (one per rejected span).
DETAIL_LINE_CHARS = 160
DETAIL_LINES = 8


def rejection_detail(results: dict[int, Validated], names: dict[int, str]) -> str | None:
    """One line per rejected span: its name and the first rule it broke (model text in the
    errors is made printable and cut, never shown raw); None when nothing was rejected."""
    lines = []
    for span_id, result in results.items():
        if result.ok:
            continue
        name = names.get(span_id) or f"span {span_id}"
        line = clean_text(
            f"{name}: {result.errors[0] if result.errors else 'invalid'}", one_line=True
        )
        lines.append(line[:DETAIL_LINE_CHARS])
    if not lines:
        return None
    more = len(lines) - DETAIL_LINES
    return "\n".join(lines[:DETAIL_LINES] + ([f"(+{more} more)"] if more > 0 else []))


def fact_errors(data: dict[str, Any], ctx: SpanContext) -> list[str]:
    """Errors of a schema-valid enrichment against the span's facts."""
    errors = placeholder_errors(data)
    if errors:
        return errors
    errors = _summary_errors(str(data["summary"]), ctx.code)
    # Invented names first: the attempt's detail shows the first errors, and names them.
    errors += grounding_errors(data, ctx)
    for item in data.get("evidence", []):
        start, end = item["lines"]
        if start > end or start < ctx.first_line or end > ctx.last_line:
            errors.append(
                f"evidence for {item['field']} cites lines {start}-{end}, outside the span "
                f"({ctx.first_line}-{ctx.last_line})"
            )
    errors += _input_errors(data["inputs"], ctx)
    errors += contradiction_errors(data, ctx)
    for key in LIST_FIELDS:
        for index, item in enumerate(data[key]):
            reason = grounding.paragraph_reason(item)
            if reason:
                errors.append(f"{key}[{index}] {reason}: {item[:40]!a}")
    return errors


def _input_errors(inputs: list[str], ctx: SpanContext) -> list[str]:
    errors: list[str] = []
    allowed = set(ctx.params or ()) | RECEIVERS
    described: set[str] = set()
    for item in inputs:
        entry = grounding.parse_input(item)
        if entry.name is None:
            errors.append(f"input {item[:40]!a} is not written 'name: meaning'")
            continue
        if ctx.params is not None and entry.name not in allowed:
            known = ", ".join(ctx.params) or "none"
            errors.append(f"input {item[:40]!a} names no parameter (parameters: {known})")
            continue
        reason = (
            grounding.meaning_reason(entry)
            or placeholder_reason(entry.meaning)
            or _merged_reason(entry, ctx.params or ())
        )
        if reason:
            errors.append(f"input {item[:40]!a} {reason}")
        elif entry.name in described:
            errors.append(f"input {entry.name} is described twice")
        described.add(entry.name)
    missing = [p for p in ctx.params or () if needs_input(p) and p not in described]
    if missing and not errors:
        # The prompt asks for one entry per parameter: a reply that leaves one out is
        # incomplete where the parser is certain what is there.
        errors.append(f"inputs leave out parameters: {', '.join(missing)}")
    return errors


def _merged_reason(entry: grounding.InputEntry, params: tuple[str, ...] | list[str]) -> str | None:
    """Why an entry that also describes another parameter is no description of its own: "key:
    string, by: number = 1: ... or null to reset the count" (run 20, after the grammar ruled
    out a one-word meaning), "key: string, value: string" (run 19), "key: string, by = 1
    (optional number) - ..." (run 22, after the grammar ruled out a second colon)."""
    for other in params:
        named = rf"(?<![\w.]){re.escape(other)}\s*(?::|=(?!=))"
        if other != entry.name and re.search(named, entry.meaning):
            return f"also describes {other}: one entry per parameter"
    return None


def grounding_errors(data: dict[str, Any], ctx: SpanContext) -> list[str]:
    """Names the reply presents as code that exist nowhere it may draw on, and a summary
    about another span (see :mod:`spanlens_lsp.enrichment.reply.grounding`)."""
    errors: list[str] = []
    prose = [str(data["summary"])]
    for key in ("outputs", "side_effects", "pitfalls"):
        prose += data[key]
    prose += [grounding.parse_input(item).meaning for item in data["inputs"]]
    # A context built by hand (not through context_for) still knows its own code.
    known = ctx.known or identifiers(ctx.code)
    missing = grounding.unknown_names(prose, known, ctx.names)
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5})" if len(missing) > 5 else "")
        errors.append(f"names that exist nowhere in the span, its file or the index: {shown}")
    own = [ctx.name] if ctx.name else []
    other = grounding.foreign_subject(str(data["summary"]), own, ctx.names)
    if other is not None:
        errors.append(f"summary is about {other}, not {ctx.name or 'this span'}")
    return errors


def to_span_lines(data: dict[str, Any], first_line: int) -> dict[str, Any]:
    """``data`` with evidence lines made relative to the span (1 = its first line).

    Replies cite file line numbers (the prompt shows them); enrichments are stored by content
    hash, shared by identical code elsewhere and kept when a span moves, so stored evidence is
    relative: file line = span's first line + relative line - 1.
    """
    offset = first_line - 1
    evidence = [
        {"field": item["field"], "lines": [item["lines"][0] - offset, item["lines"][1] - offset]}
        for item in data.get("evidence", [])
    ]
    return {**data, "evidence": evidence}


def input_name(item: str) -> str | None:
    """The parameter an ``inputs`` entry names: its leading identifier (``name: meaning``)."""
    match = _LEADING_NAME.match(item)
    return match.group(1) if match else None


def _summary_errors(summary: str, code: str) -> list[str]:
    if not summary.strip():
        return ["summary is empty"]
    words = len(summary.split())
    if words > MAX_SUMMARY_WORDS:
        return [f"summary has {words} words (at most {MAX_SUMMARY_WORDS})"]
    if echoes_code(summary, code):
        return ["summary repeats the code instead of describing it"]
    return []


def echoes_code(summary: str, code: str) -> bool:
    """True when ``summary`` is (a piece of) the code rather than a description of it."""
    flat_summary = " ".join(summary.split())
    flat_code = " ".join(code.split())
    if not flat_code:
        return False
    if len(flat_summary) >= 30 and flat_summary in flat_code:
        return True
    first_line = " ".join(code.strip().splitlines()[0].split()) if code.strip() else ""
    if first_line and flat_summary == first_line:
        return True
    code_lines = {" ".join(line.split()) for line in code.splitlines() if len(line.strip()) >= 12}
    echoed = sum(1 for line in summary.splitlines() if " ".join(line.split()) in code_lines)
    return echoed >= 2


def _schema_message(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "reply"
    if error.validator == "maxItems" and isinstance(error.instance, list):
        return f"{where} has {len(error.instance)} entries (at most {error.validator_value})"
    if error.validator == "maxLength" and isinstance(error.instance, str):
        limit = error.validator_value
        return f"{where} has {len(error.instance)} characters (at most {limit}): not a sentence"
    return f"{where}: {error.message}"[:200]
