"""Issue 16 §2, truth where the code is certain: each rule of
:mod:`spanlens.enrichment.contradictions` on its own, with the cases it must leave alone (what
the parser cannot judge is never rejected)."""

from __future__ import annotations

from typing import Any

import pytest

from spanlens.enrichment import contradictions
from spanlens.enrichment.grounding import fold
from spanlens.enrichment.prompts import SYSTEM_PROMPT
from spanlens.enrichment.validation import (
    SpanContext,
    context_for,
    repair,
    validate_enrichment,
)

# ------------------------------------------------------------------ each rule on its own

CODE = "def add(a, b=1):\n    total = a + b\n    return total"
FACTS: dict[str, Any] = {
    "params": [{"name": "a"}, {"name": "b"}],
    "returns": "int",
    "calls": [],
    "side_effects": [],
}


def good(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "summary": "Adds two numbers and returns their sum.",
        "inputs": ["a: first addend", "b: second addend, 1 by default"],
        "outputs": ["the sum"],
        "side_effects": [],
        "pitfalls": [],
        "tags": ["math"],
        "usage_snippet": None,
        "evidence": [],
    }
    data.update(changes)
    return data


def ctx(facts: dict[str, Any] | None = None, code: str = CODE, **kw: Any) -> SpanContext:
    return context_for(7, 10, 12, {**FACTS, **(facts or {})}, code, **kw)


@pytest.mark.parametrize(
    "entry",
    [
        "No side effects; the method does not modify any arguments or shared state.",
        "None.",
        "This function has no side effects.",
        "The method does not have any side effects",
    ],
)
def test_none_written_as_an_entry_claims_none(entry: str) -> None:
    data, repairs = repair(good(side_effects=[entry]))
    assert data["side_effects"] == [] and "side_effects: 'none' items dropped" in repairs
    writes = ctx({"side_effects": ["file_io"], "calls": ["file.write"]})
    result = validate_enrichment(good(side_effects=[entry]), writes)
    assert result.errors == ["side_effects claims none, but the code has file_io"]


def test_none_of_the_arguments_is_not_a_claim_of_none() -> None:
    data, _ = repair(good(side_effects=["None of the arguments is copied"]))
    assert data["side_effects"] == ["None of the arguments is copied"]


def test_a_claim_of_none_is_judged_only_for_effects_that_write() -> None:
    reads_env = ctx({"side_effects": ["environment"], "calls": ["os.environ.get"]})
    assert validate_enrichment(good(), reads_env).ok  # a read of os.environ may go unsaid
    assert validate_enrichment(good(), ctx({"side_effects": None})).ok  # no such facts


def test_effects_are_ruled_out_only_without_calls_and_attribute_writes() -> None:
    claim = good(side_effects=["Writes to the log file."])
    assert "calls nothing" in validate_enrichment(claim, ctx()).errors[0]
    assert validate_enrichment(claim, ctx({"calls": ["helper"]})).ok  # helper may write
    stores = "def set(self, v):\n    self.value = v"
    assert validate_enrichment(claim, ctx(code=stores)).ok


def test_mutation_of_arguments_needs_a_write_to_a_parameter() -> None:
    claim = good(side_effects=["Modifies the argument `a` in place."])
    calls = {"calls": ["sorted"]}
    assert "assigns to no parameter" in validate_enrichment(claim, ctx(calls)).errors[0]
    for code, facts in [
        ("def add(a, b=1):\n    a.total = b", calls),
        ("def add(a, b=1):\n    a[0] += b", calls),
        ("def add(a, b=1):\n    del a[b]", calls),
        (CODE, {"calls": ["a.append"]}),
    ]:
        assert validate_enrichment(claim, ctx(facts, code=code)).ok, code


@pytest.mark.parametrize(
    ("declared", "output", "why"),
    [
        ("R | None", "t.Callable[P, R | None]", "a type built around the declared R | None"),
        ("str", "_KeepOpenFile", "but the code declares -> str"),
        ("str", "`NoneType`", "but the code declares -> str"),
        ("None", "the opened file", "but the code declares -> None"),
        ("int", "list[int]", "a type built around the declared int"),
    ],
)
def test_outputs_the_declared_return_contradicts(declared: str, output: str, why: str) -> None:
    result = validate_enrichment(good(outputs=[output]), ctx({"returns": declared}))
    assert len(result.errors) == 1 and why in result.errors[0]


@pytest.mark.parametrize(
    ("declared", "output"),
    [
        ("R | None", "R | None"),
        ("R | None", "the result of `add`, or None"),
        ("t.IO[t.Any]", "IO"),
        ("t.TextIO", "IO[str]"),
        ("list[str]", "List[str]"),
        ("cabc.Iterator[t.AnyStr]", "Generator[str]"),
        ("str", "textwrap.shorten"),  # a function's name, not a type
        ("str", "a string"),
        ("t.Any", "_KeepOpenFile"),
        ("T", "str"),  # a type variable can be anything
        ("None", "None"),
        ("None", "nothing"),
        (None, "_KeepOpenFile"),
    ],
)
def test_outputs_merely_phrased_differently_are_kept(declared: str | None, output: str) -> None:
    result = validate_enrichment(good(outputs=[output]), ctx({"returns": declared}))
    assert result.ok, result.errors


def test_a_method_that_returns_self() -> None:
    code = "def __enter__(self):\n    return self"
    method = ctx(
        {"params": [{"name": "self"}], "returns": None},
        code=code,
        name="Lazy.__enter__",
        context="Inside class Lazy: class Lazy:",
    )
    wrong = validate_enrichment(good(inputs=[], outputs=["the underlying file"]), method)
    assert wrong.errors == ["outputs claims 'the underlying file', but the method returns self"]
    for output in ["the instance itself", "`self`", "the `Lazy` wrapper"]:
        assert validate_enrichment(good(inputs=[], outputs=[output]), method).ok, output


def test_a_method_summarised_as_its_class() -> None:
    method = ctx(name="Lazy.open", context="Inside class Lazy: class Lazy:")
    for summary in ["The `Lazy` class is a lazy file.", "`Lazy` is a lazy file wrapper."]:
        result = validate_enrichment(good(summary=summary), method)
        assert result.errors == ["summary describes the class Lazy, not the method Lazy.open"]
    for summary in [
        "The `Lazy` constructor stores the name.",
        "Opens the file of the `Lazy` wrapper.",
        "The `Lazy` class's file is opened here.",
    ]:
        assert validate_enrichment(good(summary=summary), method).ok, summary
    # A nested function is no method: its outer function may be its subject.
    nested = ctx(name="outer.inner", context="")
    assert validate_enrichment(good(summary="The `outer` function is a lazy file."), nested).ok


def test_prompt_echo_follows_the_prompt_text() -> None:
    """The instruction text is read from prompts.SYSTEM_PROMPT by import."""
    assert contradictions.instruction_text() == fold(SYSTEM_PROMPT)
    for field, items in [
        ("side_effects", ["I/O, mutation of arguments or shared state"]),
        ("side_effects", ["network, processes"]),
        ("side_effects", ["I/O", "network"]),
        ("pitfalls", ["edge cases, exceptions, performance"]),
        ("pitfalls", ["ways a caller can misuse it or be surprised"]),
    ]:
        result = validate_enrichment(good(**{field: items}), ctx({"calls": ["helper"]}))
        assert any("prompt" in error for error in result.errors), (items, result.errors)
    for field, items in [
        ("side_effects", ["I/O"]),  # vague, not false
        ("side_effects", ["Writes to the network socket."]),
        ("pitfalls", ["Raises on edge cases such as an empty list."]),
    ]:
        result = validate_enrichment(good(**{field: items}), ctx({"calls": ["helper"]}))
        assert result.ok, (items, result.errors)


@pytest.mark.parametrize(
    ("summary", "cut"),
    [
        ("Formats a filename for a stream with `errors=", True),
        ("Formats a filename for a stream with errors=", True),
        ("Returns the folder, which can be set by", True),
        ("Returns the folder (or the", True),
        ("Returns the folder,", True),
        ("Returns the folder.", False),
        ("Returns the lowercase posix form of a name", False),
        ("Returns `total`", False),
        ("The `add()`` function returns the sum.", False),  # closed, stray backtick
    ],
)
def test_a_summary_cut_at_its_bound(summary: str, cut: bool) -> None:
    result = validate_enrichment(good(summary=summary), ctx())
    assert result.ok is not cut, result.errors
    if cut:
        assert result.errors[0].startswith("summary is cut mid-sentence")


def test_safe_repairs_type_names_and_backward_evidence() -> None:
    result = validate_enrichment(
        good(
            outputs=["`NoneType` when nothing is found, else `Optional` data"],
            evidence=[{"field": "summary", "lines": [12, 10]}],
        ),
        ctx({"returns": None}),
    )
    assert result.ok, result.errors
    assert result.data is not None and result.data["evidence"][0]["lines"] == [10, 12]
    assert "evidence: 1 backward line ranges swapped" in result.repairs
