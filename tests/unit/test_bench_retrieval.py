"""The retrieval benchmark's corpus and scoring (bench/bench_retrieval.py, issue 19): the
committed queries are the corpus's docstrings, what is indexed has none of them, and the
scores count what they say."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_retrieval  # noqa: E402
from bench_retrieval import (  # noqa: E402
    QUERIES,
    all_spans,
    build_workspace,
    expected_ids,
    first_sentence,
    queries_from_docs,
    score,
    span_doc,
    strip_docs,
)
from spanlens_lsp.indexing.indexer import index_files  # noqa: E402
from spanlens_lsp.store.db import open_store  # noqa: E402


def test_the_committed_queries_are_the_corpus_docstrings() -> None:
    committed = json.loads(QUERIES.read_text(encoding="utf-8"))
    assert committed == queries_from_docs()
    assert len(committed) >= 60
    languages = {q["path"].split("/")[0] for q in committed}
    assert languages == {"python", "go", "typescript"}


def test_the_indexed_copy_has_no_docstring_and_every_expected_span(tmp_path: Path) -> None:
    build_workspace(tmp_path)
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        spans = all_spans(store)
    finally:
        store.close()
    assert [s.name for s in spans if span_doc(s)] == []
    queries = json.loads(QUERIES.read_text(encoding="utf-8"))
    assert len(set(expected_ids(spans, queries))) == len(queries)
    # the distractors are indexed too: more spans than queries
    assert len(spans) > 2 * len(queries)


def test_strip_docs_keeps_code_and_a_body_that_was_only_a_docstring() -> None:
    python = 'def f():\n    """Only a docstring."""\n\n\ndef g(x):\n    """Doc."""\n    return x\n'
    stripped = strip_docs(python, ".py")
    assert "docstring" not in stripped and "Doc." not in stripped
    assert "def f():\n    pass\n" in stripped and "return x" in stripped
    go = "// Load reads settings.\nfunc Load() {\n\treturn\n}\n"
    assert strip_docs(go, ".go") == "func Load() {\n\treturn\n}\n"
    ts = "/** Show bytes. */\nexport function f(): void {}\n/**\n * More.\n */\nclass K {}\n"
    assert strip_docs(ts, ".ts") == "export function f(): void {}\nclass K {}\n"


def test_a_query_is_the_first_sentence_without_a_go_comments_name() -> None:
    assert first_sentence("ParseDotEnv reads KEY=value lines. More.", "ParseDotEnv") == (
        "reads KEY=value lines"
    )
    assert first_sentence("Read ``path`` as\n JSON.", "load") == "Read path as JSON"


def test_recall_and_mrr_count_the_expected_span_in_the_first_ten() -> None:
    queries = [{"query": q} for q in ("a", "b", "c", "d")]
    ranked = {"a": [7, 1], "b": [2], "c": [*range(20, 40), 3], "d": []}
    scores = score(queries, [1, 2, 3, 4], lambda q: ranked[q])
    assert scores.found == 2
    assert scores.recall == pytest.approx(0.5)
    assert scores.mrr == pytest.approx((1 / 2 + 1) / 4)


def test_the_model_rows_stay_off_unless_opted_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bench_retrieval.OPT_IN, raising=False)
    result = bench_retrieval.run()
    assert set(result["rows"]) == {"names", "name_words_any", "fts", "keywords_hybrid"}
    assert "model" not in result
