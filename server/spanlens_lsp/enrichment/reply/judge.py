"""Judge one call's reply against the spans it was asked about: what validated, and the
failure when nothing did. A reply, however odd, is a verdict here, never a crash."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from spanlens_lsp.enrichment.backends.base import BackendFailure, ChatReply, FailureKind
from spanlens_lsp.enrichment.prompt.build import Prompt
from spanlens_lsp.enrichment.reply.validate import Validated, validate_batch_reply, validate_reply

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SpanCall:
    """What one call's reply came to for its spans: validated entries, and the failure when
    none validated."""

    results: dict[int, Validated]
    failure: BackendFailure | None
    reply: ChatReply | BackendFailure


def judge_reply(reply: ChatReply | BackendFailure, prompt: Prompt) -> SpanCall:
    """Validate one call's reply: what it enriched, and its failure if nothing validated."""
    if isinstance(reply, BackendFailure):
        return SpanCall({}, reply, reply)
    try:
        if prompt.is_batch:
            results = validate_batch_reply(reply.text, prompt.contexts)
        else:
            context = prompt.contexts[0]
            results = {context.span_id: validate_reply(reply.text, context)}
    except Exception as exc:  # a reply, however odd, is invalid output, never a crash
        log.warning("validating a reply failed: %s", type(exc).__name__)
        failure = BackendFailure(
            FailureKind.INVALID_OUTPUT,
            f"reply could not be validated ({type(exc).__name__})",
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            duration_ms=reply.duration_ms,
        )
        return SpanCall({}, failure, reply)
    if any(r.ok for r in results.values()):
        return SpanCall(results, None, reply)
    # One line (it becomes the span's failure and the endpoint's last error); the attempt row
    # gets one line per span (see attempt_row).
    detail = "; ".join(r.describe() for r in results.values())[:300]
    return SpanCall(
        results,
        BackendFailure(
            FailureKind.INVALID_OUTPUT,
            detail,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            duration_ms=reply.duration_ms,
        ),
        reply,
    )
