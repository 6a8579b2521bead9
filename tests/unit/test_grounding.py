"""Grounding (issue 12): repeated list entries, runaway lists, paragraphs, invented names, a
summary about another span and bare inputs, each judged the same in single and batch replies;
invalid grounding drives retry and escalation and is named in the attempt's detail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import parse_request, valid_enrichment, valid_responder
from tests.support.standin import RecordedRequest, Reply, StandinModelServer
from tests.unit.test_enrichment_engine import attempts, backend, enrich, make_settings, workspace

from spanlens_lsp.enrichment.prompt.names import Names, WorkspaceNames, names_for_file
from spanlens_lsp.enrichment.prompt.schema import (
    ENRICHMENT_SCHEMA,
    LIST_CAPS,
    MAX_ITEM_CHARS,
    SpanBounds,
    bounded_schema,
)
from spanlens_lsp.enrichment.prompt.source import SpanContext, context_for
from spanlens_lsp.enrichment.reply.grounding import code_names
from spanlens_lsp.enrichment.reply.validate import Validated, validate_batch_reply, validate_reply
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.store.db import open_store

FILE = '''import os


class Cache:
    """Files cached on disk."""

    def load_entry(self, key, default=None):
        path = os.path.join(self.root, key)
        if not os.path.exists(path):
            return default
        with open(path) as handle:
            return handle.read()


def prune_cache(cache, limit):
    return sorted(cache.entries)[:limit]
'''
LINES = FILE.split("\n")
CODE = "\n".join(LINES[6:12])  # load_entry, file lines 7-12
FACTS: dict[str, Any] = {
    "params": [{"name": "key"}, {"name": "default"}],
    "calls": ["os.path.join", "os.path.exists", "open", "handle.read"],
    "raises": [],
    "decorators": [],
}
#: Names of the workspace index: this file's spans and a span of another file.
WORKSPACE = frozenset({"Cache", "load_entry", "prune_cache", "render_page"})
NAMES = names_for_file(FILE, ["Cache", "Cache.load_entry", "prune_cache"], WORKSPACE)
CTX = context_for(
    7,
    7,
    12,
    FACTS,
    CODE,
    name="Cache.load_entry",
    context="Enclosing class `Cache` (context, not the subject)",
    names=NAMES,
)
OTHER = context_for(
    8, 16, 17, {"params": [{"name": "cache"}, {"name": "limit"}]},
    "\n".join(LINES[15:17]), name="prune_cache", names=NAMES,
)  # fmt: skip


def good(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "summary": "Reads a cached entry from disk, or returns the default when it is missing.",
        "inputs": ["key: the entry's file name under the cache root", "default: the fallback"],
        "outputs": ["the file's text, or default"],
        "side_effects": ["reads a file"],
        "pitfalls": ["a key with '..' escapes the cache root."],
        "tags": ["cache", "io"],
        "usage_snippet": "cache.load_entry('a')",
        "evidence": [{"field": "summary", "lines": [7, 12]}],
    }
    data.update(changes)
    return data


def other_good() -> dict[str, Any]:
    return {
        **good(),
        "summary": "Returns the first entries of the cache.",
        "inputs": ["cache: the cache", "limit: how many"],
        "evidence": [],
    }


def judge(mode: str, data: dict[str, Any], ctx: SpanContext = CTX) -> Validated:
    """The verdict on ``data`` for ``ctx`` as a single reply, or as one entry of a batch whose
    other entry is valid (and stays valid)."""
    if mode == "single":
        return validate_reply(json.dumps(data), ctx)
    reply = {"enrichments": [{"span_id": ctx.span_id, **data}, {"span_id": 8, **other_good()}]}
    results = validate_batch_reply(json.dumps(reply), [ctx, OTHER])
    assert results[8].ok, results[8].errors
    return results[ctx.span_id]


MODES = pytest.mark.parametrize("mode", ["single", "batch"])


@MODES
def test_a_grounded_reply_is_valid_without_repairs(mode: str) -> None:
    result = judge(mode, good())
    assert result.ok, result.errors
    assert result.repairs == []


# ------------------------------------------------------------------ lists


@MODES
def test_repeated_entries_are_dropped_and_the_rest_stored(mode: str) -> None:
    same = "This can be used to access the cache from anywhere."
    pitfalls = [same] * 7 + ["Missing files return the default silently."] * 8
    pitfalls.insert(3, "  this can be used to ACCESS the cache, from anywhere!")  # folded
    pitfalls.insert(5, "This can be used to access the cache from anywhere at all.")  # near
    result = judge(mode, good(pitfalls=pitfalls, tags=["cache", "Cache", "io"]))
    assert result.ok, result.errors
    assert result.data is not None
    assert result.data["pitfalls"] == [same, "Missing files return the default silently."]
    assert result.data["tags"] == ["cache", "io"]
    assert "pitfalls: 15 repeated entries dropped" in result.repairs


def test_short_entries_that_differ_in_one_word_are_both_kept() -> None:
    result = judge("single", good(outputs=["the text", "the default"]))
    assert result.ok and result.data is not None
    assert result.data["outputs"] == ["the text", "the default"]


@MODES
@pytest.mark.parametrize("key", ["pitfalls", "side_effects", "outputs", "tags"])
def test_a_list_over_its_cap_is_invalid(mode: str, key: str) -> None:
    cap = LIST_CAPS[key]
    assert cap <= 8  # a handful: 15 pitfalls is a runaway list, not a thorough one
    items = [f"tag{i}" if key == "tags" else f"Case {i} fails differently." for i in range(cap)]
    assert judge(mode, good(**{key: items})).ok
    result = judge(mode, good(**{key: [*items, "oneword" if key == "tags" else "One more."]}))
    assert not result.ok
    assert f"{key} has {cap + 1} entries (at most {cap})" in result.errors


def test_the_caps_are_the_schema_s_and_bound_every_schema_sent() -> None:
    for key, cap in LIST_CAPS.items():
        assert ENRICHMENT_SCHEMA["properties"][key]["maxItems"] == cap
    schema, _ = bounded_schema([SpanBounds(7, None, 7, 12)])
    for key in ("outputs", "side_effects", "pitfalls", "tags"):
        assert schema["properties"][key]["maxItems"] <= LIST_CAPS[key]
        item_limit = schema["properties"][key]["items"]["maxLength"]
        assert item_limit <= ENRICHMENT_SCHEMA["properties"][key]["items"]["maxLength"]


@MODES
@pytest.mark.parametrize(
    "entry, why",
    [
        ("It reads. It may fail. It caches. It returns.", "has 4 sentences (at most 2)"),
        ("Reads the file\nthen returns it.", "spans several lines"),
        ("a" * (MAX_ITEM_CHARS + 1), f"{MAX_ITEM_CHARS + 1} characters (at most"),
    ],
)
def test_a_paragraph_is_no_list_entry(mode: str, entry: str, why: str) -> None:
    result = judge(mode, good(pitfalls=[entry]))
    assert not result.ok
    assert any(why in error for error in result.errors), result.errors


def test_two_sentences_and_dotted_names_are_one_entry() -> None:
    entry = "Calls `os.path.exists` first. A race with deletion returns the default, e.g. here."
    assert judge("single", good(pitfalls=[entry])).ok


# ------------------------------------------------------------------ names


@MODES
@pytest.mark.parametrize(
    "summary, invented",
    [
        ("The `__cabel_load_entry` function reads an entry.", "__cabel_load_entry"),
        ("Reads an entry through fetch_blob() and returns it.", "fetch_blob"),
        ("Reads an entry; the read_blob_safely method does the work.", "read_blob_safely"),
        ("Reads an entry via `self.__getattr` lookups.", "self.__getattr"),
        ("The LazyBlobStore class reads entries.", "LazyBlobStore"),
        ("The `echo` function in the `str.print()` method.", "str.print"),
        ("The `load_entry, __getattr, open` methods read.", "__getattr"),
    ],
)
def test_an_invented_name_is_invalid_and_named(mode: str, summary: str, invented: str) -> None:
    result = judge(mode, good(summary=summary))
    assert not result.ok
    assert any(invented in e and "exist nowhere" in e for e in result.errors), result.errors


@MODES
def test_invented_names_in_list_entries_are_caught_too(mode: str) -> None:
    result = judge(mode, good(pitfalls=["`_cache_lock` is never taken."]))
    assert not result.ok and "_cache_lock" in result.describe()


@MODES
@pytest.mark.parametrize(
    "summary",
    [
        "Calls `os.path.join` and `open()` to read the `key` entry.",  # code, facts, builtin
        "The `load_entry` method of `Cache` returns `default` when `path` is missing.",
        "Reads what `prune_cache` later trims, via `handle.read()`.",  # file names
        "Works like `render_page` in another module, with `os.fspath` rules.",  # index, stdlib
        "The main function of the cache: a helper method for the Cache class.",  # English
        "Returns `None` or a `str`, the file(s) text; see `json.loads` for parsing.",
        "Joins parts with `str.join` and checks `dict.get`, on `self.root`.",
        # Issue 16: a real model's NoneType was rejected as invented (a retry of minutes).
        "Returns `NoneType` on a miss, else an `Optional` entry or an `Iterator` of parts.",
    ],
)
def test_names_from_the_code_facts_file_index_and_python_are_grounded(
    mode: str, summary: str
) -> None:
    result = judge(mode, good(summary=summary))
    assert result.ok, result.errors


def test_the_file_the_prompt_names_is_grounded_and_other_files_are_not() -> None:
    # Seen: "The `Inventory` class in the `inventory.py` module counts items" rejected as
    # naming a thing that exists nowhere, though the prompt shows the span's path.
    summary = "The `load_entry` method in the `cache/disk.py` module, `disk.py`, reads an entry."
    assert not validate_reply(json.dumps(good(summary=summary)), CTX).ok
    ctx = context_for(
        7, 7, 12, FACTS, CODE, name="Cache.load_entry", names=NAMES, path="cache/disk.py"
    )
    assert validate_reply(json.dumps(good(summary=summary)), ctx).ok
    invented = good(summary="The `load_entry` method, like `remote.py`, reads an entry.")
    assert not validate_reply(json.dumps(invented), ctx).ok


@MODES
@pytest.mark.parametrize(
    "subject", ["`prune_cache`", "The `prune_cache` function", "prune_cache()"]
)
def test_a_summary_about_another_span_is_invalid(mode: str, subject: str) -> None:
    result = judge(mode, good(summary=f"{subject} returns the first entries of a cache."))
    assert not result.ok
    assert "summary is about prune_cache, not Cache.load_entry" in result.errors


@MODES
@pytest.mark.parametrize(
    "summary",
    [
        "The `load_entry` method reads an entry; unlike `prune_cache` it never trims.",
        "`Cache.load_entry` reads one entry.",
        "`self.load_entry()` reads one entry, which `prune_cache` may drop.",
    ],
)
def test_a_summary_about_its_own_span_may_mention_others(mode: str, summary: str) -> None:
    assert judge(mode, good(summary=summary)).ok


def test_code_names_reads_backticks_calls_and_roles_not_english() -> None:
    text = "The `a.b` value, the run_all() call (s), the Helper class, the main function(s)."
    assert code_names(text) == ["a.b", "run_all"]
    assert code_names("The FooBar class and the foo_bar method.") == ["FooBar", "foo_bar"]


# ------------------------------------------------------------------ inputs


@MODES
@pytest.mark.parametrize(
    "entry, why",
    [
        ("key", "is not written 'name: meaning'"),
        ("key:", "has no meaning"),
        ("key: ...", "has no meaning"),
        ("key: TODO", "is a placeholder"),
        ("key: `key`", "only repeats the name"),
        ("function: the callback", "names no parameter"),
        # Runs 13 to 15: "path: string", "key: string" for typed parameters.
        ("key: string", "gives only a type"),
        ("key: `str | None`", "gives only a type"),
        ("key: Dict[str, int]", "gives only a type"),
    ],
)
def test_an_input_needs_a_parameter_and_a_meaning(mode: str, entry: str, why: str) -> None:
    result = judge(mode, good(inputs=[entry, "default: the fallback"]))
    assert not result.ok
    assert any(why in error for error in result.errors), result.errors


@MODES
def test_inputs_in_name_meaning_form_pass(mode: str) -> None:
    entries = ["`key` (str): the entry's name", "default: what a miss returns", "self: the cache"]
    assert judge(mode, good(inputs=entries)).ok
    entries = ["key: the string to look up", "default: a string list of fallbacks"]
    assert judge(mode, good(inputs=entries)).ok


@MODES
def test_one_parameter_described_twice_is_invalid(mode: str) -> None:
    result = judge(mode, good(inputs=["key: the name", "key: the file under the root"]))
    assert "input key is described twice" in result.errors


@MODES
def test_inputs_that_are_all_none_say_nothing_about_real_parameters(mode: str) -> None:
    result = judge(mode, good(inputs=["None", "n/a"]))
    assert not result.ok
    assert "inputs leave out parameters: key, default" in result.errors


def test_without_file_names_a_file_level_name_is_not_known() -> None:
    bare = context_for(7, 7, 12, FACTS, CODE, name="Cache.load_entry", names=Names())
    assert not judge("single", good(summary="Reads what `prune_cache` trims."), bare).ok


# ------------------------------------------------------------------ through the engine

GROUNDED_FILE = """
def scale(values, factor):
    return [v * factor for v in values]
"""


def invented_name_reply(request: RecordedRequest) -> Reply:
    parsed = parse_request(request)
    assert parsed is not None
    data = valid_enrichment(parsed["spans"][0])
    data["summary"] = "The `__cabel_scale` function multiplies values."
    return Reply.json(data)


async def test_invented_names_are_retried_escalated_and_named_in_the_attempt(
    tmp_path: Path,
) -> None:
    workspace(tmp_path, {"m.py": GROUNDED_FILE})
    with StandinModelServer() as small, StandinModelServer() as large:
        small.responder = invented_name_reply
        large.responder = valid_responder
        settings = make_settings(
            backend(small.url, "small-box"), backend(large.url, "large-box", tier="large")
        )
        [outcome] = await enrich(tmp_path, settings, "scale")
        assert len(small.chat_requests) == 2  # retried once, then escalated
    assert outcome.status == "enriched"
    rows = attempts(tmp_path)
    assert [(r["backend"], r["outcome"]) for r in rows] == [
        ("small-box", "failed"),
        ("small-box", "failed"),
        ("large-box", "ok"),
    ]
    assert rows[0]["failure_type"] == "invalid output"
    assert "__cabel_scale" in rows[0]["detail"]


def test_invented_names_lead_the_detail_even_among_many_errors() -> None:
    data = good(
        summary="The `__cabel_load` function reads.",
        inputs=["key", "default", "other: x"],
        evidence=[{"field": "summary", "lines": [1, 2]}],
    )
    result = judge("single", data)
    assert "__cabel_load" in result.describe()


def test_the_workspace_names_are_every_indexed_span_name(tmp_path: Path) -> None:
    (tmp_path / "cache.py").write_text("class Cache:\n    def load_entry(self):\n        pass\n")
    (tmp_path / "pages.py").write_text("def render_page():\n    pass\n")
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        names = WorkspaceNames().get(store)
    finally:
        store.close()
    assert {"Cache", "Cache.load_entry", "load_entry", "render_page"} <= names


@MODES
def test_a_placeholder_tag_is_dropped_and_the_rest_stored(mode: str) -> None:
    # Written as compact JSON, Qwen2.5-Coder-1.5B put "description" between two real tags in
    # a third of its replies, each rejected and asked again (a retry of ten seconds).
    result = judge(mode, good(tags=["http", "description", "error", "N/A"]))
    assert result.ok, result.errors
    assert result.data is not None and result.data["tags"] == ["http", "error"]
    assert "tags: placeholder tags dropped" in result.repairs


@MODES
def test_a_tag_with_a_bidi_character_still_rejects_the_reply(mode: str) -> None:
    result = judge(mode, good(tags=["http", "evil\u202etxt"]))
    assert not result.ok and "control or bidi" in result.describe()
