"""Hovers: model output is untrusted text and must render inert, whatever it contains."""

from __future__ import annotations

import time
from typing import Any

from markdown_it import MarkdownIt

from spanlens.presentation.markdown import render_markdown, render_plaintext
from spanlens.presentation.state import FRESH, PENDING, STALE, SpanView
from spanlens.store.db import SpanRow

HOSTILE = [
    "[click me](command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22rm%22%7D)",
    "![tracker](https://evil.example/pixel.png)",
    "<img src=https://evil.example/x.png onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<a href='command:foo'>x</a>",
    "[ref]: https://evil.example\n[ref]",
    "<https://evil.example/autolink>",
    "# Heading that takes over the hover",
    "*** --- ___",
]


def span(**facts: Any) -> SpanRow:
    return SpanRow(
        id=1,
        path="app/config.py",
        language="python",
        name="parse_config",
        kind="function",
        ordinal=0,
        start_line=9,
        start_col=0,
        end_line=14,
        end_col=20,
        name_start_line=9,
        name_start_col=4,
        name_end_line=9,
        name_end_col=16,
        content_hash="abc",
        facts={"signature": "def parse_config(path: str) -> dict", "lines": 6, **facts},
        enriched_hash=None,
    )


def enrichment(**data: Any) -> dict[str, Any]:
    base = {
        "summary": "Parses the config.",
        "inputs": [],
        "outputs": [],
        "side_effects": [],
        "pitfalls": [],
        "tags": [],
        "usage_snippet": None,
    }
    base.update(data)
    return {
        "data": base,
        "model": "qwen2.5-coder:7b",
        "tier": "small",
        "backend": "local",
        "host": "127.0.0.1",
        "created_at": time.time(),
    }


def html_of(markdown: str) -> str:
    # The most permissive renderer: raw HTML allowed. Nothing from the model may survive.
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def test_hostile_model_text_renders_without_links_images_or_html() -> None:
    data = enrichment(
        summary=" ".join(HOSTILE),
        inputs=HOSTILE,
        outputs=HOSTILE,
        side_effects=HOSTILE,
        pitfalls=HOSTILE,
        tags=HOSTILE,
    )
    html = html_of(render_markdown(SpanView(span(), FRESH, data, None)))
    for forbidden in ("<a ", "<img", "<script", "<h1", "<h2"):
        assert forbidden not in html, forbidden
    assert html.count("<hr") == 1  # ours, above the state line; none from the model
    # The text itself is still there for the reader, shown as text.
    assert "click me" in html and "&lt;script&gt;" in html


def test_usage_snippet_cannot_break_out_of_its_code_block() -> None:
    snippet = "x = 1\n```\n[link](command:evil)\n<img src=x>\n```"
    html = html_of(
        render_markdown(SpanView(span(), FRESH, enrichment(usage_snippet=snippet), None))
    )
    assert "<a " not in html and "<img" not in html
    assert html.count("<pre>") == 2  # the signature and the snippet, nothing opened by the model


def test_pending_hover_shows_facts_labelled_as_facts_and_no_summary() -> None:
    view = SpanView(span(raises=["ValueError"], params=[{"name": "path"}]), PENDING, None, None)
    text = render_markdown(view)
    assert "**Parser facts**" in text and "`ValueError`" in text
    assert "pending" in text
    assert "Parses" not in text


def test_stale_hover_says_the_summary_is_from_the_previous_version() -> None:
    view = SpanView(span(), STALE, enrichment(summary="Old summary."), None)
    assert "Previous version" in render_markdown(view)
    assert "previous version" in render_plaintext(view)
    assert "stale" in render_plaintext(view)


def test_plaintext_has_no_markdown() -> None:
    view = SpanView(span(), FRESH, enrichment(pitfalls=["Raises on **empty** files"]), None)
    text = render_plaintext(view)
    assert "Pitfalls:" in text and "Raises on **empty** files" in text
    assert "```" not in text
