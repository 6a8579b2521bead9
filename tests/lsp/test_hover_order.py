"""The hover's sections come in the order protocol.md ("Hover") and the README describe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.lsp.conftest import Editor, wait_for
from tests.support.replies import parse_request, valid_enrichment
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

PARSE_LINE = 12


def full_enrichment(span: dict[str, Any]) -> dict[str, Any]:
    """A valid enrichment with every section filled, side effects included."""
    return {**valid_enrichment(span), "side_effects": ["writes nothing, says the stand-in"]}


def full_responder(request: RecordedRequest) -> Reply:
    parsed = parse_request(request)
    if parsed is None:
        return Reply.error(400, {"error": "not a spanlens request"})
    spans = parsed["spans"]
    if parsed.get("mode") == "batch":
        entries = [{"span_id": s["span_id"], **full_enrichment(s)} for s in spans]
        return Reply.json({"enrichments": entries})
    return Reply.json(full_enrichment(spans[0]))


@pytest.fixture
def standin() -> Iterator[StandinModelServer]:
    """Overrides conftest's stand-in: every enrichment has every section."""
    with StandinModelServer(responder=full_responder, latency=0.05) as server:
        yield server


async def test_hover_sections_in_the_documented_order(editor: Editor) -> None:
    await editor.start()
    editor.open("config.py")

    async def enriched_hover() -> str | None:
        text = await editor.hover_text("config.py", PARSE_LINE)
        return text if "enriched by" in text else None

    hover = await wait_for(enriched_hover, what="the enriched hover")
    markers = [
        "```python\ndef parse_config(text)",  # the signature
        "Test enrichment for the function",  # the summary
        "**Inputs**",
        "**Outputs**",
        "**Side effects**",
        "**Pitfalls**\n- ⚠",
        "**Usage**\n```python",
        "Tags: test",
        "**Parser facts**",
        "enriched by",  # the state line
    ]
    positions = [hover.find(marker) for marker in markers]
    assert all(p >= 0 for p in positions), dict(zip(markers, positions, strict=True))
    assert positions == sorted(positions), dict(zip(markers, positions, strict=True))
    assert "enriched by" in hover.strip().splitlines()[-1]  # the last line
