"""Span embeddings in the index: keyed by span hash and model, reused by text, derived pending."""

from __future__ import annotations

from pathlib import Path

from spanlens_lsp.embedding.text import embedding_text, text_hash
from spanlens_lsp.settings import IndexSettings
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.embeddings import (
    embedded_text_hashes,
    embedding_counts,
    model_vectors,
    put_embeddings,
    unpack_vector,
    vector_for_text,
)
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.workspace.index import index_workspace


def _span(**facts: object) -> SpanRow:
    return SpanRow(
        1,
        "a.py",
        "python",
        "load_config",
        "function",
        0,
        0,
        0,
        3,
        0,
        0,
        4,
        0,
        15,
        "h1",
        dict(facts),
        None,
    )


def test_embedding_text_is_summary_name_signature_and_docstring_never_code() -> None:
    span = _span(signature="def load_config(path: str) -> dict", docstring="Read the TOML file.")
    text = embedding_text(span, "Reads settings from disk.")
    assert text.splitlines() == [
        "function load_config",
        "Reads settings from disk.",
        "def load_config(path: str) -> dict",
        "Read the TOML file.",
    ]
    # No summary yet: the parser's facts alone, and a different key, so a new summary re-embeds.
    assert "Reads settings" not in embedding_text(span, None)
    assert text_hash(text) != text_hash(embedding_text(span, None))


def test_vectors_are_stored_per_span_hash_and_model_and_found_by_text(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    return 1\n\ndef g():\n    return 2\n")
    store = open_store(tmp_path)
    try:
        index_workspace(store, tmp_path, IndexSettings())
        hashes = [s.content_hash for s in store.spans_in_file("a.py")]
        assert put_embeddings(store, "m", [(hashes[0], "t1", [0.6, 0.8])]) == 1
        assert embedded_text_hashes(store, "m") == {hashes[0]: "t1"}
        assert embedded_text_hashes(store, "other") == {}
        assert vector_for_text(store, "m", "t1") is not None
        vectors = model_vectors(store, "m")
        assert len(vectors) == 1
        assert [round(v, 5) for v in unpack_vector(vectors[0][2])] == [0.6, 0.8]
        # The same span hash re-embedded for a new text replaces its row.
        put_embeddings(store, "m", [(hashes[0], "t2", [1.0, 0.0])])
        assert embedded_text_hashes(store, "m") == {hashes[0]: "t2"}
        assert embedding_counts(store) == {"m": 1}
    finally:
        store.close()
