"""A file's doc as Markdown: header, overview, then every span in source order.

All model text goes through :func:`spanlens_lsp.presentation.markdown.inline_markdown` (no links,
images or HTML from it), and cross-references are relative links to anchors in other docs.
"""

from __future__ import annotations

import posixpath
from typing import Any

from spanlens_lsp.docgen.plan import FilePlan, SpanRef, anchor_of, signature_of
from spanlens_lsp.docgen.write import header_line
from spanlens_lsp.presentation.markdown import bullet_list, fact_lines, fenced, inline_markdown
from spanlens_lsp.presentation.state import model_label
from spanlens_lsp.presentation.text import clean_text
from spanlens_lsp.states import SpanState

_FIELDS = (
    ("Inputs", "inputs"),
    ("Outputs", "outputs"),
    ("Side effects", "side_effects"),
    ("Pitfalls", "pitfalls"),
)


def link(from_path: str, ref: SpanRef) -> str:
    """A relative Markdown link from ``from_path``'s doc to ``ref``'s anchor in its doc."""
    here = posixpath.dirname(from_path + ".md")
    target = posixpath.relpath(ref.path + ".md", here or ".")
    if ref.path == from_path:
        target = ""
    label = clean_text(ref.name, one_line=True).replace("`", "'")
    where = "" if ref.path == from_path else f" ({clean_text(ref.path, one_line=True)})"
    return f"[`{label}`]({_url(target)}#{ref.anchor}){inline_markdown(where, at_line_start=False)}"


def _url(path: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "/._-" else f"%{ord(ch):02X}" for ch in path)


def render_doc(plan: FilePlan, overview: dict[str, Any]) -> str:
    """The whole doc of ``plan``'s file, its header first."""
    doc = plan.doc
    parts = [
        header_line(plan.overview_key, plan.render_key, overview),
        f"# {inline_markdown(clean_text(doc.path, one_line=True))}",
        inline_markdown(overview["purpose"]),
        "**Responsibilities**\n" + bullet_list(overview["responsibilities"], ""),
        "**How it fits together**\n\n" + inline_markdown(overview["structure"]),
    ]
    for item in doc.spans:
        span = item.span
        title = clean_text(span.name, one_line=True).replace("`", "'")
        parts.append(f'<a id="{anchor_of(span.name)}"></a>\n## `{title}` ({span.kind})')
        parts.append(fenced(clean_text(signature_of(item)), span.language))
        data = item.enrichment
        if item.state == SpanState.FAILED or not data:
            error = clean_text(item.error or "enrichment failed", one_line=True)
            parts.append(f"*✗ enrichment failed: {inline_markdown(error, at_line_start=False)}*")
        else:
            parts.append(inline_markdown(data.get("summary", "")))
            for title_text, key in _FIELDS:
                values = data.get(key) or []
                if values:
                    prefix = "⚠ " if key == "pitfalls" else ""
                    parts.append(f"**{title_text}**\n" + bullet_list(values, prefix))
            snippet = data.get("usage_snippet")
            if snippet:
                parts.append("**Usage**\n" + fenced(clean_text(snippet), span.language))
            model = model_label({"model": item.model})
            if model:
                by = inline_markdown(model, at_line_start=False, in_emphasis=True)
                parts.append(f"*Enriched by {by}.*")
        parts.append("**Parser facts**\n" + bullet_list(fact_lines(span.facts), "", escape=False))
        calls = plan.calls.get(span.id) or []
        if calls:
            parts.append("**Calls**: " + ", ".join(link(doc.path, r) for r in calls))
        callers = plan.callers.get(span.id) or []
        if callers:
            parts.append("**Called by**: " + ", ".join(link(doc.path, r) for r in callers))
    return "\n\n".join(parts) + "\n"
