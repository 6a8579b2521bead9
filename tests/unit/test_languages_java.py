"""Java extraction: classes, records, interfaces, enums, methods and constructors."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlens_lsp.indexing.languages import java
from spanlens_lsp.indexing.languages.rules import RulesExtractor
from spanlens_lsp.indexing.spans import Span

FIXTURE = Path(__file__).parent.parent / "fixtures" / "java" / "Inventory.java"


@pytest.fixture(scope="module")
def extractor() -> RulesExtractor:
    return java.create("java")


def by_key(spans: list[Span]) -> dict[tuple[str, str, int], Span]:
    return {span.key: span for span in spans}


def test_fixture_spans(extractor: RulesExtractor) -> None:
    result = extractor.extract(FIXTURE.read_bytes())
    assert not result.has_errors
    assert [(s.name, s.kind, s.start_line, s.end_line, s.ordinal) for s in result.spans] == [
        ("Inventory", "class", 8, 52, 0),
        ("Inventory.Inventory", "method", 12, 14, 0),
        ("Inventory.add", "method", 17, 23, 0),
        ("Inventory.add", "method", 25, 32, 1),  # an overload
        ("Inventory.toString", "method", 34, 42, 0),  # from its annotation
        ("Inventory.Slot", "class", 45, 51, 0),
        ("Inventory.Slot.Slot", "method", 48, 50, 0),
        ("Item", "interface", 54, 60, 0),
        ("Item.name", "method", 55, 55, 0),
        ("Item.label", "method", 57, 59, 0),
        ("Level", "enum", 62, 69, 0),
        ("Level.LOW.weight", "method", 64, 64, 0),
        ("Level.weight", "method", 68, 68, 0),
        ("Pair", "class", 71, 75, 0),
        ("Pair.Pair", "method", 72, 74, 0),
    ]
    # the anonymous Runnable's run() is no span
    assert not any(s.name.endswith("run") for s in result.spans)


def test_name_ranges(extractor: RulesExtractor) -> None:
    spans = by_key(extractor.extract(FIXTURE.read_bytes()).spans)
    to_string = spans[("Inventory.toString", "method", 0)]
    assert (to_string.start_line, to_string.start_col) == (34, 4)
    assert (to_string.name_start_line, to_string.name_start_col) == (35, 18)
    assert to_string.name_end_col == 26
    inventory = spans[("Inventory", "class", 0)]
    assert (inventory.name_start_line, inventory.name_start_col) == (8, 13)


def test_facts(extractor: RulesExtractor) -> None:
    spans = by_key(extractor.extract(FIXTURE.read_bytes()).spans)
    add = spans[("Inventory.add", "method", 0)].facts
    assert add["signature"] == "public boolean add(T item)"
    assert add["params"] == [{"name": "item", "type": "T", "default": None}]
    assert add["returns"] == "boolean"
    assert add["doc"] == "Adds an item; returns false when full."
    assert (add["nesting"], add["branches"]) == (1, 1)
    overload = spans[("Inventory.add", "method", 1)].facts
    assert (overload["nesting"], overload["branches"]) == (2, 2)
    constructor = spans[("Inventory.Inventory", "method", 0)].facts
    assert constructor["returns"] is None
    label = spans[("Item.label", "method", 0)].facts
    assert label["params"] == [
        {"name": "prefix", "type": "String", "default": None},
        {"name": "widths", "type": "int...", "default": None},
    ]
    inventory = spans[("Inventory", "class", 0)].facts
    assert inventory["doc"] == "Keeps items in stock."
    assert inventory["signature"] == "public class Inventory<T extends Item>"
    assert inventory["fields"] == ["items", "limit"]
    assert inventory["members"] == ["Inventory", "add", "add", "toString", "Slot"]
    assert spans[("Pair", "class", 0)].facts["fields"] == ["key", "value"]
    assert spans[("Level", "enum", 0)].facts["fields"] == ["LOW", "HIGH"]


def test_class_hash_ignores_method_bodies(extractor: RulesExtractor) -> None:
    source = FIXTURE.read_text()
    before = by_key(extractor.extract(source.encode()).spans)
    cls = ("Inventory", "class", 0)
    add = ("Inventory.add", "method", 0)

    body_edit = source.replace("items.add(item);\n", "items.add(0, item);\n")
    after = by_key(extractor.extract(body_edit.encode()).spans)
    assert after[add].content_hash != before[add].content_hash
    assert after[cls].content_hash == before[cls].content_hash

    nested_edit = source.replace("this.index = index;", "this.index = index + 1;")
    after = by_key(extractor.extract(nested_edit.encode()).spans)
    assert after[cls].content_hash == before[cls].content_hash

    signature_edit = source.replace("public boolean add(T item)", "public boolean add(T item2)")
    after = by_key(extractor.extract(signature_edit.encode()).spans)
    assert after[cls].content_hash != before[cls].content_hash

    field_edit = source.replace("private int limit;", "private long limit;")
    after = by_key(extractor.extract(field_edit.encode()).spans)
    assert after[cls].content_hash != before[cls].content_hash


def test_syntax_error_keeps_valid_spans(extractor: RulesExtractor) -> None:
    source = b"""
class A {
    int ok() { return 2; }
    int broken() { return 1 + ; }
    int fine() { return 4; }
}
class B { void m() {} }
"""
    result = extractor.extract(source)
    assert result.has_errors
    assert [s.name for s in result.spans] == ["A.ok", "A.fine", "B", "B.m"]


CALLS = b"""
public class OrderService extends BaseService {
    private final List<Order> orders = new ArrayList<>();

    public OrderService(Repository repo) {
        super(repo);
        this.log = LoggerFactory.getLogger(OrderService.class);
    }

    public Receipt place(Order order) {
        validate(order);
        Map<String, Integer> counts = new java.util.HashMap<>();
        order.getItems().forEach(item -> counts.merge(item.sku(), 1, Integer::sum));
        List<String> empty = Collections.<String>emptyList();
        executor.submit(new Runnable() {
            public void run() { notifier.send(order.id()); }
        });
        System.out.println("placed " + order.id());
        this.repo.save(order);
        validate(order);
        return new Receipt<>(orders.get(0).total(), "ok".trim());
    }
}
"""


def test_calls_are_listed_once_in_order_as_written(extractor: RulesExtractor) -> None:
    spans = {s.name: s for s in extractor.extract(CALLS).spans}
    assert spans["OrderService.OrderService"].facts["calls"] == [
        "super",
        "LoggerFactory.getLogger",
    ]
    assert spans["OrderService.place"].facts["calls"] == [
        "validate",  # listed once, at its first call
        "java.util.HashMap",  # ``new`` calls the constructor, type arguments dropped
        "order.getItems().forEach",
        "order.getItems",
        "counts.merge",  # inside a lambda: counts for place
        "item.sku",  # ``Integer::sum`` is a reference, no call
        "Collections.emptyList",
        "executor.submit",
        "Runnable",
        "notifier.send",  # inside an anonymous class: counts for place
        "order.id",
        "System.out.println",
        "this.repo.save",
        "Receipt",
        "orders.get().total",
        "orders.get",
        "String.trim",
    ]
    # A class body's calls (field initialisers) are nobody's, as in Python.
    assert "calls" not in spans["OrderService"].facts
