"""What is embedded for a span: what a searcher means by it.

The validated summary when the span has one, and always its kind and name, signature and
docstring. Never the code itself: a query says what a function does, and the summary and
docstring say it in the same words. The hash of this text keys the stored vector, so a span
is embedded again only when its text changes (a new summary, a renamed parameter).
"""

from __future__ import annotations

import hashlib

from spanlens_lsp.store.rows import SpanRow

#: Bump when the text below changes shape: every stored vector is then out of date.
TEXT_VERSION = "1"

#: Characters of docstring kept: the first paragraph says what the span does; the rest is
#: detail an embedding of a few hundred dimensions blurs anyway. Cut before the text is
#: stripped, so the text depends on these characters only (what the store compares:
#: :func:`spanlens_lsp.store.embeddings.embedding_source`).
MAX_DOC_CHARS = 600


def embedding_text(span: SpanRow, summary: str | None) -> str:
    """The text embedded for ``span``, given its stored summary (None when it has none)."""
    facts = span.facts
    lines = [f"{span.kind} {span.name}"]
    if summary:
        lines.append(summary.strip())
    signature = str(facts.get("signature") or "").strip()
    if signature:
        lines.append(signature)
    doc = str(facts.get("docstring") or facts.get("doc") or "")[:MAX_DOC_CHARS].strip()
    if doc:
        lines.append(doc)
    return "\n".join(lines)


def text_hash(text: str) -> str:
    """The key of an embedded text (with the text version, so a new shape re-embeds)."""
    return hashlib.sha256(f"{TEXT_VERSION}\0{text}".encode()).hexdigest()
