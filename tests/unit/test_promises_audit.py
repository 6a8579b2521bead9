"""Tests for mutants that survived the section-5 mutation audit (issue 7): star parameters,
blank lines in hashes, equal names told apart by ordinal, lens titles, top-level lenses, and a
result that lands for identical code elsewhere."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from spanlens_lsp.enrichment.prompt.source import context_for
from spanlens_lsp.enrichment.reply.validate import validate_enrichment
from spanlens_lsp.indexing.hashing import content_hash
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.enrichments import enrichment_for


def test_inputs_may_name_star_parameters_without_their_stars() -> None:
    facts = {"params": [{"name": "path"}, {"name": "*args"}, {"name": "**kwargs"}]}
    code = "def run(path, *args, **kwargs):\n    return path"
    ctx = context_for(1, 1, 2, facts, code)
    data = {
        "summary": "Runs the tool on a path.",
        "inputs": ["path: where", "args: extra values", "kwargs: options"],
        "outputs": ["the path"],
        "side_effects": [],
        "pitfalls": [],
        "tags": [],
        "usage_snippet": None,
        "evidence": [{"field": "summary", "lines": [1, 2]}],
    }
    assert validate_enrichment(data, ctx).ok
    bad = {**data, "inputs": ["argv: not a parameter"]}
    assert not validate_enrichment(bad, ctx).ok


def test_blank_lines_and_trailing_spaces_do_not_change_a_hash() -> None:
    base = "def f(a):\n    b = a + 1\n    return b"
    assert content_hash(base) == content_hash("def f(a):\n\n    b = a + 1   \n\n\n    return b\n")
    assert content_hash(base) != content_hash("def f(a):\n        b = a + 1\n    return b")


def test_a_blank_line_inside_a_function_keeps_its_enrichment_key_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("def f(a):\n    b = a + 1\n    return b\n")
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        [before] = store.spans_in_file("m.py")
        path.write_text("def f(a):\n    b = a + 1\n\n    return b\n")
        os.utime(path, ns=(10**18, 10**18))
        summary = index_files(tmp_path, store, workers=1)
        [after] = store.spans_in_file("m.py")
    finally:
        store.close()
    assert (after.id, after.content_hash) == (before.id, before.content_hash)
    assert summary.spans_changed == 0 and summary.spans_unchanged == 1
    assert after.end_line == before.end_line + 1  # positions are rewritten


def test_equal_names_are_told_apart_by_ordinal(tmp_path: Path) -> None:
    path = tmp_path / "dup.py"
    path.write_text("def dup():\n    return 1\n\n\ndef dup():\n    return 2\n")
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        first, second = store.spans_in_file("dup.py")
        assert (first.ordinal, second.ordinal) == (0, 1) and first.id != second.id
        path.write_text("def dup():\n    return 1\n\n\ndef dup():\n    return 22\n")
        os.utime(path, ns=(10**18, 10**18))
        summary = index_files(tmp_path, store, workers=1)
        new_first, new_second = store.spans_in_file("dup.py")
    finally:
        store.close()
    assert (summary.spans_changed, summary.spans_unchanged, summary.spans_added) == (1, 1, 0)
    assert (new_first.id, new_first.content_hash) == (first.id, first.content_hash)
    assert new_second.id == second.id and new_second.content_hash != second.content_hash


def test_lens_titles_cut_the_summary_at_sixty_characters_and_count_pitfalls() -> None:
    from tests.unit.test_presentation import enrichment, span

    from spanlens_lsp.lsp.lenses import lens_title
    from spanlens_lsp.presentation.state import FRESH, STALE, SpanView

    long = "Parses every key=value line of the file into a dictionary, skipping comment lines."
    title = lens_title(SpanView(span(), FRESH, enrichment(summary=long, pitfalls=["a", "b"]), None))
    summary, pitfalls, model = title.split(" · ")
    assert len(summary) <= 60 and summary.endswith("…")
    assert long.startswith(summary[:-1].rstrip())
    assert pitfalls == "⚠ 2 pitfalls" and model == "qwen2.5-coder:7b"  # who wrote it
    one = lens_title(SpanView(span(), FRESH, enrichment(summary="Short.", pitfalls=["a"]), None))
    assert one == "Short. · ⚠ 1 pitfall · qwen2.5-coder:7b"
    none = lens_title(SpanView(span(), FRESH, enrichment(summary="Short."), None))
    assert none == "Short. · qwen2.5-coder:7b"
    stale = lens_title(SpanView(span(), STALE, enrichment(summary=long, pitfalls=["a"]), None))
    assert stale.startswith("↻ stale: Parses every") and "⚠" not in stale
    assert stale.endswith("… · qwen2.5-coder:7b")


def test_model_labels_are_short_and_clean() -> None:
    from tests.unit.test_presentation import enrichment, span

    from spanlens_lsp.lsp.lenses import lens_title
    from spanlens_lsp.presentation.state import FRESH, SpanView, model_label

    def label(model: object) -> str:
        return model_label({**enrichment(), "model": model})

    assert label("qwen2.5-coder:7b") == "qwen2.5-coder:7b"
    assert label("hf.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1") == (
        "SmolLM2-135M-Instruct-GGUF:Q4_1"
    )
    assert label("/models/SmolLM2-135M-Instruct.Q4_1.gguf") == "SmolLM2-135M-Instruct.Q4_1"
    assert label("openai/gpt-4o-mini") == "gpt-4o-mini"
    assert label("m\x1b[31model\u202e\n") == "model"
    long = label("x" * 500)
    assert len(long) == 32 and long.endswith("…")
    assert label("") == label(None) == model_label(None) == ""
    unnamed = {**enrichment(summary="Short."), "model": ""}
    assert lens_title(SpanView(span(), FRESH, unnamed, None)) == "Short."


def test_top_level_lenses_keep_spans_that_start_where_the_previous_ends() -> None:
    from dataclasses import replace

    from tests.unit.test_presentation import span

    from spanlens_lsp.lsp.lenses import top_level

    # `function a(){}function b(){}` on one line: b starts at the column where a ends.
    a = replace(span(), id=1, start_line=0, start_col=0, end_line=0, end_col=14)
    b = replace(span(), id=2, start_line=0, start_col=14, end_line=0, end_col=28)
    inner = replace(span(), id=3, start_line=0, start_col=16, end_line=0, end_col=20)
    assert [s.id for s in top_level([a, b, inner])] == [1, 2]


async def test_a_result_for_a_hash_still_used_elsewhere_is_discarded_for_the_changed_span(
    tmp_path: Path,
) -> None:
    from tests.support.replies import valid_responder
    from tests.support.standin import StandinModelServer
    from tests.unit.test_enrichment_engine import backend, make_settings, workspace

    from spanlens_lsp.app import open_engine

    same = "def twin(x):\n    return x * 2\n"
    workspace(tmp_path, {"a.py": same, "b.py": same})
    with StandinModelServer(responder=valid_responder, latency=0.3) as server:
        engine = open_engine(tmp_path, make_settings(backend(server.url)))
        try:
            [in_a] = engine.store.spans_in_file("a.py")
            task = asyncio.create_task(engine.enrich([in_a]))
            await asyncio.to_thread(server.wait_for_requests, 1)
            (tmp_path / "a.py").write_text("def twin(x):\n    return x * 3\n")
            workspace(tmp_path, {})  # re-index: a.py's twin has a new hash, b.py's has the old
            [outcome] = await task
        finally:
            await engine.aclose()
    assert outcome.status == "discarded"
    store = open_store(tmp_path)
    try:
        [in_b] = store.spans_in_file("b.py")
        [new_a] = store.spans_in_file("a.py")
        # The result is kept for b.py's identical code; a.py's changed span stays pending.
        assert enrichment_for(store, in_b.content_hash, ENRICHMENT_VERSION) is not None
        assert enrichment_for(store, new_a.content_hash, ENRICHMENT_VERSION) is None
    finally:
        store.close()
