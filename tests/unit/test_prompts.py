"""Prompts for real models, asserted on what the stand-in server receives (issue 16): ordered
stable-first, so two spans of one file share their prompt up to the span; nothing the code
shows is said again; llama.cpp's slot and prompt cache asked for only from llama.cpp; the reply
bound sized to the span; a method asked about itself with its class as context; and the
methods of one class never batched together."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.replies import request_span_ids, valid_responder
from tests.support.sources import indexed_sources
from tests.support.standin import RecordedRequest, StandinModelServer
from tests.unit.test_enrichment_engine import (
    backend,
    enrich,
    make_settings,
    spans_named,
    workspace,
)

from spanlens_lsp.app import open_engine
from spanlens_lsp.enrichment.backends.slots import SlotAffinity
from spanlens_lsp.enrichment.planning.batching import BatchCandidate, plan_batches
from spanlens_lsp.enrichment.prompt.build import SYSTEM_PROMPT, build_prompt
from spanlens_lsp.enrichment.prompt.schema import SUMMARY_CHARS_PER_WORD, reply_token_bound
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.settings import EnrichmentSettings
from spanlens_lsp.store.db import open_store

STORE_FILE = '''
import os


class Store:
    """Keeps values on disk, one file a key."""

    def __init__(self, root):
        self.root = root

    def path(self, key):
        return os.path.join(self.root, key)

    def read(self, key):
        """Read one value."""
        with open(self.path(key)) as handle:
            return handle.read()


def add(a, b=1):
    """Add two numbers."""
    return a + b


def neg(x):
    return -x
'''


def _openai(url: str, **extra: Any) -> dict[str, Any]:
    return backend(url, provider="openai", model="qwen2.5-coder:7b", **extra)


def _text(request: RecordedRequest) -> str:
    return "\n".join(str(m["content"]) for m in request.messages)


def _shared_prefix(a: str, b: str) -> str:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return a[:index]
    return a[: min(len(a), len(b))]


def _sources(root: Path) -> dict[str, SpanSource]:
    return {source.span.name: source for source in indexed_sources(root)}


async def test_two_spans_of_one_file_share_the_prompt_up_to_the_span(tmp_path: Path) -> None:
    workspace(tmp_path, {"store.py": STORE_FILE})
    with StandinModelServer(responder=valid_responder, engine="llama.cpp", n_ctx=16384) as server:
        settings = make_settings(_openai(server.url))
        for name in ("add", "neg", "Store.path", "Store.read"):
            outcomes = await enrich(tmp_path, settings, name)
            assert outcomes[0].status == "enriched"
        add, neg, path, read = (_text(r) for r in server.chat_requests)
    # Everything before the span's own code is the same: instructions, file, imports.
    shared = _shared_prefix(add, neg)
    assert add.startswith(SYSTEM_PROMPT)
    assert add.index("Code of span") <= len(shared)
    assert "Module imports:\nimport os" in shared
    # Two methods of one class share the class's context as well.
    shared_methods = _shared_prefix(path, read)
    assert "Enclosing class `Store` (context, not the subject)" in shared_methods
    assert path.index("Code of span") <= len(shared_methods)


def test_what_the_code_shows_is_not_said_twice(tmp_path: Path) -> None:
    workspace(tmp_path, {"store.py": STORE_FILE})
    prompt = build_prompt([_sources(tmp_path)["add"]], 4096)
    text = "\n".join(m["content"] for m in prompt.messages)
    assert text.count("Add two numbers.") == 1  # the docstring, in the code shown
    assert text.count("def add(a, b=1)") == 1  # the signature, in the code shown
    assert '"facts"' not in text and '"signature"' not in text and '"docstring"' not in text


def test_a_method_is_the_subject_and_its_class_the_context(tmp_path: Path) -> None:
    workspace(tmp_path, {"store.py": STORE_FILE})
    prompt = build_prompt([_sources(tmp_path)["Store.read"]], 4096)
    user = prompt.messages[-1]["content"]
    context = user.index("Enclosing class `Store` (context, not the subject)")
    code = user.index("Code of span")
    subject = user.index("Describe the method `Store.read`")
    assert context < code < subject
    assert "Keeps values on disk" in user[context:code]  # the class's doc, as context
    assert "The subject is the method `read` itself" in user[subject:]
    assert user.count("Read one value.") == 1


def _function(name: str, lines: int) -> list[str]:
    body = [f"    step_{i} = value * {i}" for i in range(lines - 2)]
    return [f"def {name}(value):", *body, "    return value"]


def _source_of(root: Path, name: str, lines: int) -> SpanSource:
    workspace(root, {"store.py": "\n".join(_function(name, lines)) + "\n"})
    source = _sources(root)[name]
    assert len(source.lines) == lines
    return source


def test_the_reply_bound_is_sized_to_the_span(tmp_path: Path) -> None:
    tiny = build_prompt([_source_of(tmp_path / "a", "getter", 3)], 8192)
    large = build_prompt([_source_of(tmp_path / "b", "process", 60)], 8192)
    assert tiny.max_tokens < 0.7 * large.max_tokens
    small_props, large_props = tiny.schema["properties"], large.schema["properties"]
    for key in ("outputs", "side_effects", "pitfalls"):
        assert small_props[key]["maxItems"] < large_props[key]["maxItems"]
    # The word count asked for fits the summary's bound with room to spare: a reply that
    # keeps to it is never cut at maxLength.
    for prompt in (tiny, large):
        words = int(prompt.messages[-1]["content"].split("a summary of at most ")[1].split()[0])
        assert words * SUMMARY_CHARS_PER_WORD <= prompt.schema["properties"]["summary"]["maxLength"]
        assert prompt.max_tokens == reply_token_bound(prompt.schema)


def test_a_full_correct_reply_for_a_tiny_span_fits_its_bound(tmp_path: Path) -> None:
    """Sizing must not cut a correct reply (a cut one is asked again: a loop of paid calls)."""
    prompt = build_prompt([_source_of(tmp_path, "getter", 3)], 8192)
    reply = {
        "summary": "Computes a scaled copy of `value` step by step and returns `value` "
        "unchanged; the intermediate products are discarded, so calling it has no "
        "effect beyond returning its argument.",
        "inputs": ["value: the number the function scales and hands back to the caller"],
        "outputs": ["the `value` it was given, unchanged"],
        "side_effects": [],
        "pitfalls": ["the computed product is thrown away, which looks like a bug"],
        "tags": ["arithmetic", "identity"],
        "usage_snippet": "getter(3)",
    }
    # Local tokenizers average 3.5-4.5 characters a token on such text; 3 is the worst case.
    assert len(json.dumps(reply)) / 3 < prompt.max_tokens


async def test_llama_cpp_alone_gets_one_slot_per_file_and_the_prompt_cache(
    tmp_path: Path,
) -> None:
    workspace(tmp_path, {"store.py": STORE_FILE, "other.py": "def one():\n    return 1\n"})
    with StandinModelServer(
        responder=valid_responder, engine="llama.cpp", n_ctx=8192, slots=2
    ) as server:
        engine = open_engine(tmp_path, make_settings(_openai(server.url)))
        try:
            for name in ("add", "neg", "one"):
                outcomes = await engine.enrich(spans_named(engine.store, name))
                assert outcomes[0].status == "enriched"
        finally:
            await engine.aclose()
        chats = [r.json for r in server.chat_requests]
    assert all(c["cache_prompt"] is True for c in chats)
    add, neg, one = (c["id_slot"] for c in chats)
    assert add == neg  # one file, one slot: the second reuses the first's cached prefix
    assert one != add and one in (0, 1)


async def test_other_openai_servers_get_no_llama_cpp_fields(tmp_path: Path) -> None:
    workspace(tmp_path, {"store.py": STORE_FILE})
    chats: list[dict[str, Any]] = []
    for engine, strict in (("llama-cpp-python", False), (None, True)):
        with StandinModelServer(
            responder=valid_responder, engine=engine, reject_unknown_fields=strict
        ) as server:
            settings = make_settings(_openai(server.url))
            outcomes = await enrich(tmp_path, settings, "add" if engine else "neg")
            assert outcomes[0].status == "enriched"
            chats += [r.json for r in server.chat_requests]
    assert len(chats) == 2
    assert not any("id_slot" in c or "cache_prompt" in c for c in chats)


async def test_methods_of_one_class_are_never_batched_together(tmp_path: Path) -> None:
    workspace(tmp_path, {"store.py": STORE_FILE})
    with StandinModelServer(responder=valid_responder, engine="llama.cpp", n_ctx=16384) as server:
        settings = make_settings(_openai(server.url), batch=True)
        names = ("Store.__init__", "Store.path", "Store.read", "add", "neg")
        outcomes = await enrich(tmp_path, settings, *names)
        asked = [request_span_ids(r) for r in server.chat_requests]
    assert [o.status for o in outcomes] == ["enriched"] * 5
    store = open_store(tmp_path)
    try:
        ids = {span.id: span.name for span in spans_named(store, *names)}
    finally:
        store.close()
    method_ids = {i for i, name in ids.items() if name.startswith("Store.")}
    assert all(len(set(call) & method_ids) <= 1 for call in asked)
    assert any(len(call) == 2 for call in asked)  # the two tiny functions still share a call


def test_the_batch_plan_keeps_methods_classes_and_long_functions_single(tmp_path: Path) -> None:
    workspace(tmp_path, {"store.py": STORE_FILE})
    sources = _sources(tmp_path)
    candidates = [BatchCandidate(source, "small") for source in sources.values()]
    batches, singles = plan_batches(candidates, EnrichmentSettings())
    assert [[c.source.span.name for c in batch] for batch in batches] == [["add", "neg"]]
    assert {c.source.span.name for c in singles} == {
        "Store",
        "Store.__init__",
        "Store.path",
        "Store.read",
    }
    long = _source_of(tmp_path / "long", "process", 30)
    short = _source_of(tmp_path / "short", "getter", 3)
    batches, _ = plan_batches(
        [BatchCandidate(long, "small"), BatchCandidate(short, "small")], EnrichmentSettings()
    )
    assert batches == []


def test_a_file_keeps_its_slot_and_a_new_file_takes_the_least_recently_used() -> None:
    affinity = SlotAffinity()
    a = affinity.acquire("a.py", 2)
    b = affinity.acquire("b.py", 2)  # a.py's call still runs: another slot
    assert a != b
    affinity.release(a)
    affinity.release(b)
    assert affinity.acquire("a.py", 2) == a
    affinity.release(a)
    c = affinity.acquire("c.py", 2)  # b.py's slot was used least recently
    assert c == b
    affinity.release(c)
    assert affinity.acquire("a.py", 2) == a  # a.py kept its slot
    assert affinity.acquire("b.py", 2) != a  # b.py lost its slot to c.py


def test_a_go_method_is_the_subject_and_its_receiver_type_the_owner(tmp_path: Path) -> None:
    go = "package store\n\ntype Store struct {\n\troot string\n}\n\n"
    go += "// Root is where values live.\nfunc (s *Store) Root() string {\n\treturn s.root\n}\n"
    workspace(tmp_path, {"store.go": go})
    sources = _sources(tmp_path)
    [name] = [n for n in sources if n.endswith("Root")]
    user = build_prompt([sources[name]], 4096).messages[-1]["content"]
    assert f"Describe the method `{name}`" in user
    assert "The subject is the method `Root` itself" in user
    assert "not what its type `Store` is for" in user


def test_the_prompt_says_what_the_code_makes_certain_before_the_model_answers(
    tmp_path: Path,
) -> None:
    """Qwen2.5-Coder-1.5B, made by the schema to write a side effect or a pitfall, wrote
    "none" (dropped, then rejected and asked again). The single-span prompt says what the
    validator will hold it to, after the code (the cached prefix is unchanged); a batch says it
    per span; a span with nothing certain gets no such line."""
    corpus = Path(__file__).resolve().parents[2] / "bench" / "corpus" / "quality"
    for name in ("inventory.py", "store.go", "format.ts"):
        shutil.copy(corpus / name, tmp_path / name)
    sources = {s.span.name: s for s in indexed_sources(tmp_path)}
    user = build_prompt([sources["load_config"]]).messages[-1]["content"]
    assert (
        "Known from the code: the code has file I/O, so side_effects names it; the code raises "
        "ValueError (line 13), so pitfalls says when." in user
    )
    assert user.index("Code of span") < user.index("Known from the code")
    put = build_prompt([sources["Cache.Put"]]).messages[-1]["content"]
    assert "the method changes c.entries[key], so side_effects names it." in put
    throws = build_prompt([sources["formatBytes"]]).messages[-1]["content"]
    assert "the code throws RangeError (line 7), so pitfalls says when." in throws
    for quiet in ("slugify", "Inventory.total", "Clamp"):
        assert "Known from the code" not in build_prompt([sources[quiet]]).messages[-1]["content"]
    batch = build_prompt([sources["slugify"], sources["parse_duration"]]).messages[-1]["content"]
    parse_duration = sources["parse_duration"].span.id
    assert (
        f"Span {parse_duration} (`parse_duration`): Known from the code: the code raises "
        "ValueError (line 27), so pitfalls says when." in batch
    )
    assert batch.count("Known from the code") == 1
