"""Every enrichment the editor shows names the model that wrote it, from its stored row (not
the backend configured now): the lens title, the pitfall diagnostic and the hover, fresh and
stale. A tiny model's output is never mistaken for a bigger one's."""

from __future__ import annotations

from pathlib import Path

from tests.lsp.conftest import Editor, wait_for
from tests.support.standin import Reply, StandinModelServer

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments
from spanlens_lsp.store.db import open_store

PARSE_LINE = 12  # "def parse_config(text):"
LOAD_LINE = 3  # "    def load(self, path):"
TINY = "hf.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1"
TINY_LABEL = "SmolLM2-135M-Instruct-GGUF:Q4_1"  # the last part of the name
OTHER = "llama3.2:1b"
SUMMARY = "Parses key=value lines into a dict."
PITFALL = "A line without '=' raises ValueError."


def store_enrichments(root: Path) -> None:
    """parse_config written by the tiny model, every other span by another one."""
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        for span in store.spans_in_file("config.py", with_facts=False):
            tiny = span.name == "parse_config"
            data = {
                "summary": SUMMARY if tiny else f"Handles {span.name}.",
                "inputs": [],
                "outputs": [],
                "side_effects": [],
                "pitfalls": [PITFALL] if tiny else [],
                "tags": [],
                "usage_snippet": None,
                "evidence": [],
            }
            enrichments.put_enrichment(
                store, span.content_hash, ENRICHMENT_VERSION, data,
                model=TINY if tiny else OTHER, tier="small", backend="standin", host="127.0.0.1",
            )  # fmt: skip
    finally:
        store.close()


async def test_lens_diagnostic_and_hover_name_the_model_that_wrote_the_enrichment(
    editor: Editor, standin: StandinModelServer
) -> None:
    # The configured backend (qwen2.5-coder:7b) never answers: whatever is shown is stored.
    standin.responder = lambda request: Reply.error(500)
    store_enrichments(editor.root)
    await editor.start()
    uri = editor.open("config.py")

    titles = await wait_for(lambda: editor.lens_titles("config.py"), what="lens titles")
    assert titles[PARSE_LINE] == f"{SUMMARY} · ⚠ 1 pitfall · {TINY_LABEL}"
    assert titles[LOAD_LINE] == f"Handles Config.load. · {OTHER}"
    diagnostics = await wait_for(
        lambda: editor.client.diagnostics.get(uri), what="pitfall diagnostics"
    )
    assert [d.message for d in diagnostics] == [f"parse_config: {PITFALL} · {TINY_LABEL}"]
    assert [d.source for d in diagnostics] == ["spanlens"]
    hover = await editor.hover_text("config.py", PARSE_LINE)
    assert f"enriched by {TINY_LABEL} (small) on " in hover, hover
    assert "qwen2.5-coder" not in hover
    load = await editor.hover_text("config.py", LOAD_LINE + 1)
    assert f"enriched by {OTHER} (small) on " in load, load

    # The code changes: the previous summary is shown stale, still under its model's name.
    text = (editor.root / "config.py").read_text().replace("splitlines()", "splitlines() if text")
    editor.replace("config.py", text, 2)

    async def stale_title() -> str | None:
        title = (await editor.lens_titles("config.py")).get(PARSE_LINE, "")
        return title if title.startswith("↻") else None

    title = await wait_for(stale_title, what="the stale lens")
    assert title == f"↻ stale: {SUMMARY} · {TINY_LABEL}"
    hover = await editor.hover_text("config.py", PARSE_LINE)
    assert f"stale: code changed since this summary by {TINY_LABEL}; re-enriching" in hover
