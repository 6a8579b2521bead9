"""Model and server text reaches the editor without control or bidi characters: lens titles,
diagnostic messages and hovers, over stdio, under both editor profiles."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

from markdown_it import MarkdownIt
from tests.lsp.conftest import Editor, wait_for
from tests.support.standin import Reply, StandinModelServer

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.presentation.text import has_unsafe_chars
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments
from spanlens_lsp.store.db import open_store

PARSE_LINE = 12  # "def parse_config(text):"
HOSTILE = "Parses\x00 lines\x1b[2J\x1b]0;pwned\x07 \u202eof key\u2066=value\u2069\r text.\x9b"
SHOWN = "Parses lines of key=value text."


def store_hostile_enrichments(root: Path) -> None:
    """Enrichments as an older spanlens (or another tool) may have stored them, unchecked."""
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        for span in store.spans_in_file("config.py", with_facts=False):
            data = {
                "summary": HOSTILE,
                "inputs": [],
                "outputs": [],
                "side_effects": [],
                "pitfalls": [HOSTILE, "second\x1b[31m pitfall\u202e"],
                "tags": [HOSTILE],
                "usage_snippet": None,
                "evidence": [],
            }
            enrichments.put_enrichment(
                store, span.content_hash, ENRICHMENT_VERSION, data,
                model="m\x1b[31model\u202e", tier="small", backend="standin", host="127.0.0.1",
            )  # fmt: skip
    finally:
        store.close()


async def test_lens_titles_diagnostics_and_hovers_carry_no_control_characters(
    editor: Editor,
) -> None:
    store_hostile_enrichments(editor.root)
    await editor.start()
    uri = editor.open("config.py")
    titles = await wait_for(lambda: editor.lens_titles("config.py"), what="lens titles")
    assert titles[PARSE_LINE].startswith(SHOWN), titles[PARSE_LINE]
    diagnostics = await wait_for(
        lambda: editor.client.diagnostics.get(uri), what="pitfall diagnostics"
    )
    messages = [d.message for d in diagnostics]
    # The model's name too: "m\x1b[31model\u202e" without its escape sequence and override.
    assert f"parse_config: {SHOWN} · model" in messages
    assert "parse_config: second pitfall · model" in messages
    assert titles[PARSE_LINE].endswith(" · model"), titles[PARSE_LINE]
    hover = await editor.hover_text("config.py", PARSE_LINE)
    assert SHOWN in hover and "model" in hover
    for text in [*titles.values(), *messages, hover]:
        assert not has_unsafe_chars(text), ascii(text)


async def test_a_servers_error_text_reaches_status_and_lenses_without_control_characters(
    editor: Editor, standin: StandinModelServer
) -> None:
    body = "boom\x1b[2J \u202eevil\x00 end [x](http://evil.example) www.evil.example"
    standin.responder = lambda request: Reply.error(500, body=body)
    toml = (editor.root / "spanlens.toml").read_text()
    toml = toml.replace("[enrichment]\n", "[enrichment]\nmax_failures = 1\n")
    (editor.root / "spanlens.toml").write_text(toml)
    await editor.start()
    editor.open("config.py")

    def endpoint_error() -> str | None:
        for status in reversed(editor.statuses):
            for endpoint in (status.get("backends") or {}).get("endpoints") or []:
                if "boom" in str(endpoint.get("last_error")):
                    return str(endpoint["last_error"])
        return None

    error = await wait_for(endpoint_error, what="the endpoint's error in spanlens/status")
    assert "boom evil end" in error, ascii(error)
    titles = await wait_for(
        lambda: _failed(editor.lens_titles("config.py")), what="a failed lens title"
    )
    report = await editor.command("spanlens.statusReport")
    markdown = report["markdown"]
    assert "boom evil end" in markdown
    html = MarkdownIt("commonmark", {"linkify": True}).enable("linkify").render(markdown)
    assert "<a " not in html, html
    for text in [error, *titles, markdown]:
        assert not has_unsafe_chars(text), ascii(text)


async def _failed(titles_request: Awaitable[dict[int, str]]) -> list[str] | None:
    titles = await titles_request
    failed = [title for title in titles.values() if title.startswith("✗")]
    return failed or None
