"""Reply parsing, safe repairs and validation against schema and facts; router, batching,
prompts, privacy and the breaker as pure logic."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from spanlens_lsp.enrichment.call.endpoints import CLOSED, HALF_OPEN, OPEN, Breaker
from spanlens_lsp.enrichment.planning.batching import BatchCandidate, plan_batches
from spanlens_lsp.enrichment.planning.privacy import looks_secret
from spanlens_lsp.enrichment.planning.router import choose_route, complexity_level
from spanlens_lsp.enrichment.prompt.build import REQUEST_CLOSE, REQUEST_OPEN, build_prompt
from spanlens_lsp.enrichment.prompt.schema import SpanBounds, bounded_schema
from spanlens_lsp.enrichment.prompt.source import SpanContext, SpanSource, context_for
from spanlens_lsp.enrichment.reply.parse import extract_json
from spanlens_lsp.enrichment.reply.validate import (
    DETAIL_LINE_CHARS,
    DETAIL_LINES,
    Validated,
    rejection_detail,
    to_span_lines,
    validate_batch_reply,
    validate_enrichment,
    validate_reply,
)
from spanlens_lsp.settings import EnrichmentSettings, RouterSettings
from spanlens_lsp.store.rows import SpanRow

CODE = "def add(a, b=1):\n    total = a + b\n    return total"
CTX = SpanContext(7, 10, 12, ("a", "b"), CODE)


def good(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "summary": "Adds two numbers and returns their sum.",
        "inputs": ["a: first addend", "b: second addend, defaults to 1"],
        "outputs": ["sum: the sum of a and b"],
        "side_effects": [],
        "pitfalls": ["no type checks"],
        "tags": ["math"],
        "usage_snippet": "add(2, 3)",
    }
    data.update(changes)
    return data


# ------------------------------------------------------------------ parsing and repair


def test_valid_reply_validates_without_repairs() -> None:
    result = validate_reply(json.dumps(good()), CTX)
    assert result.ok and result.repairs == []
    assert result.data == good()


def test_an_input_that_also_describes_another_parameter_is_rejected() -> None:
    """Runs 19 and 20: "key: string, value: string" and "key: string, by: number = 1: ... or
    null to reset the count" (a claim the code does not make) as one entry: asked again."""
    merged = good(inputs=["a: number, b: number = 1: adds b or null to reset", "b: the step"])
    result = validate_reply(json.dumps(merged), CTX)
    assert not result.ok
    assert result.errors == [
        "input 'a: number, b: number = 1: adds b or null' also describes b: one entry per parameter"
    ]
    # Run 22, with the grammar allowing no second colon: the other parameter with its default.
    merged = good(inputs=["a: number, b = 1 (optional number) - the start and the step", "b: x y"])
    assert validate_reply(json.dumps(merged), CTX).errors == [
        "input 'a: number, b = 1 (optional number) - the' also describes b: one entry per parameter"
    ]
    # Another parameter named in prose, or an attribute of that name, is no second entry.
    for meaning in (
        "a: added to b",
        "a: the start; b is added to it",
        "a: self.b: the base",
        "a: the start, compared as a == b",
    ):
        assert validate_reply(json.dumps(good(inputs=[meaning, "b: the step"])), CTX).ok


def test_evidence_is_not_asked_for_but_is_kept_when_a_reply_gives_it() -> None:
    """Nothing shows evidence and a small model paid ~9 reply tokens a span for it: neither
    the instructions nor the schema sent ask for it. A reply that gives it anyway is checked
    and kept; a stored enrichment has the key either way (the stored shape is unchanged)."""
    prompt = build_prompt([source(span(3, start=9))])
    assert "evidence" not in prompt.messages[0]["content"]
    assert "evidence" not in prompt.schema["properties"]
    assert "evidence" not in prompt.schema["required"]
    cited = good(evidence=[{"field": "summary", "lines": [10, 12]}])
    result = validate_reply(json.dumps(cited), CTX)
    assert result.ok and result.data == cited
    assert to_span_lines(result.data, 10)["evidence"] == [{"field": "summary", "lines": [1, 3]}]
    assert to_span_lines(good(), 10)["evidence"] == []


@pytest.mark.parametrize(
    "text",
    [
        "Here is the JSON you asked for:\n```json\n{body}\n```\nHope it helps!",
        "Sure. {body} That is all.",
        "```\n{body}\n```",
    ],
)
def test_json_inside_prose_or_fences_is_recovered(text: str) -> None:
    result = validate_reply(text.replace("{body}", json.dumps(good())), CTX)
    assert result.ok
    assert "stripped text around the JSON" in result.repairs


def test_text_without_json_is_invalid() -> None:
    assert extract_json("it adds numbers") is None
    result = validate_reply("it adds numbers {not json", CTX)
    assert not result.ok and result.data is None


def test_a_string_becomes_a_one_item_list() -> None:
    result = validate_enrichment(good(pitfalls="overflows on huge ints", side_effects=""), CTX)
    assert result.ok and result.data is not None
    assert result.data["pitfalls"] == ["overflows on huge ints"]
    assert result.data["side_effects"] == []


def test_snippet_is_clamped_to_twelve_lines_and_unfenced() -> None:
    long_snippet = "```python\n" + "\n".join(f"add({i}, 1)" for i in range(30)) + "\n```"
    result = validate_enrichment(good(usage_snippet=long_snippet), CTX)
    assert result.ok and result.data is not None
    assert result.data["usage_snippet"].splitlines() == [f"add({i}, 1)" for i in range(12)]


def test_empty_snippet_becomes_null_and_unknown_keys_go() -> None:
    result = validate_enrichment({**good(usage_snippet="  "), "confidence": 0.9}, CTX)
    assert result.ok and result.data is not None
    assert result.data["usage_snippet"] is None
    assert "confidence" not in result.data


# ------------------------------------------------------------------ schema and facts


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"inputs": ["c: a parameter the code does not have"]}, "names no parameter"),
        ({"evidence": [{"field": "summary", "lines": [3, 5]}]}, "outside the span"),
        ({"evidence": [{"field": "summary", "lines": [12, 40]}]}, "outside the span"),
        ({"evidence": [{"field": "summary", "lines": [14, 10]}]}, "outside the span"),
        ({"summary": 42}, "is not of type 'string'"),
        ({"tags": {"a": 1}}, "is not of type 'array'"),
        ({"evidence": [{"field": "summary", "lines": [10]}]}, "too short"),
        ({"summary": ""}, "summary"),
        ({"summary": " ".join(["word"] * 121)}, "121 words"),
        ({"summary": "def add(a, b=1):"}, "repeats the code"),
        ({"summary": "total = a + b and then return total"}, None),
    ],
)
def test_replies_that_break_schema_or_facts_are_invalid(
    changes: dict[str, Any], message: str | None
) -> None:
    result = validate_enrichment(good(**changes), CTX)
    if message is None:  # a description that merely mentions code is fine
        assert result.ok
        return
    assert not result.ok and result.data is None
    assert any(message in error for error in result.errors), result.errors


def test_missing_field_is_invalid_not_filled_in() -> None:
    data = good()
    del data["pitfalls"]
    result = validate_enrichment(data, CTX)
    assert not result.ok and result.data is None


def test_evidence_written_backwards_is_swapped_not_rejected() -> None:
    """Issue 16: a real model wrote ``[181, 180]``; the same lines, a safe repair."""
    reply = good(evidence=[{"field": "summary", "lines": [12, 10]}])
    result = validate_enrichment(reply, CTX)
    assert result.ok and result.data is not None, result.errors
    assert result.data["evidence"] == [{"field": "summary", "lines": [10, 12]}]
    assert result.repairs == ["evidence: 1 backward line ranges swapped"]
    assert reply["evidence"][0]["lines"] == [12, 10]  # the reply itself is left as it came


def test_every_parameter_needs_an_input() -> None:
    """Issue 16: a real model left `inputs` empty on functions with parameters."""
    result = validate_enrichment(good(inputs=["a: first addend"]), CTX)
    assert result.errors == ["inputs leave out parameters: b"]
    assert not validate_enrichment(good(inputs=[]), CTX).ok
    receiver = SpanContext(7, 10, 12, ("self", "x"), CODE)
    assert validate_enrichment(good(inputs=["x: the value"]), receiver).ok  # self may go unsaid
    star = SpanContext(7, 10, 12, ("args", "kwargs"), CODE)
    assert validate_enrichment(good(inputs=["args: values", "kwargs: options"]), star).ok
    # TypeScript and Go: a destructuring pattern or `_` cannot be named; `...rest` is `rest`.
    facts = {"params": [{"name": "{a, b}"}, {"name": "_"}, {"name": "...rest"}]}
    ts = context_for(7, 10, 12, facts, CODE)
    assert validate_enrichment(good(inputs=["rest: the other values"]), ts).ok
    assert validate_enrichment(good(inputs=[]), ts).errors == ["inputs leave out parameters: rest"]


def test_the_bounded_schema_demands_one_input_per_parameter() -> None:
    """Where the engine enforces ``minItems``, the grammar asks for every parameter too."""
    schema, _ = bounded_schema([SpanBounds(7, ("self", "a", "b"), 10, 12)])
    inputs = schema["properties"]["inputs"]
    # The receiver is not offered: a ``self`` entry would fill a place ``a`` or ``b`` needs.
    assert (inputs["minItems"], inputs["maxItems"]) == (2, 2)
    assert inputs["items"]["pattern"].startswith("^(a|b): ")
    # A usage snippet is one line that does not end inside a call: where the string may not
    # end after "(", a model escapes a Go string literal's quote instead of ending the JSON
    # string on it (run 17: `err := c.Put(`).
    snippet = re.compile(schema["properties"]["usage_snippet"]["pattern"])
    assert snippet.search('err := c.Put("k", "v")') and snippet.search("c.reset();")
    for cut in ("err := c.Put(", "add(1, ", "f([", "x = f(1)\ny = f(2)"):
        assert not snippet.search(cut), cut
    # A one-word meaning is a type ("a: int"): the grammar leaves no way to write it.
    pattern = re.compile(inputs["items"]["pattern"])
    assert not pattern.search("a: int") and not pattern.search("b: string")
    assert pattern.search("a: the first addend") and pattern.search("b: the second, 1 by default")
    assert pattern.search("a: how far to move") and pattern.search("b: whether to round")
    # A meaning opens as prose, not with a type: run 23 went on from "key: string" to the next
    # parameter ("key: string, by = 1 (optional) number ...") in six calls.
    assert not pattern.search("a: number, b = 1 (optional) number")
    assert not pattern.search("a: first addend")
    # Nor one entry for two parameters (run 21: "key: string, by: number = 1: ...", six calls).
    assert not pattern.search("a: number, b: number = 1: the amounts to add")
    assert not pattern.search("a: the first addend, b: the second")
    one = good(inputs=["a: the first addend"])
    assert any(e.validator == "minItems" for e in Draft202012Validator(schema).iter_errors(one))
    two = good(inputs=["a: the first addend", "b: the second addend, defaults to 1"])
    assert not list(Draft202012Validator(schema).iter_errors(two))
    bare, _ = bounded_schema([SpanBounds(7, ("self",), 10, 12)])
    assert "minItems" not in bare["properties"]["inputs"]


def test_receiver_may_be_named_and_spans_without_params_are_not_checked() -> None:
    assert validate_enrichment(good(inputs=["self: the instance", "a: x", "b: y"]), CTX).ok
    no_params = SpanContext(7, 10, 12, None, CODE)
    assert validate_enrichment(good(inputs=["config: anything"]), no_params).ok
    empty_params = SpanContext(7, 10, 12, (), CODE)
    assert not validate_enrichment(good(inputs=["x: invented"]), empty_params).ok


def test_batch_entries_are_validated_one_by_one() -> None:
    other = SpanContext(8, 20, 25, ("x",), "def neg(x):\n    return -x")
    third = SpanContext(9, 30, 31, (), "def nothing():\n    pass")
    reply = {
        "enrichments": [
            {"span_id": 7, **good()},
            {
                "span_id": 8,
                **good(summary="Negates a number.", inputs=["y: invented"], evidence=[]),
            },
            {"span_id": 99, **good()},
        ]
    }
    results = validate_batch_reply(json.dumps(reply), [CTX, other, third])
    assert results[7].ok
    assert not results[8].ok and "names no parameter" in results[8].errors[0]
    assert not results[9].ok and "no entry" in results[9].errors[0]
    assert set(results) == {7, 8, 9}


def test_a_batch_that_collapsed_into_one_summary_stores_none_of_its_spans() -> None:
    """Issue 16: six methods of one class, one batch, one class summary for all of them."""
    other = SpanContext(8, 20, 25, ("x",), "def neg(x):\n    return -x")
    third = SpanContext(9, 30, 31, (), "def nothing():\n    pass")
    same = "Adds two NUMBERS and returns their sum"  # the same after folding case and stops
    reply = {
        "enrichments": [
            {"span_id": 7, **good()},
            {"span_id": 8, **good(summary=same, inputs=["x: the number"], evidence=[])},
            {"span_id": 9, **good(summary="Does nothing.", inputs=[], evidence=[])},
        ]
    }
    results = validate_batch_reply(json.dumps(reply), [CTX, other, third])
    assert results[7].errors == ["summary is the same as span 8's in this reply"]
    assert results[8].errors == ["summary is the same as span 7's in this reply"]
    assert results[7].data is None and results[9].ok


def test_the_rejection_detail_names_span_and_rule_safely() -> None:
    results = {
        1: Validated({"summary": "ok"}),
        2: Validated(None, ["summary is cut\x1b[2J\u202e mid-sentence", "second"]),
        **{i: Validated(None, ["x" * 500]) for i in range(3, 3 + DETAIL_LINES + 2)},
    }
    detail = rejection_detail(results, {2: "Cls.meth"})
    assert detail is not None
    lines = detail.splitlines()
    assert lines[0] == "Cls.meth: summary is cut mid-sentence"
    assert lines[1].startswith("span 3: xxx") and len(lines[1]) == DETAIL_LINE_CHARS
    assert len(lines) == DETAIL_LINES + 1 and lines[-1] == "(+3 more)"
    assert rejection_detail({1: Validated({"summary": "ok"})}, {}) is None


# ------------------------------------------------------------------ router and batching


def span(
    span_id: int = 1,
    *,
    path: str = "a.py",
    kind: str = "function",
    start: int = 0,
    lines: int = 3,
    facts: dict[str, Any] | None = None,
) -> SpanRow:
    facts = {"lines": lines, "nesting": 0, "tokens": lines * 10, "params": [], **(facts or {})}
    return SpanRow(
        span_id, path, "python", f"f{span_id}", kind, 0, start, 0, start + lines - 1, 0,
        start, 4, start, 6, f"h{span_id}", facts, None,
    )  # fmt: skip


def source(row: SpanRow) -> SpanSource:
    body = [f"def {row.name}():"] + ["    x = 1"] * (row.end_line - row.start_line - 1)
    return SpanSource(row, [*body, "    return x"])


def test_complexity_picks_the_starting_tier() -> None:
    router = RouterSettings(small_max_lines=10, small_max_nesting=2, small_max_tokens=500)
    contexts = {"small": 8192, "large": 32768, "remote": 128000}
    assert complexity_level({"lines": 5, "nesting": 1, "tokens": 100}, router) == 0
    assert choose_route({"lines": 5, "tokens": 100}, 900, contexts, router) == [
        "small",
        "large",
        "remote",
    ]
    assert choose_route({"lines": 40, "tokens": 400}, 900, contexts, router)[0] == "large"
    assert choose_route({"lines": 400, "tokens": 9000}, 900, contexts, router) == ["remote"]


def test_route_uses_the_highest_tier_there_is_and_skips_small_contexts() -> None:
    router = RouterSettings(small_max_lines=10)
    only_small = {"small": 8192}
    assert choose_route({"lines": 400, "tokens": 9000}, 900, only_small, router) == ["small"]
    contexts = {"small": 2048, "large": 32768}
    assert choose_route({"lines": 3, "tokens": 50}, 5000, contexts, router) == ["large"]
    assert choose_route({"lines": 3}, 90000, contexts, router) == ["large"]  # widest
    assert choose_route({"lines": 3}, 100, contexts, router, forced="large") == ["large"]
    assert choose_route({"lines": 3}, 100, contexts, router, forced="remote") == []


def test_batches_group_one_file_and_kind_within_window_and_budget() -> None:
    settings = EnrichmentSettings(batch_window_lines=100, batch_token_budget=200, batch_max_spans=3)
    rows = [
        span(1, start=0),
        span(2, start=10),
        span(3, start=20),
        span(4, start=30),  # fourth of the same run: batch_max_spans
        span(5, start=300),  # outside the window
        span(6, start=5, kind="class"),  # other kind
        span(7, start=40, path="b.py"),  # other file
        span(8, start=50, lines=30),  # 300 tokens: too big to share
    ]
    batches, singles = plan_batches([BatchCandidate(source(r), "small") for r in rows], settings)
    assert [[c.source.span.id for c in b] for b in batches] == [[1, 2, 3]]
    assert {c.source.span.id for c in singles} == {4, 5, 6, 7, 8}


def test_batches_only_form_at_the_same_starting_tier() -> None:
    settings = EnrichmentSettings()
    candidates = [
        BatchCandidate(source(span(1, start=0)), "small"),
        BatchCandidate(source(span(2, start=5)), "large"),
    ]
    batches, singles = plan_batches(candidates, settings)
    assert batches == [] and len(singles) == 2


# ------------------------------------------------------------------ prompts


def test_reply_room_grows_with_the_parameters_to_describe() -> None:
    few = build_prompt([source(span(1, facts={"params": [{"name": "a"}]}))])
    params = [{"name": f"p{i}"} for i in range(30)]
    many = build_prompt([source(span(2, facts={"params": params}))])
    assert many.max_tokens > few.max_tokens


def test_prompt_carries_a_machine_readable_request_and_numbered_code() -> None:
    row = span(3, start=9, facts={"params": [{"name": "a"}, {"name": "b"}]})
    prompt = build_prompt([source(row)])
    user = prompt.messages[-1]["content"]
    request = json.loads(user.split(REQUEST_OPEN)[1].split(REQUEST_CLOSE)[0])
    # One span's request holds its id and parameters; the code block's header says the rest
    # (a model evaluates every token of it again for each span).
    assert request == {"span_id": 3, "parameters": ["a", "b"]}
    assert "Code of span 3: function f3, lines 10-12" in user
    assert "   10 | def f3():" in user
    inputs = prompt.schema["properties"]["inputs"]
    assert inputs["maxItems"] == 2 and inputs["items"]["pattern"].startswith("^(a|b): ")


def test_long_span_becomes_an_excerpt_of_whole_lines() -> None:
    lines = ["def big(items):", '    """Sum the even items."""']
    lines += [f"    value_{i} = compute_something_long(items[{i}]) * {i}" for i in range(400)]
    lines += ["    if not items:", "        raise ValueError('empty')", "    return value_1"]
    row = span(1, lines=len(lines), facts={"tokens": 9000})
    prompt = build_prompt([SpanSource(row, lines)], context_tokens=2500)
    user = prompt.messages[-1]["content"]
    assert prompt.excerpted == (1,)
    assert prompt.tokens + prompt.max_tokens <= 2500
    shown = [line.split(" | ", 1)[1] for line in user.splitlines() if " | " in line]
    assert shown[0] == "def big(items):" and shown[1] == '    """Sum the even items."""'
    assert "        raise ValueError('empty')" in shown and "    return value_1" in shown
    assert all(line in lines for line in shown)  # whole original lines, never a cut
    assert "lines omitted" in user


# ------------------------------------------------------------------ privacy and breaker


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True),
        ("config/.env.production", True),
        ("app/secrets.py", True),
        ("deploy/aws_credentials.py", True),
        ("certs/server.pem", True),
        ("keys/signing.py", True),
        ("app/tokenizer.py", False),
        ("src/main.py", False),
    ],
)
def test_secret_looking_paths(path: str, secret: bool) -> None:
    assert looks_secret(path) is secret


def test_breaker_opens_after_threshold_and_recovers_through_one_trial() -> None:
    breaker = Breaker(threshold=2, reset_after=10.0)
    assert breaker.claim(0.0)
    breaker.failure(0.0)
    assert breaker.state(0.0) == CLOSED
    breaker.failure(1.0)
    assert breaker.state(1.0) == OPEN and not breaker.claim(5.0)
    assert breaker.state(11.0) == HALF_OPEN
    assert breaker.claim(11.0) and not breaker.claim(11.0)  # one trial at a time
    breaker.failure(11.5)
    assert breaker.state(12.0) == OPEN
    assert breaker.claim(22.0)
    breaker.success()
    assert breaker.state(22.0) == CLOSED and breaker.claim(22.0)


# ------------------------------------------------------------------ placeholders


@pytest.mark.parametrize(
    "summary",
    [
        "TODO",
        "todo",
        "TODO: describe this function",
        "...",
        "…",
        "N/A",
        "TBD",
        "\x00",
        "\x00\x00 ",
        "\x1b[31m",
        "   \t ",
        "\u200b",
        "placeholder",
        "Placeholder.",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
        "???",
        "- - -",
        "Summary",
        "Adds two numbers\x00 and returns the sum.",
        "Adds two numbers \u202eand returns the sum.",
    ],
)
def test_a_placeholder_summary_is_invalid_output(summary: str) -> None:
    result = validate_reply(json.dumps(good(summary=summary)), CTX)
    assert not result.ok and result.data is None
    assert result.errors and result.errors[0].startswith("summary")


@pytest.mark.parametrize("key", ["outputs", "side_effects", "pitfalls"])
@pytest.mark.parametrize("item", ["...", "…", "TODO", "TBD", "\x00", "placeholder", "?"])
def test_a_placeholder_list_entry_is_invalid_output(key: str, item: str) -> None:
    result = validate_reply(json.dumps(good(**{key: ["a real entry", item]})), CTX)
    assert not result.ok and result.data is None
    assert any(error.startswith(f"{key}[1] ") for error in result.errors)


@pytest.mark.parametrize("item", ["...", "…", "TODO", "TBD", "placeholder", "?", "description"])
def test_a_placeholder_tag_is_dropped_not_stored(item: str) -> None:
    # A tag is a label: the one that says nothing goes, the reply's content stays.
    result = validate_reply(json.dumps(good(tags=["math", item])), CTX)
    assert result.ok and result.data is not None and result.data["tags"] == ["math"]


def test_a_tag_with_a_control_character_is_invalid_output() -> None:
    result = validate_reply(json.dumps(good(tags=["math", "\x00"])), CTX)
    assert not result.ok and any(e.startswith("tags[1] ") for e in result.errors)


@pytest.mark.parametrize("snippet", ["...", "TODO", "\x1b]8;;http://x\x07"])
def test_a_placeholder_usage_snippet_is_invalid_output(snippet: str) -> None:
    assert not validate_reply(json.dumps(good(usage_snippet=snippet)), CTX).ok


def test_a_none_entry_means_an_empty_list_and_is_dropped() -> None:
    result = validate_reply(json.dumps(good(side_effects=["None"], pitfalls=["N/A"])), CTX)
    assert result.ok and result.data is not None
    assert result.data["side_effects"] == [] and result.data["pitfalls"] == []


@pytest.mark.parametrize(
    "summary",
    [
        "Returns None when the key is missing.",
        "Builds a todo list from the tracker's open items.",
        "Parses the N/A markers in a CSV row.",
        "Formats the placeholder text of an input field.",
        "Waits... then retries the call up to three times.",
        "Normalises 'TBD' dates in the release table to null.",
    ],
)
def test_real_text_that_mentions_placeholder_words_is_valid(summary: str) -> None:
    assert validate_reply(json.dumps(good(summary=summary)), CTX).ok


def test_a_batch_entry_with_a_placeholder_is_invalid_while_its_neighbour_lands() -> None:
    other = SpanContext(8, 13, 15, ("a", "b"), CODE)
    text = json.dumps(
        {
            "enrichments": [
                {"span_id": 7, **good(summary="...")},
                {"span_id": 8, **good(evidence=[{"field": "summary", "lines": [13, 15]}])},
            ]
        }
    )
    results = validate_batch_reply(text, [CTX, other])
    assert not results[7].ok and results[8].ok
