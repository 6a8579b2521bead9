"""Rust extraction: functions, structs, enums, traits, impl blocks, modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlens_lsp.indexing.languages import rust
from spanlens_lsp.indexing.languages.rules import RulesExtractor
from spanlens_lsp.indexing.spans import Span

FIXTURE = Path(__file__).parent.parent / "fixtures" / "rust" / "shapes.rs"


@pytest.fixture(scope="module")
def extractor() -> RulesExtractor:
    return rust.create("rust")


def by_key(spans: list[Span]) -> dict[tuple[str, str, int], Span]:
    return {span.key: span for span in spans}


def test_fixture_spans(extractor: RulesExtractor) -> None:
    result = extractor.extract(FIXTURE.read_bytes())
    assert not result.has_errors
    assert [(s.name, s.kind, s.start_line, s.end_line) for s in result.spans] == [
        ("Point", "struct", 5, 8),
        ("Kind", "enum", 11, 14),
        ("Shape", "trait", 17, 24),
        ("Shape.area", "method", 19, 19),
        ("Shape.describe", "method", 21, 23),
        ("Point", "impl", 26, 37),
        ("Point.new", "method", 28, 30),
        ("Point.distance", "method", 32, 36),
        ("fmt::Display for Point", "impl", 39, 43),
        ("Point.fmt", "method", 40, 42),
        ("Point", "impl", 45, 49),
        ("Point.origin", "method", 46, 48),
        ("classify", "function", 51, 70),
        ("classify.label", "function", 52, 58),
        ("geometry.area", "function", 73, 75),
    ]
    # two ``impl Point`` blocks, and a struct of the same name, all keep distinct keys
    keys = [s.key for s in result.spans]
    assert len(set(keys)) == len(keys)
    assert ("Point", "impl", 1) in keys


def test_name_ranges(extractor: RulesExtractor) -> None:
    spans = by_key(extractor.extract(FIXTURE.read_bytes()).spans)
    point = spans[("Point", "struct", 0)]
    assert (point.start_line, point.start_col) == (5, 0)  # after the attribute
    assert (point.name_start_col, point.name_end_col) == (11, 16)
    new = spans[("Point.new", "method", 0)]
    assert (new.name_start_line, new.name_start_col, new.name_end_col) == (28, 11, 14)


def test_facts(extractor: RulesExtractor) -> None:
    spans = by_key(extractor.extract(FIXTURE.read_bytes()).spans)
    distance = spans[("Point.distance", "method", 0)].facts
    assert distance["signature"] == "pub fn distance(&self, other: &Point) -> f64"
    assert distance["params"] == [
        {"name": "self", "type": None, "default": None},
        {"name": "other", "type": "&Point", "default": None},
    ]
    assert distance["returns"] == "f64"
    new = spans[("Point.new", "method", 0)].facts
    assert new["doc"] == "A point at (x, y)."
    assert new["returns"] == "Self"
    # the doc comment sits above the attribute
    point = spans[("Point", "struct", 0)].facts
    assert point["doc"] == "A point on the plane."
    assert point["fields"] == ["x", "y"]
    assert spans[("Kind", "enum", 0)].facts["fields"] == ["Circle", "Square"]
    area = spans[("Shape.area", "method", 0)].facts
    assert area["signature"] == "fn area(&self) -> f64"
    assert area["doc"] == "The area."
    assert spans[("Shape", "trait", 0)].facts["members"] == ["area", "describe"]
    assert spans[("fmt::Display for Point", "impl", 0)].facts["members"] == ["fmt"]
    classify = spans[("classify", "function", 0)].facts
    # for > if, else-if chain flat; the nested fn's match arms are its own
    assert (classify["nesting"], classify["branches"]) == (2, 3)
    assert spans[("classify.label", "function", 0)].facts["branches"] == 3


def test_generic_impl_names() -> None:
    source = b"""
impl<T> From<T> for Wrapper<T> { fn from(t: T) -> Self { Wrapper(t) } }
impl<'a> Iterator for &'a mut Cursor { fn next(&mut self) -> Option<u8> { None } }
"""
    names = [(s.name, s.kind) for s in rust.create("rust").extract(source).spans]
    assert names == [
        ("From<T> for Wrapper", "impl"),
        ("Wrapper.from", "method"),
        ("Iterator for Cursor", "impl"),
        ("Cursor.next", "method"),
    ]


def test_impl_hash_ignores_method_bodies(extractor: RulesExtractor) -> None:
    source = FIXTURE.read_text()
    before = by_key(extractor.extract(source.encode()).spans)
    impl = ("Point", "impl", 0)
    distance = ("Point.distance", "method", 0)

    body_edit = source.replace("(dx * dx + dy * dy).sqrt()", "dx.hypot(dy)")
    after = by_key(extractor.extract(body_edit.encode()).spans)
    assert after[distance].content_hash != before[distance].content_hash
    assert after[impl].content_hash == before[impl].content_hash

    signature_edit = source.replace("other: &Point) -> f64", "other: Point) -> f64")
    after = by_key(extractor.extract(signature_edit.encode()).spans)
    assert after[impl].content_hash != before[impl].content_hash

    default_edit = source.replace('format!("area {}"', 'format!("area: {}"')
    after = by_key(extractor.extract(default_edit.encode()).spans)
    assert after[("Shape", "trait", 0)].content_hash == before[("Shape", "trait", 0)].content_hash

    field_edit = source.replace("pub y: f64,", "pub y: f32,")
    after = by_key(extractor.extract(field_edit.encode()).spans)
    struct = ("Point", "struct", 0)
    assert after[struct].content_hash != before[struct].content_hash


def test_syntax_error_keeps_valid_spans(extractor: RulesExtractor) -> None:
    source = b"""
fn good() -> i32 { 1 }
fn broken() { let x = ; }
impl P { fn ok(&self) {} }
fn also_good(a: i32) -> i32 { a }
"""
    result = extractor.extract(source)
    assert result.has_errors
    assert [s.name for s in result.spans] == ["good", "P", "P.ok", "also_good"]


CALLS = b"""
impl Inventory {
    /// Loads every item, logging what fails.
    pub async fn load(&mut self, path: &Path) -> Result<usize> {
        let text = fs::read_to_string(path)?;
        let mut items = Vec::<Item>::with_capacity(16);
        for line in text.lines() {
            match line.parse::<Item>() {
                Ok(item) => items.push(item),
                Err(e) => eprintln!("skip {}: {}", line, e.to_string()),
            }
        }
        let names: Vec<_> = items.iter().map(|i| i.name.clone()).collect();
        self.client.fetch(&names).await?.apply(self);
        assert_eq!(self.count(), names.len());
        self.save()?;
        fn checksum(data: &[u8]) -> u32 {
            crc32::hash(data)
        }
        Ok(Self::total(&items))
    }
}
"""


def test_calls_list_paths_methods_and_macros(extractor: RulesExtractor) -> None:
    spans = {s.name: s for s in extractor.extract(CALLS).spans}
    assert spans["Inventory.load"].facts["calls"] == [
        "fs::read_to_string",
        "Vec::with_capacity",  # generic arguments dropped
        "text.lines",
        "line.parse",  # ``Ok(item) =>`` is a pattern, no call
        "items.push",
        "eprintln!",  # a macro is a call, with its ``!``
        "e.to_string",  # read from the macro's tokens
        "items.iter().map().collect",
        "items.iter().map",
        "items.iter",
        "i.name.clone",  # inside a closure: counts for load
        "self.client.fetch().await?.apply",
        "self.client.fetch",
        "assert_eq!",
        "self.count",
        "names.len",
        "self.save",
        "Ok",  # a tuple variant is called like a function
        "Self::total",
    ]
    # A nested ``fn`` is its own span and keeps its calls.
    assert spans["Inventory.load.checksum"].facts["calls"] == ["crc32::hash"]
    assert "calls" not in spans["Inventory"].facts  # an impl block has none


def test_attribute_arguments_are_no_calls(extractor: RulesExtractor) -> None:
    source = b"fn f() {\n    #[cfg(any(unix, windows))]\n    let x = 1;\n    g(x);\n}\n"
    assert extractor.extract(source).spans[0].facts["calls"] == ["g"]
