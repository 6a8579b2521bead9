"""Hovers: model output is untrusted text and must render inert, whatever it contains."""

from __future__ import annotations

import json
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from spanlens_lsp.presentation.markdown import inline_markdown, render_markdown, render_plaintext
from spanlens_lsp.presentation.state import FAILED, FRESH, PENDING, STALE, SpanView
from spanlens_lsp.presentation.text import clean_text, has_unsafe_chars
from spanlens_lsp.store.rows import SpanRow

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
    # A small model's words stay labelled with it after the code changed.
    model = view.enrichment["model"]  # type: ignore[index]
    assert f"stale: code changed since this summary by {model}" in render_markdown(view)


def test_plaintext_has_no_markdown() -> None:
    view = SpanView(span(), FRESH, enrichment(pitfalls=["Raises on **empty** files"]), None)
    text = render_plaintext(view)
    assert "Pitfalls:" in text and "Raises on **empty** files" in text
    assert "```" not in text


def test_plaintext_shows_what_the_markdown_hover_shows() -> None:
    """Clients that prefer plain text (eglot, piped `spanlens show`) lose nothing: tags of an
    enrichment, the docstring of a span still pending, and the state line with its marker."""
    fresh = SpanView(span(), FRESH, enrichment(tags=["config", "parsing"]), None)
    text = render_plaintext(fresh)
    assert "Tags: config, parsing" in text
    assert text.splitlines()[-1].startswith("✓ enriched by qwen2.5-coder:7b (small)")
    pending = SpanView(span(docstring="Read the file.\n\nLonger story."), PENDING, None, None)
    text = render_plaintext(pending)
    assert "Read the file." in text and "Longer story" not in text
    assert text.splitlines()[-1].startswith("… pending")


# ------------------------------------------------------------------ renderers of real clients

ROOT = Path(__file__).resolve().parents[2]
MARKED = ROOT / "tests" / "js" / "render_marked.mjs"

#: Model text that tries to become a link, an image, HTML or structure, in any renderer.
LINKS_AND_HTML = [
    "see https://evil.example/x now",
    "http://2130706433/ is loopback in disguise",
    "fetches www.evil.example and WWW.EVIL.EXAMPLE/path",
    "<http://evil.example> and <mailto:a@evil.example>",
    "write to a@evil.example or mailto:b@evil.example",
    "[1]: http://evil.example",
    "[x][1] then [1]: http://evil.example",
    "[click](javascript:alert(1)) <javascript:alert(1)>",
    "![i](http://evil.example/p.png) ![i][r]",
    "<img src=x onerror=alert(1)> <script>alert(1)</script>",
    "<!-- hidden --> <?php echo 1; ?> <![CDATA[x]]>",
    "&lt;b&gt; &#106;avascript:alert(1) &copy;",
    "[a](<http://x y>) [a]( http://x ) [[nested](http://x)]",
    "(reads evil.io) and settings.py from x.co/abc",
    "www\u200b.zero-width.example and http\u2060://joined.example",
    "ftp://files.example/a and xmpp:someone@chat.example",
]
#: Model text that tries to become emphasis, code, lists, headings and other blocks.
STRUCTURE = [
    "*emph* _under_ **strong** __dunder__ ~~del~~ ~tilde~",
    "`code` and ``more`` and ```three```",
    "```js",
    "~~~",
    "# heading",
    "###### six",
    "> quote",
    "- item",
    "+ item",
    "* item",
    "1. one",
    "2) two",
    "---",
    "***",
    "_ _ _",
    "- [ ] task",
    "[ ] box",
    "| a | b |",
    "a\\",
    "\\*not emphasis\\*",
    "back\\slash and \\n",
    "__init__ calls _private_helper and *args, **kwargs",
    "x = a*b*c and 2*3*4",
    "snake_case_name and CONSTANT_NAME_",
    "AT&T & friends",
    "a < b > c <= d",
    "[^1] footnote and [^1]: text",
]
#: Ordinary prose that must show as written: no backslash in its Markdown source.
PLAIN = [
    "Updates the config in place; mind the behaviour.",
    "Calls make_str on each item (a str or bytes) and joins them.",
    "qwen2.5-coder:7b (small) on 2026-12-01",
    "Returns list[int] of the values, or None if empty!",
    "Retries 3 times - then gives up. See README section 2.",
    "Raises ValueError: when x < 0.",
    "Uses a 50% threshold, e.g. 0.5 + margin = 0.55 (see #12).",
    "Joins path parts with os.path.join and returns a str.",
]
#: Link-like words at the end of a sentence or inside brackets.
PUNCTUATED = [
    "Reads the settings from config.py.",
    "See www.example.com, then README.md).",
    "Writes (to https://example.com/x); then returns.",
]
ALL_MODEL_TEXT = LINKS_AND_HTML + STRUCTURE + PLAIN + PUNCTUATED


class _Html(HTMLParser):
    """Tags and visible text of rendered HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", {}))


def parse_html(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    parser.close()
    return parser


def render_commonmark(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def render_linkify(markdown: str) -> str:
    """CommonMark with raw HTML and linkify (fuzzy links and e-mails, linkify-it defaults)."""
    return (
        MarkdownIt("commonmark", {"html": True, "linkify": True}).enable("linkify").render(markdown)
    )


def render_gfm_like(markdown: str) -> str:
    """markdown-it's GFM-like preset: tables, strikethrough, linkify, raw HTML."""
    return MarkdownIt("gfm-like", {"html": True}).render(markdown)


def render_marked(documents: list[str]) -> list[str]:
    """HTML from the npm package marked (GFM), as VS Code's hover renders."""
    if not (MARKED.parent / "node_modules" / "marked").is_dir():
        raise AssertionError(
            "marked is not installed: run `make js-test-deps` (npm ci in tests/js)"
        )
    done = subprocess.run(
        ["node", str(MARKED)],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(done.stdout))


PY_RENDERERS = {"commonmark": render_commonmark, "linkify": render_linkify, "gfm": render_gfm_like}


def placements(text: str) -> list[tuple[str, str, str]]:
    """(how, Markdown, expected visible text) for ``text`` in every place a hover puts it."""
    expected = clean_text(text, one_line=True)
    return [
        ("paragraph", inline_markdown(text), expected),
        ("bullet", "- " + inline_markdown(text), expected),
        ("pitfall", "- ⚠ " + inline_markdown(text, at_line_start=False), "⚠ " + expected),
        ("tags", "Tags: " + inline_markdown(text, at_line_start=False), "Tags: " + expected),
        ("state", "*✓ " + inline_markdown(text, at_line_start=False, in_emphasis=True) + "*",
         "✓ " + expected),
    ]  # fmt: skip


#: Tags each placement's own Markdown makes (bullets, our emphasis); code spans are ours too.
OWN_TAGS = {"paragraph": {"p"}, "bullet": {"ul", "li"}, "pitfall": {"ul", "li"},
            "tags": {"p"}, "state": {"p", "em"}}  # fmt: skip


def check_rendered(how: str, html: str, expected: str, source: str) -> None:
    parsed = parse_html(html)
    tags = {tag for tag, _ in parsed.tags}
    assert tags <= OWN_TAGS[how] | {"code"}, (how, source, html)
    assert not any("href" in attrs or "src" in attrs for _, attrs in parsed.tags), html
    visible = " ".join("".join(parsed.text).split())
    assert visible == expected, (how, source, html)


@pytest.mark.parametrize("renderer", sorted(PY_RENDERERS))
@pytest.mark.parametrize("text", ALL_MODEL_TEXT)
def test_model_text_renders_as_itself_in_markdown_it(renderer: str, text: str) -> None:
    """No link, image, HTML or structure, and exactly the model's text (no backslashes)."""
    for how, markdown, expected in placements(text):
        check_rendered(how, PY_RENDERERS[renderer](markdown), expected, text)


def test_model_text_renders_as_itself_in_marked() -> None:
    cases = [(text, *placement) for text in ALL_MODEL_TEXT for placement in placements(text)]
    rendered = render_marked([markdown for _, _, markdown, _ in cases])
    for (text, how, _, expected), html in zip(cases, rendered, strict=True):
        check_rendered(how, html, expected, text)


def test_a_code_span_leaves_trailing_punctuation_in_the_prose() -> None:
    """Neovim and Emacs show the source: the sentence's full stop is not part of the name."""
    assert inline_markdown("Reads the settings from config.py.") == (
        "Reads the settings from `config.py`."
    )
    assert inline_markdown("See www.example.com, then README.md).") == (
        "See `www.example.com`, then `README.md`)."
    )


@pytest.mark.parametrize("text", PLAIN)
def test_ordinary_prose_gets_no_backslashes(text: str) -> None:
    """Neovim and Emacs show the Markdown source: it must read as the model wrote it."""
    assert inline_markdown(text) == text
    assert inline_markdown(text, at_line_start=False, in_emphasis=True) == text


def test_a_hover_of_ordinary_text_has_no_backslash_anywhere() -> None:
    data = enrichment(
        summary="Keeps the behaviour. Calls make_str on each item.",
        inputs=["path: where the config lives (a str)"],
        pitfalls=["Fails on Windows paths like C:/x - see issue 12."],
        tags=["config", "io-bound"],
    )
    created = time.mktime((2026, 12, 1, 10, 30, 0, 0, 0, -1))
    view = SpanView(span(), FRESH, {**data, "created_at": created}, None)
    markdown = render_markdown(view, now=created)
    assert "\\" not in markdown, markdown
    assert "enriched by qwen2.5-coder:7b (small) on 2026-12-01 10:30" in markdown


def test_a_whole_hover_of_hostile_text_has_no_link_image_or_html_in_any_renderer() -> None:
    data = enrichment(
        summary=" ".join(LINKS_AND_HTML),
        inputs=LINKS_AND_HTML,
        outputs=STRUCTURE,
        side_effects=LINKS_AND_HTML,
        pitfalls=STRUCTURE + LINKS_AND_HTML,
        tags=LINKS_AND_HTML,
        usage_snippet="x = 1\n```\n<img src=x>\n```\n[a](http://x)",
    )
    markdown = render_markdown(SpanView(span(), FRESH, data, None))
    outputs = [render(markdown) for render in PY_RENDERERS.values()] + render_marked([markdown])
    allowed = {"p", "ul", "li", "strong", "em", "code", "pre", "hr"}
    for html in outputs:
        parsed = parse_html(html)
        assert {tag for tag, _ in parsed.tags} <= allowed, html
        assert not any("href" in attrs or "src" in attrs for _, attrs in parsed.tags)
        assert sum(1 for tag, _ in parsed.tags if tag == "em") == 1  # the state line, ours


CONTROL = "a\x00b\x1b[31mc\x07d\x7fe\x9bf\u202eg\u2066h\u200ei\u061cj\r\nk\tl"


def test_control_and_bidi_characters_never_reach_a_hover_or_plain_text() -> None:
    data = enrichment(summary=CONTROL, pitfalls=[CONTROL], tags=[CONTROL], usage_snippet=CONTROL)
    failure = {"count": 9, "last_error": "server said \x1b[2J\u202eboom", "next_retry_at": 0}
    view = SpanView(span(signature="def f(\u202ex)"), FRESH, data, failure)
    stale = SpanView(span(), FAILED, data, failure)
    for text in (render_markdown(view), render_plaintext(view), render_markdown(stale)):
        assert not has_unsafe_chars(text), ascii(text)
    assert "abcdefghij k l" in render_markdown(view)
