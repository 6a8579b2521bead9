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

from spanlens.config import BackendSettings, Settings
from spanlens.enrichment.backends import ChatReply, ChatRequest, create_backend
from spanlens.enrichment.validation import extract_json, placeholder_reason

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

SYSTEM_PROMPT = (
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
        {"role": "system", "content": SYSTEM_PROMPT},
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


class OverviewWriter:
    """Calls the docgen tier's endpoints in order (failover) for one overview at a time.

    It uses the enrichment tier's model by default, so an Ollama server keeps the model it
    already holds (the backends send ``keep_alive``). Remote endpoints are used only for
    files that may leave the machine.
    """

    def __init__(self, settings: Settings) -> None:
        tier = settings.docgen.tier or next(
            (t for t in settings.enrichment.tiers if any(b.tier == t for b in settings.backends)),
            "small",
        )
        self.tier = tier
        self.endpoints: list[BackendSettings] = [b for b in settings.backends if b.tier == tier]
        self._backends = [create_backend(b, settings.local) for b in self.endpoints]

    @property
    def model(self) -> str | None:
        """The model that writes overviews (part of every overview key), or None."""
        return self.endpoints[0].model if self.endpoints else None

    async def write(
        self, path: str, language: str, spans: list[OverviewSpan], *, local_only: bool
    ) -> OverviewResult:
        """One validated overview of ``path``; the first endpoint that gives one wins."""
        if not self._backends:
            return OverviewResult(None, f"no backend in tier {self.tier}")
        request = ChatRequest(
            build_messages(path, language, spans), OVERVIEW_SCHEMA, REPLY_TOKENS, "overview"
        )
        names = [s.name for s in spans]
        error = "no model reachable"
        calls = 0
        for settings, backend in zip(self.endpoints, self._backends, strict=True):
            if local_only and settings.is_remote:
                error = "file must not leave this machine and no local backend is configured"
                continue
            reply = await backend.chat(request)
            calls += 1
            if not isinstance(reply, ChatReply):
                error = reply.kind.value
                continue
            data, problems = validate_overview(reply.text, names)
            if data is not None:
                return OverviewResult(data, None, calls)
            error = "invalid overview: " + "; ".join(problems[:3])
        return OverviewResult(None, error, calls)

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        for backend in self._backends:
            await backend.aclose()
