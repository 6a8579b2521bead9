"""TypeScript and TSX extraction: typed facts, interfaces, enums, namespaces, JSX."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlens_lsp.indexing.languages import typescript
from spanlens_lsp.indexing.languages.rules import RulesExtractor
from spanlens_lsp.indexing.spans import Span

FIXTURES = Path(__file__).parent.parent / "fixtures" / "typescript"


@pytest.fixture(scope="module")
def extractor() -> RulesExtractor:
    return typescript.create("typescript")


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {span.name: span for span in spans if span.ordinal == 0}


def test_fixture_spans(extractor: RulesExtractor) -> None:
    result = extractor.extract((FIXTURES / "store.ts").read_bytes())
    assert not result.has_errors
    assert [(s.name, s.kind, s.start_line, s.end_line) for s in result.spans] == [
        ("Entity", "interface", 1, 4),
        ("Status", "enum", 6, 9),
        ("Repository", "class", 14, 34),
        ("Repository.validate", "method", 17, 17),
        ("Repository.save", "method", 20, 29),
        ("Repository.find", "method", 31, 33),
        # the overload signature above the implementation is no span of its own
        ("parse", "function", 37, 39),
        ("Util.clamp", "function", 42, 44),
        ("byId", "function", 47, 48),
    ]


def test_name_ranges(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract((FIXTURES / "store.ts").read_bytes()).spans)
    repository = spans["Repository"]
    assert (repository.start_line, repository.start_col) == (14, 7)  # ``abstract class``
    assert (repository.name_start_col, repository.name_end_col) == (22, 32)
    save = spans["Repository.save"]
    assert (save.name_start_line, save.name_start_col, save.name_end_col) == (20, 2, 6)


def test_typed_facts(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract((FIXTURES / "store.ts").read_bytes()).spans)
    save = spans["Repository.save"].facts
    assert save["signature"] == "save(item: T, overwrite: boolean = false): boolean"
    assert save["params"] == [
        {"name": "item", "type": "T", "default": None},
        {"name": "overwrite", "type": "boolean", "default": "false"},
    ]
    assert save["returns"] == "boolean"
    assert save["doc"] == "Stores an item; returns whether it was new."
    assert (save["nesting"], save["branches"]) == (1, 2)
    parse = spans["parse"].facts
    assert parse["params"][1] == {"name": "strict", "type": "boolean", "default": None}
    assert parse["returns"] == "Entity | null"
    assert spans["byId"].facts["returns"] == "T | undefined"
    validate = spans["Repository.validate"].facts
    assert validate["signature"] == "abstract validate(item: T): boolean"
    entity = spans["Entity"].facts
    assert entity["doc"] == "Something with an id."
    assert entity["fields"] == ["id", "touch"]
    assert spans["Status"].facts["fields"] == ["Active", "Archived"]
    repository = spans["Repository"].facts
    assert repository["members"] == ["validate", "save", "find"]
    assert repository["signature"] == "abstract class Repository<T extends Entity>"


def test_class_hash_ignores_method_bodies(extractor: RulesExtractor) -> None:
    source = (FIXTURES / "store.ts").read_text()
    before = by_name(extractor.extract(source.encode()).spans)

    body_edit = source.replace('throw new Error("invalid");', 'throw new TypeError("invalid");')
    after = by_name(extractor.extract(body_edit.encode()).spans)
    assert after["Repository.save"].content_hash != before["Repository.save"].content_hash
    assert after["Repository"].content_hash == before["Repository"].content_hash

    signature_edit = source.replace("find(id: string)", "find(id: number)")
    after = by_name(extractor.extract(signature_edit.encode()).spans)
    assert after["Repository"].content_hash != before["Repository"].content_hash

    interface_edit = source.replace("  id: string;", "  id: number;")
    after = by_name(extractor.extract(interface_edit.encode()).spans)
    assert after["Entity"].content_hash != before["Entity"].content_hash


def test_tsx_with_jsx() -> None:
    result = typescript.create("tsx").extract((FIXTURES / "list.tsx").read_bytes())
    assert not result.has_errors
    assert [(s.name, s.kind, s.start_line, s.end_line) for s in result.spans] == [
        ("Props", "interface", 2, 5),
        ("List", "function", 8, 16),
        ("List.renderItem", "function", 9, 9),
        ("Button", "function", 18, 18),
        ("Counter", "class", 20, 24),
        ("Counter.render", "method", 21, 23),
    ]
    spans = by_name(result.spans)
    assert spans["List"].facts["params"] == [
        {"name": "{ title, items }", "type": "Props", "default": None}
    ]
    assert spans["List"].facts["returns"] == "JSX.Element"
    assert spans["List"].facts["branches"] == 1  # the ?: inside the JSX


def test_syntax_error_keeps_valid_spans(extractor: RulesExtractor) -> None:
    source = b"""
interface Ok { a: number }
function good(a: number): number { return a; }
function broken(a: number): number { return a +; }
class C { m(): void {} }
"""
    result = extractor.extract(source)
    assert result.has_errors
    assert [s.name for s in result.spans] == ["Ok", "good", "C", "C.m"]


CALLS = b"""
export class Repo<T extends Entity> {
  private cache = new Map<string, T>();

  async find(id: string): Promise<T | undefined> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const row = await this.db!.query<T>(sql`select * from t where id = ${id}`);
    const items = parse<T[]>(row).map((r) => this.decode<T>(r));
    super.touch(id);
    return new Proxy<T>(items[0]!, new Handler<T>());
  }
}
"""


def test_calls_drop_type_arguments_and_non_null(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract(CALLS).spans)
    assert spans["Repo.find"].facts["calls"] == [
        "this.cache.get",
        "this.db.query",
        "sql",  # a tagged template calls its tag
        "parse().map",
        "parse",
        "this.decode",
        "super.touch",
        "Proxy",
        "Handler",
    ]
    assert "calls" not in spans["Repo"].facts
