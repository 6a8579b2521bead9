"""JavaScript extraction: spans, names, ranges, facts, skeleton hashes, syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlens_lsp.indexing.languages import javascript
from spanlens_lsp.indexing.languages.rules import RulesExtractor
from spanlens_lsp.indexing.spans import Span

FIXTURE = Path(__file__).parent.parent / "fixtures" / "javascript" / "cart.js"


@pytest.fixture(scope="module")
def extractor() -> RulesExtractor:
    return javascript.create("javascript")


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {span.name: span for span in spans if span.ordinal == 0}


def test_fixture_spans(extractor: RulesExtractor) -> None:
    result = extractor.extract(FIXTURE.read_bytes())
    assert not result.has_errors
    assert [(s.name, s.kind, s.start_line, s.end_line) for s in result.spans] == [
        ("total", "function", 7, 22),
        ("total.round", "function", 18, 20),
        ("describe", "function", 24, 24),
        ("Cart", "class", 27, 56),
        ("Cart.constructor", "method", 30, 33),
        ("Cart.size", "method", 35, 37),
        ("Cart.size", "method", 39, 41),
        ("Cart.add", "method", 43, 47),
        ("Cart.onChange", "method", 49, 51),
        ("Cart.ids", "method", 53, 55),
        ("default", "function", 67, 69),
        ("counter", "function", 71, 74),
    ]
    # getter and setter share a name and are told apart by ordinal
    assert [s.ordinal for s in result.spans if s.name == "Cart.size"] == [0, 1]


def test_exported_declaration_range_and_name_range(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract(FIXTURE.read_bytes()).spans)
    total = spans["total"]
    # the span is the declaration inside ``export``: it starts at ``function``
    assert (total.start_line, total.start_col) == (7, 7)
    assert (total.name_start_line, total.name_start_col, total.name_end_col) == (7, 16, 21)
    add = spans["Cart.add"]
    assert (add.name_start_line, add.name_start_col, add.name_end_col) == (43, 2, 5)
    # an anonymous default export is named by its ``default`` keyword
    default = spans["default"]
    assert (default.name_start_line, default.name_start_col, default.name_end_col) == (67, 7, 14)


def test_facts(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract(FIXTURE.read_bytes()).spans)
    total = spans["total"].facts
    assert total["signature"] == "function total(items, taxRate = 0.2, ...extras)"
    assert total["params"] == [
        {"name": "items", "type": None, "default": None},
        {"name": "taxRate", "type": None, "default": "0.2"},
        {"name": "...extras", "type": None, "default": None},
    ]
    assert total["returns"] is None
    # the JSDoc above ``export`` belongs to the function
    assert total["doc"] == "Total price of the items, taxes included.\n@param {Array} items"
    # for > if, with the else-if chain as deep as its if; for, if, else if
    assert (total["nesting"], total["branches"]) == (2, 3)
    assert total["lines"] == 16
    assert total["tokens"] > 0
    assert spans["describe"].facts["signature"] == "const describe = (cart) =>"
    cart = spans["Cart"].facts
    assert cart["signature"] == "class Cart extends Base"
    assert cart["doc"] == "A cart of items."
    assert cart["members"] == ["constructor", "size", "size", "add", "onChange", "ids"]
    assert cart["fields"] == ["#items"]


def test_object_literal_methods_are_no_spans(extractor: RulesExtractor) -> None:
    names = {s.name for s in extractor.extract(FIXTURE.read_bytes()).spans}
    assert not {"click", "hover", "handlers", "handlers.click"} & names


def test_nested_names() -> None:
    source = b"""
function outer() {
  function inner() {
    const deepest = () => 1;
  }
  [1, 2].forEach((x) => {
    function inCallback() {}
  });
}
const a = () => 1, b = function named() {};
const Klass = class { m() {} };
"""
    names = [s.name for s in javascript.create("javascript").extract(source).spans]
    assert names == [
        "outer",
        "outer.inner",
        "outer.inner.deepest",
        "outer.inCallback",
        "a",
        "b",
        "Klass",
        "Klass.m",
    ]


def test_anonymous_callbacks_count_toward_their_function() -> None:
    source = b"function f(xs) { return xs.map((x) => { if (x) { return x ? 1 : 2; } }); }"
    (span,) = javascript.create("javascript").extract(source).spans
    assert (span.facts["nesting"], span.facts["branches"]) == (1, 2)


def test_class_hash_ignores_method_bodies(extractor: RulesExtractor) -> None:
    source = FIXTURE.read_text()
    before = by_name(extractor.extract(source.encode()).spans)

    body_edit = source.replace("this.#items.push(item);", "this.#items.unshift(item);")
    after = by_name(extractor.extract(body_edit.encode()).spans)
    assert after["Cart.add"].content_hash != before["Cart.add"].content_hash
    assert after["Cart"].content_hash == before["Cart"].content_hash
    assert after["Cart.constructor"].content_hash == before["Cart.constructor"].content_hash

    arrow_edit = source.replace('this.emit("change", event);', 'this.emit("changed", event);')
    after = by_name(extractor.extract(arrow_edit.encode()).spans)
    assert after["Cart"].content_hash == before["Cart"].content_hash

    signature_edit = source.replace("add(item, quantity = 1)", "add(item, quantity = 2)")
    after = by_name(extractor.extract(signature_edit.encode()).spans)
    assert after["Cart"].content_hash != before["Cart"].content_hash

    field_edit = source.replace("#items = [];", "#items = new Set();")
    after = by_name(extractor.extract(field_edit.encode()).spans)
    assert after["Cart"].content_hash != before["Cart"].content_hash


def test_whitespace_and_moves_keep_hashes(extractor: RulesExtractor) -> None:
    source = FIXTURE.read_text()
    before = by_name(extractor.extract(source.encode()).spans)
    moved = "\n\n// a new comment\n" + source.replace("  let sum = 0;", "  let sum = 0;   ")
    after = by_name(extractor.extract(moved.encode()).spans)
    assert after["total"].start_line == before["total"].start_line + 3
    assert after["total"].content_hash == before["total"].content_hash


def test_syntax_error_keeps_valid_spans(extractor: RulesExtractor) -> None:
    source = b"""
function good() { return 1; }
class A {
  ok() { return 2; }
  broken() { let x = ; }
  fine() { return 4; }
}
function alsoGood(a) { return a; }
"""
    result = extractor.extract(source)
    assert result.has_errors
    names = [s.name for s in result.spans]
    assert names == ["good", "A.ok", "A.fine", "alsoGood"]


def test_a_trailing_comment_on_the_line_above_is_not_a_doc_comment() -> None:
    source = b"let x = 1; // not a doc\nfunction f() {}\n// real doc\nfunction g() {}\n"
    spans = {s.name: s for s in javascript.create("javascript").extract(source).spans}
    assert spans["f"].facts["doc"] is None
    assert spans["g"].facts["doc"] == "real doc"


CALLS = b"""
class Cart {
  total = computeTotal();

  async checkout(user) {
    this.validate(user);
    const order = new Order(user.id, this.items);
    const res = await fetch(API.url("/orders"), { body: JSON.stringify(order) });
    this.items.filter((i) => i.ok).forEach((i) => log.debug(i.name));
    user.profile?.notify("ordered");
    handlers[order.kind](order);
    const total = this.items.reduce(sum, 0);
    console.log(`total ${format(total)}`);
    const save = () => this.store.put(order);
    save();
    this.validate(order);
    return (await res.json()).items.map(toId);
  }
}
"""


def test_calls_are_listed_once_in_order_as_written(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract(CALLS).spans)
    assert spans["Cart.checkout"].facts["calls"] == [
        "this.validate",  # listed once, at its first call
        "Order",  # ``new Order(...)`` calls the constructor
        "fetch",
        "API.url",
        "JSON.stringify",
        "this.items.filter().forEach",
        "this.items.filter",
        "log.debug",  # inside an anonymous callback: counts for checkout
        "user.profile.notify",
        "handlers[]",
        "this.items.reduce",
        "console.log",
        "format",
        "save",
        "(...).items.map",  # an awaited receiver is elided
        "res.json",
    ]
    # A named function value is its own span and keeps its calls.
    assert spans["Cart.checkout.save"].facts["calls"] == ["this.store.put"]
    # A class body's calls (field initialisers) are nobody's, as in Python.
    assert "calls" not in spans["Cart"].facts


def test_calls_in_a_nested_header_belong_to_the_enclosing_function(
    extractor: RulesExtractor,
) -> None:
    # As in Python: default values and base classes are evaluated where the definition
    # stands, so they are the enclosing function's calls, not the nested definition's.
    source = b"""
function setup(app) {
  function route(path, opts = defaults(app)) { return app.get(path, opts); }
  const Model = class extends mixin(Base) {};
  route("/");
}
"""
    spans = by_name(extractor.extract(source).spans)
    assert spans["setup"].facts["calls"] == ["defaults", "mixin", "route"]
    assert spans["setup.route"].facts["calls"] == ["app.get"]
