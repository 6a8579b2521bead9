"""A span's enrichment state, resolved from the store: fresh, stale, pending, failed, facts only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from spanlens_lsp.indexing.spans import CONTAINER_KINDS, direct_members
from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.states import ENRICHMENT_VERSION, SpanState, span_state
from spanlens_lsp.store.enrichments import enrichment_for, failure_for, latest_enrichment
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow

FRESH = SpanState.FRESH
STALE = SpanState.STALE
PENDING = SpanState.PENDING
FAILED = SpanState.FAILED
FACTS_ONLY = SpanState.FACTS_ONLY


@dataclass(slots=True)
class SpanView:
    """Everything a hover, lens or `spanlens show` needs about one span."""

    span: SpanRow
    state: SpanState
    #: The enrichment shown: the fresh one, or for a stale span the previous one.
    enrichment: dict[str, Any] | None
    failure: dict[str, Any] | None
    #: For a class or struct: its methods' fresh enrichments (each method's short name and
    #: stored data), in source order; their side effects and pitfalls are the class's.
    methods: tuple[tuple[str, dict[str, Any]], ...] = ()

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for `spanlens show --json` and custom LSP requests)."""
        s = self.span
        return {
            "path": s.path,
            "language": s.language,
            "name": s.name,
            "kind": s.kind,
            "range": {"start": [s.start_line + 1, s.start_col], "end": [s.end_line + 1, s.end_col]},
            "content_hash": s.content_hash,
            "state": self.state,
            "facts": s.facts,
            "enrichment": self.enrichment,
            "failure": self.failure,
        }


def span_view(
    store: Store,
    span: SpanRow,
    *,
    max_failures: int = 3,
    models_configured: bool = True,
    version: str = ENRICHMENT_VERSION,
    with_methods: bool = False,
) -> SpanView:
    """Resolve the state of ``span``: what the user is shown and why. ``with_methods`` reads
    a class's methods' enrichments too (:func:`member_enrichments`), for what renders them
    (the hover, `spanlens show`); lens titles and diagnostics do not read them."""
    methods = member_enrichments(store, span, version) if with_methods else ()
    fresh = enrichment_for(store, span.content_hash, version)
    if fresh is not None:
        return SpanView(span, FRESH, fresh, None, methods)
    if not models_configured:
        # Nothing will re-enrich it: an older summary describes code that is gone.
        return SpanView(span, FACTS_ONLY, None, None, methods)
    previous = latest_enrichment(store, [span.content_hash, span.enriched_hash or ""])
    failure = failure_for(store, span.content_hash)
    state = span_state(
        fresh=False,
        failures=failure["count"] if failure else 0,
        max_failures=max_failures,
        has_previous=previous is not None,
    )
    return SpanView(span, state, previous, failure, methods)


#: Most methods of one class whose enrichments a view reads.
MAX_METHODS = 40


def member_enrichments(
    store: Store, span: SpanRow, version: str = ENRICHMENT_VERSION
) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The fresh enrichments of the methods of a class or struct ``span`` (spans of its file
    named ``<class>.<method>``, nested classes aside), as (method name, data) in source
    order; () for any other span. A stale one is left out: it describes code that is gone."""
    if span.kind not in CONTAINER_KINDS:
        return ()
    found: list[tuple[str, dict[str, Any]]] = []
    for own, member in direct_members(span.name, store.spans_in_file(span.path, with_facts=False)):
        enrichment = enrichment_for(store, member.content_hash, version)
        if enrichment is not None and isinstance(enrichment.get("data"), dict):
            found.append((own, enrichment["data"]))
        if len(found) >= MAX_METHODS:
            break
    return tuple(found)


def describe_state(view: SpanView, now: float | None = None) -> str:
    """One short line saying what the user is looking at."""
    now = time.time() if now is None else now
    enrichment = view.enrichment
    model = model_label(enrichment)
    if view.state == FRESH and enrichment:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(enrichment["created_at"]))
        return f"enriched by {model or 'an unnamed model'} ({enrichment['tier']}) on {when}"
    if view.state == STALE:
        by = f" by {model}" if model else ""
        return f"stale: code changed since this summary{by}; re-enriching"
    if view.state == FAILED and view.failure:
        return f"failed: {view.failure['last_error']} ({view.failure['count']} attempts); " + (
            "use the retry command"
        )
    if view.state == FACTS_ONLY:
        return "facts only: no model configured"
    if view.failure:
        wait = max(0.0, view.failure["next_retry_at"] - now)
        error = view.failure["last_error"]
        return f"pending: last attempt failed ({error}), retry in {human_duration(wait)}"
    return "pending: waiting for a model"


#: Longest model label in a lens title, a diagnostic or a doc.
MODEL_LABEL_CHARS = 32


def model_label(enrichment: dict[str, Any] | None) -> str:
    """The short name of the model that wrote ``enrichment``, for lens titles, diagnostics and
    docs (``qwen2.5-coder:7b``, ``smollm2``; ``hf.co/org/SmolLM2-135M-Instruct-GGUF:Q4`` is
    ``SmolLM2-135M-Instruct-GGUF:Q4``), or ``""`` when the row names none.

    The name is the stored row's, which a repository's config may have chosen: it is cleaned
    (no control, escape or bidi characters), cut to its last ``/`` part, without a ``.gguf``
    suffix, at most :data:`MODEL_LABEL_CHARS` characters.
    """
    model = clean_text((enrichment or {}).get("model") or "", one_line=True)
    short = model.rstrip("/").rsplit("/", 1)[-1] or model
    if short.lower().endswith(".gguf") and len(short) > 5:
        short = short[:-5]
    if len(short) > MODEL_LABEL_CHARS:
        short = short[: MODEL_LABEL_CHARS - 1].rstrip() + "…"
    return short


def human_duration(seconds: float) -> str:
    """``42s``, ``3m``, ``2h``."""
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return f"{int(seconds // 3600)}h"
