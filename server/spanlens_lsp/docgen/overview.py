"""The file overview: one structured model call per file, validated like a span's enrichment.

The prompt carries the file's spans (names, signatures, validated summaries), never invented
facts; the reply must follow :data:`OVERVIEW_SCHEMA`, say something real in every field, and
name (in backticks) only spans of the file. Invalid replies are never written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from spanlens_lsp.enrichment.backends.base import (
    BackendFailure,
    CallResult,
    ChatRequest,
    FailureKind,
)
from spanlens_lsp.enrichment.call.path import CallPath, CallRequest, Verdict
from spanlens_lsp.enrichment.reply.parse import extract_json
from spanlens_lsp.enrichment.reply.placeholders import placeholder_reason
from spanlens_lsp.settings import BackendSettings, Settings
from spanlens_lsp.store.enrichments import StoreWriteFailed

#: Bump when the prompt or schema changes: every overview key changes with it.
DOCGEN_PROMPT_VERSION = "docgen-1"
#: Opening tag of the machine-readable request in the prompt (test stand-ins read it).
REQUEST_TAG = "spanlens-docgen"
REPLY_TOKENS = 700

OVERVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "purpose": {"type": "string", "minLength": 1, "maxLength": 600},
        "responsibilities": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 300},
            "minItems": 1,
            "maxItems": 8,
        },
        "structure": {"type": "string", "minLength": 1, "maxLength": 1200},
    },
    "required": ["purpose", "responsibilities", "structure"],
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft202012Validator(OVERVIEW_SCHEMA)
_MENTION = re.compile(r"`([^`\n]{1,120})`")

OVERVIEW_SYSTEM_PROMPT = (
    "You write the overview of one source file for its reference documentation. "
    "From the file's spans (their signatures and summaries) say what the module is for, its "
    "main responsibilities, and how its parts fit together. Write span names in backticks and "
    "name only spans listed in the request. Reply with one JSON object: "
    '{"purpose": str, "responsibilities": [str], "structure": str}.'
)


@dataclass(frozen=True, slots=True)
class OverviewSpan:
    """What the prompt says about one span."""

    name: str
    kind: str
    signature: str
    summary: str | None


def build_messages(path: str, language: str, spans: list[OverviewSpan]) -> list[dict[str, str]]:
    """The chat messages asking for ``path``'s overview."""
    request = {"path": path, "language": language, "spans": [s.name for s in spans]}
    lines = [f"<{REQUEST_TAG}>{json.dumps(request)}</{REQUEST_TAG}>", f"File: {path}", ""]
    for span in spans:
        summary = span.summary or "(no summary: enrichment failed)"
        lines.append(f"- `{span.name}` ({span.kind}): {span.signature} :: {summary}")
    return [
        {"role": "system", "content": OVERVIEW_SYSTEM_PROMPT},
        {"role": "user", "content": "\n".join(lines)},
    ]


def validate_overview(text: str, names: list[str]) -> tuple[dict[str, Any] | None, list[str]]:
    """The overview in a reply, or None and why it is invalid."""
    found = extract_json(text)
    if found is None:
        return None, ["reply is not JSON"]
    data = found[0]
    errors = [e.message for e in _VALIDATOR.iter_errors(data)]
    if errors:
        return None, errors
    texts = [("purpose", data["purpose"]), ("structure", data["structure"])]
    texts += [(f"responsibilities[{i}]", t) for i, t in enumerate(data["responsibilities"])]
    known = set(names) | {n.rsplit(".", 1)[-1] for n in names}
    for where, value in texts:
        reason = placeholder_reason(value)
        if reason:
            errors.append(f"{where} {reason}")
        for mention in _MENTION.findall(value):
            bare = mention.strip().removesuffix("()")
            if bare not in known:
                errors.append(f"{where} names {bare!a}, which is no span of the file")
    return (None, errors) if errors else (data, [])


@dataclass(slots=True)
class OverviewResult:
    """A validated overview, or why there is none."""

    data: dict[str, Any] | None
    error: str | None = None
    calls: int = 0


def judge_overview(
    reply: CallResult, path: str, names: list[str]
) -> Verdict[dict[str, Any] | None]:
    """What an overview reply came to; its ``attempts`` row says ``overview of <path>``."""
    what = f"overview of {path}"
    if isinstance(reply, BackendFailure):
        return Verdict(None, reply, "failed", reply.kind.value, f"{what}: {reply.detail}")
    data, problems = validate_overview(reply.text, names)
    if data is not None:
        return Verdict(data, None, "ok", None, what)
    failure = BackendFailure(
        FailureKind.INVALID_OUTPUT,
        "invalid overview: " + "; ".join(problems[:3]),
        tokens_in=reply.tokens_in,
        tokens_out=reply.tokens_out,
        duration_ms=reply.duration_ms,
    )
    return Verdict(None, failure, "failed", failure.kind.value, f"{what}: {failure.detail}")


class OverviewWriter:
    """Asks the docgen tier for one overview at a time, through the one call path (the same
    slots, breakers, retries and attempt records as span calls).

    It uses the enrichment tier's model by default, so an Ollama server keeps the model it
    already holds (the backends send ``keep_alive``). Remote endpoints are used only for
    files that may leave the machine. Without a call path (no backend configured, or a
    command that only counts docs) no overview is written.
    """

    def __init__(self, settings: Settings, calls: CallPath | None = None) -> None:
        tier = settings.docgen.tier or next(
            (t for t in settings.enrichment.tiers if any(b.tier == t for b in settings.backends)),
            "small",
        )
        self.tier = tier
        self.endpoints: list[BackendSettings] = [b for b in settings.backends if b.tier == tier]
        #: The process's call path (the engine's); set by whoever builds the services.
        self.calls = calls

    @property
    def model(self) -> str | None:
        """The model that writes overviews (part of every overview key), or None."""
        return self.endpoints[0].model if self.endpoints else None

    async def write(
        self, path: str, language: str, spans: list[OverviewSpan], *, local_only: bool
    ) -> OverviewResult:
        """One validated overview of ``path`` from the docgen tier (failover and retries as
        for any call); only the docgen tier is asked, since its model is part of the key."""
        if not self.endpoints or self.calls is None:
            return OverviewResult(None, f"no backend in tier {self.tier}")
        names = [s.name for s in spans]
        request: CallRequest[dict[str, Any] | None] = CallRequest(
            ChatRequest(
                build_messages(path, language, spans), OVERVIEW_SCHEMA, REPLY_TOKENS, "overview"
            ),
            lambda reply: judge_overview(reply, path, names),
        )
        try:
            asked = await self.calls.ask(request, [self.tier], local_only=local_only)
        except StoreWriteFailed as exc:
            # The call could not be recorded: no more calls until the index takes writes.
            return OverviewResult(None, str(exc))
        verdict = asked.verdict
        if verdict is not None and verdict.failure is None:
            return OverviewResult(verdict.value, None, asked.calls)
        if verdict is not None and verdict.failure is not None:
            failure = verdict.failure
            error = (
                failure.detail if failure.kind is FailureKind.INVALID_OUTPUT else failure.kind.value
            )
        elif local_only and not self.calls.eligible(self.tier, True):
            error = "file must not leave this machine and no local backend is configured"
        else:
            error = asked.reasons[-1] if asked.reasons else "no model reachable"
        return OverviewResult(None, error, asked.calls)
