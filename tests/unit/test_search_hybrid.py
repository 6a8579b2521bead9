"""Hybrid search over a real index: names, keywords and meaning, with what is missing said.

The query embeddings come from a stand-in embedder (hashed bag of word stems,
tests/support/embedder.py); the index, the vector matrix and the ranking are the real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.embedder import BagOfWordsEmbedder, BagResult, bag_vector

from spanlens_lsp.embedding.text import embedding_text, text_hash
from spanlens_lsp.search.hybrid import rank
from spanlens_lsp.search.names import name_matches
from spanlens_lsp.search.query import NO_ENDPOINT_NOTE, search_workspace
from spanlens_lsp.search.vectors import vector_index
from spanlens_lsp.settings import IndexSettings, Settings
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.embeddings import put_embeddings
from spanlens_lsp.store.handle import Store
from spanlens_lsp.workspace.index import index_workspace

MODEL = "bag-of-words"
SOURCE = '''\
def load_config(path):
    """Read settings from disk and return them."""
    return open(path).read()


def render_page(template):
    """Turn a template into HTML."""
    return template


def parse_args(argv):
    """Split the command line into options."""
    return argv
'''
MEANING_QUERY = "read the stored settings on disk"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    (tmp_path / "app.py").write_text(SOURCE)
    opened = open_store(tmp_path)
    index_workspace(opened, tmp_path, IndexSettings())
    try:
        yield opened
    finally:
        opened.close()


def embed_spans(store: Store, names: set[str] | None = None) -> None:
    """Store the stand-in's vector of each span (of ``names`` only, when given)."""
    rows = []
    for span in store.spans_in_file("app.py"):
        if names is None or span.name in names:
            text = embedding_text(span, None)
            rows.append((span.content_hash, text_hash(text), bag_vector(text)))
    put_embeddings(store, MODEL, rows)


def test_meaning_finds_what_no_keyword_matches(store: Store) -> None:
    embed_spans(store)
    assert rank(store, MEANING_QUERY).hits == []  # no name or summary holds these words
    result = rank(store, MEANING_QUERY, query_vector=bag_vector(MEANING_QUERY), model=MODEL)
    assert result.meaning and result.note is None
    first = result.hits[0]
    assert first.span.name == "load_config" and first.why == ("meaning",)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_a_hit_found_by_every_list_says_so_and_ranks_first(store: Store) -> None:
    embed_spans(store)
    result = rank(store, "load config", query_vector=bag_vector("load config"), model=MODEL)
    first = result.hits[0]
    assert first.span.name == "load_config"
    assert first.why == ("name", "keywords", "meaning")
    assert first.as_json()["line"] == 1 and first.as_json()["why"] == list(first.why)


def test_spans_without_an_embedding_are_found_by_keywords_and_counted(store: Store) -> None:
    embed_spans(store, {"load_config", "render_page"})
    result = rank(store, "parse args", query_vector=bag_vector("parse args"), model=MODEL)
    assert result.note == "1 of 3 spans have no embedding yet: found by keywords alone"
    parse = next(h for h in result.hits if h.span.name == "parse_args")
    assert "meaning" not in parse.why and parse.why == ("name", "keywords")
    # The count follows the index: every span embedded, then one span's code changed.
    embed_spans(store, {"parse_args"})
    assert rank(store, "parse", query_vector=bag_vector("parse"), model=MODEL).note is None
    source = store.path.parent.parent / "app.py"
    source.write_text(SOURCE.replace("return argv", "return list(argv)"))
    index_workspace(store, source.parent, IndexSettings())
    result = rank(store, "parse", query_vector=bag_vector("parse"), model=MODEL)
    assert result.note == "1 of 3 spans have no embedding yet: found by keywords alone"


def test_the_vector_index_follows_added_replaced_and_deleted_vectors(store: Store) -> None:
    spans = {s.name: s.content_hash for s in store.spans_in_file("app.py")}
    render, load, parse = spans["render_page"], spans["load_config"], spans["parse_args"]
    embed_spans(store, {"render_page"})
    assert vector_index(store, MODEL).hashes == [render]
    embed_spans(store, {"load_config"})
    assert vector_index(store, MODEL).hashes == [render, load]  # read incrementally
    # A replaced vector is used.
    put_embeddings(store, MODEL, [(load, "t", bag_vector("parse options"))])
    query = bag_vector("parse options")
    nearest = vector_index(store, MODEL).nearest(query, 1)
    assert nearest[0][0] == load and nearest[0][1] == pytest.approx(1.0)

    def delete(content_hash: str) -> None:  # nothing deletes vectors yet; a clean-up will
        store.conn.execute("DELETE FROM embeddings WHERE content_hash = ?", (content_hash,))

    # An old row deleted and a new one added between two searches: as many rows as before.
    delete(render)
    embed_spans(store, {"parse_args"})
    assert sorted(vector_index(store, MODEL).hashes) == sorted([load, parse])
    # The newest row deleted and another added: SQLite gives the new row the freed rowid.
    delete(parse)
    embed_spans(store, {"render_page"})
    assert sorted(vector_index(store, MODEL).hashes) == sorted([load, render])
    assert vector_index(store, MODEL).nearest(query, 5)[0][0] == load


def test_a_query_vector_of_another_length_answers_by_keywords(store: Store) -> None:
    embed_spans(store)
    result = rank(store, "load config", query_vector=[1.0, 0.0], model=MODEL)
    assert not result.meaning
    assert result.note == "the query embedding has 2 dimensions, the stored ones 64: keywords only"
    assert result.hits[0].span.name == "load_config"


def test_search_without_an_endpoint_says_keywords_only(store: Store) -> None:
    result = asyncio.run(search_workspace(store, Settings(), "load config", 10))
    assert result.note == NO_ENDPOINT_NOTE and not result.meaning
    assert result.hits[0].span.name == "load_config"


def test_search_embeds_the_query_and_uses_meaning(store: Store) -> None:
    embed_spans(store)
    embedder = BagOfWordsEmbedder(MODEL)
    result = asyncio.run(
        search_workspace(store, Settings(), MEANING_QUERY, 10, embedders=[embedder])
    )
    assert embedder.calls == [[MEANING_QUERY]]
    assert result.meaning and result.hits[0].span.name == "load_config"


def test_a_failed_or_slow_query_embedding_answers_by_keywords_with_a_note(store: Store) -> None:
    embed_spans(store)
    failing = BagOfWordsEmbedder(MODEL)
    failing.fail = "HTTP 500 from 127.0.0.1:1\x1b[2J\n"
    result = asyncio.run(
        search_workspace(store, Settings(), "load config", 10, embedders=[failing])
    )
    assert not result.meaning and result.hits[0].span.name == "load_config"
    assert result.note == (
        "embedding the query with bag-of-words failed: HTTP 500 from 127.0.0.1:1: keywords only"
    )
    slow = BagOfWordsEmbedder(MODEL, delay=5.0)
    result = asyncio.run(
        search_workspace(store, Settings(), "load config", 10, embedders=[slow], timeout=0.1)
    )
    assert result.note == "embedding the query with bag-of-words took over 0.1 s: keywords only"
    assert result.hits[0].span.name == "load_config"


def test_no_stored_vectors_of_the_model_means_no_embedding_call(store: Store) -> None:
    embedder = BagOfWordsEmbedder("other-model")
    result = asyncio.run(
        search_workspace(store, Settings(), "load config", 10, embedders=[embedder])
    )
    assert embedder.calls == []
    assert result.note == "no span has an embedding from other-model yet: keywords only"


def test_the_vector_index_sees_vectors_another_connection_wrote(store: Store) -> None:
    reader = open_store(store.path.parent.parent)
    try:
        embed_spans(store, {"render_page"})
        assert len(vector_index(reader, MODEL)) == 1
        assert len(vector_index(reader, MODEL)) == 1  # nothing written: nothing read
        embed_spans(store, {"load_config"})  # the indexer's connection, say
        assert len(vector_index(reader, MODEL)) == 2
    finally:
        reader.close()


def test_name_matches_rank_exact_then_prefix_then_word_starts(store: Store) -> None:
    assert [s.name for s in name_matches(store, "pa", 5)] == ["parse_args", "render_page"]
    assert [s.name for s in name_matches(store, "Page", 5)] == ["render_page"]
    assert [s.name for s in name_matches(store, "loadConfig", 5)] == ["load_config"]
    assert [s.name for s in name_matches(store, "config load", 5)] == ["load_config"]  # any order
    assert name_matches(store, "html", 5) == []  # a docstring word is no name


class _BrokenEmbedder(BagOfWordsEmbedder):
    async def embed(self, texts: list[str]) -> BagResult:
        raise KeyError("a bug in an endpoint")


def test_an_endpoint_bug_is_logged_and_the_search_still_answers(store: Store) -> None:
    embed_spans(store)
    result = asyncio.run(
        search_workspace(store, Settings(), "load config", 10, embedders=[_BrokenEmbedder(MODEL)])
    )
    assert result.note == "embedding the query with bag-of-words failed: KeyError: keywords only"
    assert result.hits[0].span.name == "load_config"


def test_a_new_connection_sees_vectors_written_while_none_was_open(store: Store) -> None:
    # A command's connection, closed, then a new one: Python may give the new connection the
    # closed one's id, and its counters start again.
    root = store.path.parent.parent
    for count, names in enumerate(({"render_page"}, {"load_config"}, {"parse_args"})):
        reader = open_store(root)
        assert len(vector_index(reader, MODEL)) == count
        reader.close()
        del reader
        embed_spans(store, names)  # another process, say (`spanlens embed`)
    reader = open_store(root)
    try:
        assert len(vector_index(reader, MODEL)) == 3
    finally:
        reader.close()


def test_a_sentence_finds_spans_by_any_of_its_words_when_there_is_no_meaning(
    store: Store,
) -> None:
    # No span has every word of the sentence: today's keyword search finds nothing, but the
    # span whose name has some of its words (cut to five characters: "options" -> "optio")
    # comes first, found by keywords.
    result = rank(store, "split the arguments into parsed options")
    assert [hit.span.name for hit in result.hits][:1] == ["parse_args"], result
    assert result.hits[0].why == ("keywords",)
    # Stop words and short words alone find nothing.
    assert rank(store, "the of to a").hits == []


def test_with_meaning_loose_word_matches_do_not_outvote_it(store: Store) -> None:
    embed_spans(store)
    query = "render the disk settings"
    result = rank(store, query, query_vector=bag_vector(query), model=MODEL, limit=3)
    # "render" alone names render_page, but the sentence means load_config, and only spans
    # with every word (none here) join the keyword list beside meaning.
    assert all("keywords" not in hit.why for hit in result.hits), result
