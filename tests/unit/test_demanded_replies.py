"""What the code makes certain, the reply schema demands: ``side_effects`` where "none" is
false, ``outputs`` where a return is declared, ``inputs`` for every parameter that must be
described, ``pitfalls`` where the code raises an exception it lets escape (issue 16 §2). The
schema and the validator share one predicate each
(:mod:`spanlens_lsp.enrichment.prompt.certain`), so a reply the grammar allows is never
rejected as a false "none"."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.support.replies import valid_reply
from tests.support.sources import indexed_sources
from tests.support.standin import RecordedRequest, Reply, StandinModelServer
from tests.unit.test_enrichment_engine import backend, enrich, make_settings, workspace

from spanlens_lsp.enrichment.prompt.build import (
    REJECTION_CHARS,
    REJECTION_PREFIX,
    build_prompt,
    with_rejection,
)
from spanlens_lsp.enrichment.prompt.schema import wire_schema
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.enrichment.reply.contradictions import (
    effect_errors,
    output_errors,
    pitfall_errors,
)
from spanlens_lsp.enrichment.reply.parse import repair
from spanlens_lsp.enrichment.reply.validate import validate_reply

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "corpus" / "quality"


def _sources(tmp_path: Path) -> dict[str, SpanSource]:
    for name in ("inventory.py", "store.go", "format.ts"):
        shutil.copy(CORPUS / name, tmp_path / name)
    return {s.span.name: s for s in indexed_sources(tmp_path)}


def _props(source: SpanSource) -> dict[str, Any]:
    return build_prompt([source]).schema["properties"]  # type: ignore[no-any-return]


def test_the_schema_demands_what_the_validator_would_reject_as_none(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    # File I/O, a subprocess, network, an attribute write: "none" is false, and demanded away.
    for name in ("load_config", "run_command", "Inventory.add", "Inventory.save"):
        props = _props(sources[name])
        assert props["side_effects"].get("minItems") == 1, name
        assert effect_errors([], sources[name].validation_context()), name
    # Pure code: "none" may be true, so nothing is demanded (and nothing is rejected).
    for name in ("slugify", "parse_duration", "Inventory.total"):
        props = _props(sources[name])
        assert "minItems" not in props["side_effects"], name
        assert effect_errors([], sources[name].validation_context()) == [], name
    # A declared non-void return or a returned value demands an output; returning nothing
    # does not.
    for name in ("NewCache", "slugify", "load_config"):
        assert _props(sources[name])["outputs"].get("minItems") == 1, name
        assert output_errors([], sources[name].validation_context()), name
    # Code that returns no value (no `return` of one, nothing declared, or `void`) is
    # allowed no output, and one it is given is false.
    for name in ("Inventory.save", "Inventory.add", "Counter.reset", "logEvent"):
        outputs = _props(sources[name])["outputs"]
        assert "minItems" not in outputs and outputs["maxItems"] == 0, name
        assert output_errors([], sources[name].validation_context()) == [], name
        assert output_errors(["count: how many"], sources[name].validation_context()), name
    # An exception the span raises and lets escape demands a pitfall, and so does a call
    # whose failure or effect reaches the caller (a file opened for writing is replaced,
    # urlopen raises, JSON.stringify throws on a cycle, os.Create truncates); code that
    # does neither (or only inside a try) demands none.
    for name in (
        *("parse_duration", "Inventory.add", "run_command", "Inventory.save", "fetch_text"),
        *("logEvent", "WriteLines", "formatBytes"),
    ):
        assert _props(sources[name])["pitfalls"].get("minItems") == 1, name
        assert pitfall_errors([], sources[name].validation_context()), name
    for name in ("slugify", "Inventory.total", "NewCache", "ReadLines", "Cache.Get", "Clamp"):
        assert "minItems" not in _props(sources[name])["pitfalls"], name
        assert pitfall_errors([], sources[name].validation_context()) == [], name


def test_a_go_method_that_writes_through_its_pointer_receiver_has_a_side_effect(
    tmp_path: Path,
) -> None:
    """``Cache.Put`` (``func (c *Cache)``, ``c.entries[key] = value``): the real model said
    "no side effects" and it was stored; ``Cache.Get`` only reads."""
    sources = _sources(tmp_path)
    put = sources["Cache.Put"]
    assert effect_errors([], put.validation_context()) == [
        "side_effects claims none, but the method changes c.entries[key]"
    ]
    assert _props(put)["side_effects"].get("minItems") == 1
    get = sources["Cache.Get"]
    assert effect_errors([], get.validation_context()) == []
    assert "minItems" not in _props(get)["side_effects"]


def test_a_go_value_receiver_changes_only_what_it_shares(tmp_path: Path) -> None:
    (tmp_path / "box.go").write_text(
        "package box\n\ntype Box struct {\n\tn    int\n\tseen map[string]bool\n}\n\n"
        "func (b Box) Bump() int {\n\tb.n = b.n + 1\n\treturn b.n\n}\n\n"
        "func (b Box) Mark(key string) {\n\tb.seen[key] = true\n}\n"
    )
    sources = {s.span.name: s for s in indexed_sources(tmp_path)}
    # A field of the copy: the caller never sees it.
    assert effect_errors([], sources["Box.Bump"].validation_context()) == []
    # An element of a map field: the map is shared with the caller's Box.
    assert effect_errors([], sources["Box.Mark"].validation_context()) == [
        "side_effects claims none, but the method changes b.seen[key]"
    ]


def test_a_receiver_cannot_fill_the_place_of_a_parameter(tmp_path: Path) -> None:
    save = _props(_sources(tmp_path)["Inventory.save"])["inputs"]
    assert save["minItems"] == 1 and save["maxItems"] == 1
    assert save["items"]["pattern"].startswith("^(path): ")


def test_a_batch_demands_per_span_and_the_wire_schema_drops_it(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    batch = build_prompt([sources["slugify"], sources["load_config"]]).schema
    entries = batch["properties"]["enrichments"]["items"]["anyOf"]
    demanded = {
        e["properties"]["span_id"]["enum"][0]: e["properties"]["side_effects"] for e in entries
    }
    assert "minItems" not in demanded[sources["slugify"].span.id]
    assert demanded[sources["load_config"].span.id]["minItems"] == 1
    # OpenAI strict mode takes no bounds: they are stripped for it.
    assert "minItems" not in str(wire_schema(batch))


LOAD = """
def load_config(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()
"""


def _last_message(request: RecordedRequest) -> str:
    return str(request.json["messages"][-1]["content"])


async def test_a_retry_after_a_rejection_says_why(tmp_path: Path) -> None:
    workspace(tmp_path, {"config.py": LOAD})

    def respond(request: RecordedRequest) -> Reply:
        reply = valid_reply(request)
        if REJECTION_PREFIX in _last_message(request):
            return reply
        data = json.loads(reply.text)
        data["side_effects"] = []  # a false "none": the code opens a file
        return Reply.json(data)

    with StandinModelServer(responder=respond, engine="llama.cpp", n_ctx=16384) as server:
        settings = make_settings(backend(server.url, provider="openai"))
        outcomes = await enrich(tmp_path, settings, "load_config")
        first, retry = (_last_message(r) for r in server.chat_requests)
    assert outcomes[0].status == "enriched"
    assert REJECTION_PREFIX not in first
    # The same prompt (its cached prefix reused), then one line saying why.
    assert retry.startswith(first)
    assert retry[len(first) :] == (
        "\n\n" + REJECTION_PREFIX + "side_effects claims none, but the code has file_io. "
        "Answer again."
    )


def test_the_reason_is_one_short_clean_line_and_only_if_it_fits(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    prompt = build_prompt([sources["load_config"]])
    span_id = sources["load_config"].span.id
    long = "side_effects claims 'x\x1b[31m\nred', but " + "very " * 100 + "long"
    asked = with_rejection(prompt, {span_id: [long, "second", "third is left out"]})
    note = str(asked.messages[-1]["content"])[len(str(prompt.messages[-1]["content"])) :]
    assert note.count("\n") == 2 and "\x1b" not in note and "third" not in note
    assert len(note) < 2 * REJECTION_CHARS + 60 and note.endswith("; second. Answer again.")
    assert asked.messages[0] == prompt.messages[0]  # the instructions stay as they were
    assert asked.tokens > prompt.tokens
    # No reason, another span's reason, or no room left in the context: the prompt as it is.
    assert with_rejection(prompt, {}) is prompt
    assert with_rejection(prompt, {span_id + 999: ["x"]}) is prompt
    full = dataclasses.replace(prompt, context_tokens=prompt.tokens + prompt.max_tokens)
    assert with_rejection(full, {span_id: ["x"]}) is full


def test_a_batch_retry_names_each_span(tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    batch = build_prompt([sources["slugify"], sources["parse_duration"]])
    ids = [s.span.id for s in (sources["slugify"], sources["parse_duration"])]
    asked = with_rejection(batch, {ids[1]: ["summary is cut mid-sentence"]})
    assert str(asked.messages[-1]["content"]).endswith(
        f"\n\n{REJECTION_PREFIX}span {ids[1]}: summary is cut mid-sentence. Answer again."
    )


async def test_the_next_tier_hears_why_the_last_one_was_rejected(tmp_path: Path) -> None:
    workspace(tmp_path, {"config.py": LOAD})

    def wrong(request: RecordedRequest) -> Reply:
        data = json.loads(valid_reply(request).text)
        data["side_effects"] = []
        return Reply.json(data)

    with (
        StandinModelServer(responder=wrong, engine="llama.cpp", n_ctx=16384) as small,
        StandinModelServer(responder=valid_reply, engine="llama.cpp", n_ctx=16384) as large,
    ):
        settings = make_settings(
            backend(small.url, "small-box", provider="openai"),
            backend(large.url, "large-box", tier="large", provider="openai"),
        )
        outcomes = await enrich(tmp_path, settings, "load_config")
        small_texts = [_last_message(r) for r in small.chat_requests]
        large_texts = [_last_message(r) for r in large.chat_requests]
    assert outcomes[0].status == "enriched"
    assert REJECTION_PREFIX not in small_texts[0]
    assert all(t.count(REJECTION_PREFIX) == 1 for t in small_texts[1:] + large_texts)
    assert "side_effects claims none, but the code has file_io" in large_texts[0]


def test_a_class_or_struct_is_given_no_output(tmp_path: Path) -> None:
    """Qwen2.5-Coder-1.5B gave `Counter` its method's `number` and Go's `Cache` its field's
    `map[string]string` as outputs, and repeated them when a retry said why: a class returns
    nothing of its own, so the schema allows no output for it (and demands none)."""
    shutil.copy(CORPUS / "format.ts", tmp_path / "format.ts")
    sources = {**_sources(tmp_path), **{s.span.name: s for s in indexed_sources(tmp_path)}}
    for name in ("Counter", "Cache", "Inventory"):
        outputs = _props(sources[name])["outputs"]
        assert outputs["maxItems"] == 0 and "minItems" not in outputs, name
        assert output_errors([], sources[name].validation_context()) == [], name
    # Its methods keep theirs.
    assert _props(sources["Counter.get"])["outputs"]["minItems"] == 1


def _matches(pattern: str, text: str) -> bool:
    """Whether ``text`` keeps to the schema ``pattern`` (as a JSON Schema validator reads it)."""
    schema = {"type": "string", "pattern": pattern}
    return jsonschema.Draft202012Validator(schema).is_valid(text)


def test_an_output_says_what_it_means(tmp_path: Path) -> None:
    """Qwen2.5-Coder-1.5B wrote a bare type as the output of most typed functions (`int`,
    `string[]`, `*Cache`): the grammar an engine builds from the schema does not allow it."""
    sources = _sources(tmp_path)
    outputs = _props(sources["Clamp"])["outputs"]["items"]["pattern"]
    assert not _matches(outputs, "int")
    assert not _matches(outputs, "string, error")
    assert _matches(outputs, "int: v limited to the range [lo, hi]")
    # The prompt says so, in the instructions every span shares, with no example to copy:
    # the model wrote an example effect ("changes `self.items`") into most replies, for
    # functions that have no `self`.
    system = str(build_prompt([sources["Clamp"]]).messages[0]["content"])
    assert '"value: what it means to the caller"' in system
    assert "never a return value, an exception or a computation" in system
    assert "`self.items`" not in system and "`path`" not in system
    # Side effects get no verb pattern: forced to start with one, the model made effects up
    # ("prints the contents of the file" for a function that reads one, "cancels the
    # request" for a fetch). Where the code has an effect, the pattern only rules out what
    # the validator would not keep: an entry that opens with an exception's name (moved to the
    # pitfalls) or with "none" (run 24: `fetch_text` never stored in six calls).
    assert "pattern" not in _props(sources["Clamp"])["side_effects"]["items"]
    effects = _props(sources["Inventory.add"])["side_effects"]["items"]["pattern"]
    for kept in ("changes self.items[name]", "the items dict gains name", "network access"):
        assert _matches(effects, kept), kept
    for ruled_out in ("Raises ValueError if count <= 0", "URLError if it fails", "none", "no"):
        assert not _matches(effects, ruled_out), ruled_out
    fetch = _props(sources["fetch_text"])["side_effects"]
    assert fetch["minItems"] == 1 and not _matches(fetch["items"]["pattern"], "none")


def test_a_return_or_raise_told_as_a_side_effect_is_dropped(tmp_path: Path) -> None:
    """ "returns next" and "Raises ValueError if count <= 0" were written as side effects:
    they claim nothing done (the outputs and pitfalls say them), so they are dropped, and
    what remains is judged as usual."""
    context = _sources(tmp_path)["Inventory.add"].validation_context()
    reply = {
        "summary": "Adds count items called name.",
        "inputs": ["name: the item", "count: how many to add"],
        "outputs": [],
        "side_effects": ["changes self.items[name]", "Raises ValueError if count <= 0"],
        "pitfalls": ["raises ValueError when count is not positive"],
        "tags": [],
        "usage_snippet": None,
        "evidence": [],
    }
    result = validate_reply(json.dumps(reply), context)
    assert result.ok and result.data is not None, result.errors
    assert result.data["side_effects"] == ["changes self.items[name]"]
    assert "side_effects: returns, raises and computations dropped" in result.repairs
    # With nothing else said, "none" is left, and the method changes its object: rejected.
    reply["side_effects"] = ["returns nothing", "throws on a bad count"]
    assert validate_reply(json.dumps(reply), context).errors == [
        "side_effects claims none, but the method changes self.items[name]"
    ]


def test_a_retry_does_not_quote_the_rejected_text_back(tmp_path: Path) -> None:
    """A retry that quoted a cut entry (`'s or connection failures. It should be a'`) got the
    fragment back as a pitfall and a side effect: the reason is said, the text is not."""
    source = _sources(tmp_path)["slugify"]
    prompt = build_prompt([source])
    reason = "pitfalls entry is cut (ends with 'a'): 's or connection failures. It should be a'"
    asked = with_rejection(prompt, {source.span.id: [reason]})
    note = str(asked.messages[-1]["content"]).rsplit("\n\n", 1)[1]
    assert note == f"{REJECTION_PREFIX}pitfalls entry is cut (ends with 'a'). Answer again."


@pytest.mark.parametrize(
    ("field", "said", "dropped"),
    [
        # Seen in quality run 11 (Qwen2.5-Coder-1.5B, prompt v6).
        ("side_effects", "next: Returns the new count after incrementing.", True),
        ("side_effects", "json_load: parses the JSON data from the file", True),
        ("side_effects", "JSON.stringify", True),
        ("side_effects", "decodes the response using the specified encoding", True),
        ("outputs", "error: Throws an Error if the HTTP request fails.", True),
        # Run 10.
        ("side_effects", "URLError: if the request fails, the function raises an exception", True),
        ("side_effects", "It uses the `fetch` API for making HTTP requests.", True),
        ("side_effects", "handles errors by returning an error if the file cannot be read", True),
        # Effects and values, kept: a call on the object's own state is a change.
        ("side_effects", "this.counts.clear()", False),
        ("side_effects", "console.log", False),
        ("side_effects", "json.load()", False),  # reads the handle it is given
        ("side_effects", "network: Opens a network connection to send the request.", False),
        ("outputs", "error: an error if the file could not be read", False),
    ],
)
def test_what_belongs_to_another_field_is_dropped(field: str, said: str, dropped: bool) -> None:
    data, repairs = repair(
        {"side_effects": ["writes the file"], "outputs": ["value: v"]} | {field: [said]}
    )
    assert (data[field] == []) == dropped, data[field]
    assert bool(repairs) == dropped, repairs


def test_a_side_effect_that_lists_the_prompts_kinds_is_an_echo(tmp_path: Path) -> None:
    """Run 11: "subprocess.run opens and reads from files, processes, networks, objects or
    states" for `run_command`: the prompt's list said back (and "networks" is false)."""
    context = _sources(tmp_path)["run_command"].validation_context()
    reply = {
        "summary": "Runs a command and returns its standard output.",
        "inputs": ["args: the command and its arguments", "timeout: seconds to wait"],
        "outputs": ["value: the command's standard output"],
        "side_effects": [
            "subprocess.run opens and reads from files, processes, networks, objects or states"
        ],
        "pitfalls": ["raises RuntimeError when the command fails"],
        "tags": [],
        "usage_snippet": None,
        "evidence": [],
    }
    errors = validate_reply(json.dumps(reply), context).errors
    assert errors and errors[0].startswith("side_effects lists the prompt's kinds of effect")
    reply["side_effects"] = ["spawns the command as a child process and reads its output stream"]
    assert validate_reply(json.dumps(reply), context).ok


APPENDS = """
def save(path, lines):
    with open(path, "w") as handle:
        handle.write("\\n".join(lines))


def log(path, line):
    with open(path, "a") as handle:
        handle.write(line)
"""


def test_a_file_opened_for_writing_is_not_appended_to(tmp_path: Path) -> None:
    """Run 8: "creates the file if it does not exist or appends to it if it does" for Go's
    `os.Create`, which replaces an existing file; a file opened for appending may be said to
    be appended to."""
    (tmp_path / "files.py").write_text(APPENDS.lstrip("\n"), encoding="utf-8")
    sources = {s.span.name: s for s in indexed_sources(tmp_path)}
    reply = {
        "summary": "Writes the lines to a file.",
        "inputs": ["path: where the file is created or appended", "lines: the lines"],
        "outputs": [],
        "side_effects": ["writes the lines to path"],
        "pitfalls": ["an existing file at path is replaced"],
        "tags": [],
        "usage_snippet": None,
        "evidence": [],
    }
    errors = validate_reply(json.dumps(reply), sources["save"].validation_context()).errors
    assert errors == [
        "inputs claims it appends to the file, but open() on line 2 replaces an existing file"
    ]
    # Run 14: a pitfall that says the file is not appended to is what the code does.
    for negated in (
        "does not append to an existing file",
        "never appends to it",
        "replaces the file instead of appending to it",
    ):
        reply["pitfalls"] = ["an existing file at path is replaced", negated]
        reply["inputs"] = ["path: where the file is written", "lines: the lines"]
        assert validate_reply(json.dumps(reply), sources["save"].validation_context()).ok
    reply["pitfalls"] = ["it does not check the path, and appends to the file if it exists"]
    assert not validate_reply(json.dumps(reply), sources["save"].validation_context()).ok
    # Run 17: the object between the verb and the file.
    reply["pitfalls"] = ["an existing file at path is replaced"]
    reply["side_effects"] = ["appends lines to the file if it exists, otherwise creates it"]
    assert validate_reply(json.dumps(reply), sources["save"].validation_context()).errors == [
        "side_effects claims it appends to the file, but open() on line 2 replaces an existing file"
    ]
    reply["side_effects"] = ["writes the lines to path"]
    reply["inputs"] = ["path: the file to append to", "line: the line"]
    reply["side_effects"] = ["appends the line to the file"]
    reply["pitfalls"] = ["raises OSError when the file cannot be opened"]
    assert validate_reply(json.dumps(reply), sources["log"].validation_context()).ok


def test_a_field_the_method_never_assigns_is_not_changed(tmp_path: Path) -> None:
    """Runs 8 and 9: "c.limit: checked and possibly adjusted" for Go's `Cache.Put`, which
    assigns `c.entries[key]` and never `c.limit`."""
    put = _sources(tmp_path)["Cache.Put"].validation_context()
    changes = ["c.entries[key]: updated to store the value"]
    assert effect_errors(changes, put) == []
    assert effect_errors([*changes, "c.limit: checked and possibly adjusted"], put) == [
        "side_effects claims c.limit changes, but the code never assigns it"
    ]
    # Read, not changed: no claim of a change, nothing judged.
    assert effect_errors([*changes, "reads c.limit to check the size"], put) == []


def test_a_side_effect_that_says_there_is_none_is_dropped() -> None:
    """Run 9 wrote the prompt's kinds as labels with nothing to say: "stream: none",
    "network: no network calls are made"; a pitfall may start with "no"."""
    data, repairs = repair(
        {
            "side_effects": ["stream: none", "network: no network calls are made", "writes x"],
            "pitfalls": ["no check for an empty list"],
        }
    )
    assert data["side_effects"] == ["writes x"]
    assert data["pitfalls"] == ["no check for an empty list"]
    assert repairs == ["side_effects: 'none' items dropped"]


def test_what_the_code_makes_certain_is_said_in_words(tmp_path: Path) -> None:
    """The facts' category names ("file_io") were copied as labels ("file_io: opens the
    file", a bare "file_io"): the prompt says "file I/O"."""
    prompt = build_prompt([_sources(tmp_path)["load_config"]])
    user = str(prompt.messages[-1]["content"])
    assert "Known from the code: the code has file I/O, so side_effects names it" in user
    assert "file_io" not in user
