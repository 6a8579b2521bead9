"""The validator on real small-model output: raw SmolLM2-135M replies to spanlens' prompts for
click's utils.py (tests/fixtures/real_replies.json, collected by bench/collect_real_replies.py),
each judged against its span as the engine builds it (code, facts, class, file, index names),
alone and as an entry of a batch reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.sources import indexed_sources

from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.enrichment.reply.parse import extract_json
from spanlens_lsp.enrichment.reply.validate import validate_batch_reply, validate_reply

FIXTURE = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "real_replies.json").read_text(encoding="utf-8")
)
REPLIES: list[dict[str, Any]] = FIXTURE["replies"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SpanSource]:
    """Each span of the fixture's file by name, loaded by the engine as for a real call."""
    root = tmp_path_factory.mktemp("click")
    (root / "utils.py").write_text(FIXTURE["file_text"], encoding="utf-8")
    return {source.span.name: source for source in indexed_sources(root)}


def _ids(reply: dict[str, Any]) -> str:
    return reply["span"]


@pytest.mark.parametrize("reply", REPLIES, ids=[f"{i}-{_ids(r)}" for i, r in enumerate(REPLIES)])
def test_each_real_reply_gets_its_reviewed_verdict(
    reply: dict[str, Any], sources: dict[str, SpanSource]
) -> None:
    result = validate_reply(reply["reply"], sources[reply["span"]].validation_context())
    assert result.ok == reply["expected_ok"], result.errors
    assert sorted(result.errors) == sorted(reply["expected_errors"])


@pytest.mark.parametrize("reply", REPLIES, ids=[f"{i}-{_ids(r)}" for i, r in enumerate(REPLIES)])
def test_a_real_reply_gets_the_same_verdict_inside_a_batch(
    reply: dict[str, Any], sources: dict[str, SpanSource]
) -> None:
    found = extract_json(reply["reply"])
    if found is None or not isinstance(found[0], dict):
        assert not reply["expected_ok"]
        return
    ctx = sources[reply["span"]].validation_context()
    neighbour = next(s for name, s in sources.items() if name != reply["span"])
    batch = {"enrichments": [{"span_id": ctx.span_id, **found[0]}]}
    results = validate_batch_reply(json.dumps(batch), [ctx, neighbour.validation_context()])
    assert results[ctx.span_id].ok == reply["expected_ok"]
    assert sorted(results[ctx.span_id].errors) == sorted(reply["expected_errors"])


def _rejected_for(fragment: str) -> list[dict[str, Any]]:
    return [
        r
        for r in REPLIES
        if not r["expected_ok"] and any(fragment in e for e in r["expected_errors"])
    ]


def test_the_real_failure_shapes_are_in_the_fixtures_and_rejected() -> None:
    """The shapes issue 12 names, as SmolLM2 really wrote them."""
    invented = _rejected_for("exist nowhere")
    assert any("__cabal_safecall" in " ".join(r["expected_errors"]) for r in invented)
    assert _rejected_for("is not written 'name: meaning'")  # bare inputs ("self", "path")
    # Replies the old validator stored and this one rejects, each for a grounding reason.
    newly = [r for r in REPLIES if r["old_ok"] and not r["expected_ok"]]
    assert len(newly) >= 5
