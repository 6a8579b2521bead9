"""Hover Markdown and plain text. Model output is untrusted: it is escaped, never interpreted.

No link, image, HTML tag or autolink can come out of a model's text: every Markdown
punctuation character is backslash-escaped and ``<``/``>``/``&`` become entities. Code (the
signature, the usage snippet) goes into fences longer than any backtick run inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from spanlens.presentation.state import FRESH, STALE, SpanView, describe_state

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_LANG_FENCE = {"tsx": "tsx", "typescript": "typescript", "javascript": "javascript"}


def escape_markdown(text: str) -> str:
    """Make untrusted text inert Markdown: no links, images, HTML, headings or emphasis."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # Collapse newlines to keep one model string from starting block constructs.
    return " ".join(text.split())


def fenced(code: str, language: str) -> str:
    """A fenced code block that ``code`` cannot break out of."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{_LANG_FENCE.get(language, language)}\n{code}\n{fence}"


def render_markdown(view: SpanView, now: float | None = None) -> str:
    """The hover for one span: signature, enrichment (if any), parser facts, state line."""
    span = view.span
    facts = span.facts
    parts = [fenced(facts.get("signature") or span.name, span.language)]
    data = view.enrichment["data"] if view.enrichment else None
    if data:
        if view.state == STALE:
            parts.append("*Previous version's summary; the code has changed since.*")
        parts.append(escape_markdown(str(data.get("summary", ""))))
        for title, key in (
            ("Inputs", "inputs"),
            ("Outputs", "outputs"),
            ("Side effects", "side_effects"),
            ("Pitfalls", "pitfalls"),
        ):
            items = data.get(key) or []
            if items:
                parts.append(f"**{title}**\n" + _bullets(items, "⚠ " if key == "pitfalls" else ""))
        snippet = data.get("usage_snippet")
        if snippet:
            parts.append("**Usage**\n" + fenced(str(snippet), span.language))
        tags = data.get("tags") or []
        if tags:
            # Not code spans: a backslash escape inside backticks would show literally.
            parts.append("Tags: " + ", ".join(escape_markdown(str(t)) for t in tags))
    else:
        doc = facts.get("docstring") or facts.get("doc")
        if doc:
            parts.append(escape_markdown(str(doc).split("\n\n")[0]))
    parts.append("**Parser facts**\n" + _bullets(fact_lines(facts), "", escape=False))
    marker = "✓" if view.state == FRESH else "…"
    parts.append(f"---\n*{marker} {escape_markdown(describe_state(view, now))}*")
    return "\n\n".join(parts)


def render_plaintext(view: SpanView, now: float | None = None) -> str:
    """The same content as :func:`render_markdown`, for clients that prefer plain text."""
    span = view.span
    facts = span.facts
    lines = [facts.get("signature") or span.name, ""]
    data = view.enrichment["data"] if view.enrichment else None
    if data:
        if view.state == STALE:
            lines.append("(previous version's summary; the code has changed since)")
        lines.append(" ".join(str(data.get("summary", "")).split()))
        for title, key in (
            ("Inputs", "inputs"),
            ("Outputs", "outputs"),
            ("Side effects", "side_effects"),
            ("Pitfalls", "pitfalls"),
        ):
            items = data.get(key) or []
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  - {' '.join(str(i).split())}" for i in items)
        if data.get("usage_snippet"):
            lines += ["Usage:", str(data["usage_snippet"])]
    lines.append("Parser facts:")
    lines.extend(f"  - {line}" for line in fact_lines(facts, markdown=False))
    lines.append(f"[{describe_state(view, now)}]")
    return "\n".join(lines)


def fact_lines(facts: dict[str, Any], markdown: bool = True) -> list[str]:
    """Short lines describing parser facts (parameters, returns, raises, calls, size)."""

    def code(text: Any) -> str:
        text = str(text).replace("`", "'")
        return f"`{text}`" if markdown else text

    out = []
    params = facts.get("params") or []
    if params:
        out.append("params: " + ", ".join(code(_param(p)) for p in params))
    returns = facts.get("returns")
    if returns:
        out.append("returns: " + code(returns))
    for key, title in (("raises", "raises"), ("side_effects", "side effects")):
        values = facts.get(key) or []
        if values:
            out.append(f"{title}: " + ", ".join(code(v) for v in values))
    calls = facts.get("calls") or []
    if calls:
        more = f" (+{len(calls) - 8} more)" if len(calls) > 8 else ""
        out.append("calls: " + ", ".join(code(c) for c in calls[:8]) + more)
    members = facts.get("members") or []
    if members:
        more = f" (+{len(members) - 12} more)" if len(members) > 12 else ""
        out.append("members: " + ", ".join(code(m) for m in members[:12]) + more)
    size = [f"{facts.get('lines', '?')} lines"]
    if "nesting" in facts:
        size.append(f"nesting {facts['nesting']}")
    if "branches" in facts:
        size.append(f"{facts['branches']} branches")
    if "tokens" in facts:
        size.append(f"~{facts['tokens']} tokens")
    out.append(" · ".join(size))
    return out


def _param(param: dict[str, Any]) -> str:
    text = str(param.get("name", "?"))
    kind_prefix = {"var_positional": "*", "var_keyword": "**"}.get(str(param.get("kind")), "")
    annotation = param.get("annotation") or param.get("type")
    if annotation:
        text += f": {annotation}"
    if param.get("default") is not None:
        text += f" = {param['default']}"
    return kind_prefix + text


def _bullets(items: Iterable[Any], prefix: str, escape: bool = True) -> str:
    return "\n".join(
        f"- {prefix}{escape_markdown(str(item)) if escape else item}" for item in items
    )
