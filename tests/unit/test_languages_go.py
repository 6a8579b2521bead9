"""Go extraction: functions, receiver methods, structs, interfaces, named function literals."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlens_lsp.indexing.languages import go
from spanlens_lsp.indexing.languages.rules import RulesExtractor
from spanlens_lsp.indexing.spans import Span

FIXTURE = Path(__file__).parent.parent / "fixtures" / "go" / "server.go"


@pytest.fixture(scope="module")
def extractor() -> RulesExtractor:
    return go.create("go")


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {span.name: span for span in spans if span.ordinal == 0}


def test_fixture_spans(extractor: RulesExtractor) -> None:
    result = extractor.extract(FIXTURE.read_bytes())
    assert not result.has_errors
    assert [(s.name, s.kind, s.start_line, s.end_line) for s in result.spans] == [
        ("Server", "struct", 9, 13),
        ("Store", "interface", 16, 19),
        ("Options", "struct", 23, 23),
        ("Codec", "interface", 24, 24),
        ("NewServer", "function", 29, 31),
        ("Server.Start", "method", 34, 50),
        ("Server.Start.handle", "function", 35, 39),
        ("Server.String", "method", 52, 52),
        ("Map", "function", 54, 60),
    ]


def test_name_ranges(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract(FIXTURE.read_bytes()).spans)
    start = spans["Server.Start"]
    assert (start.start_line, start.start_col) == (34, 0)
    assert (start.name_start_line, start.name_start_col, start.name_end_col) == (34, 17, 22)
    server = spans["Server"]
    assert (server.start_col, server.name_start_col, server.name_end_col) == (0, 5, 11)
    # inside ``type ( ... )`` the span is the one spec
    options = spans["Options"]
    assert (options.start_line, options.start_col, options.name_end_col) == (23, 1, 8)


def test_facts(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract(FIXTURE.read_bytes()).spans)
    start = spans["Server.Start"].facts
    assert start["signature"] == "func (s *Server) Start(retries int) error"
    assert start["params"] == [{"name": "retries", "type": "int", "default": None}]
    assert start["receiver"] == "s *Server"
    assert start["returns"] == "error"
    assert start["doc"] == "Start serves until the listener fails."
    # for > if > if/else-if; the literal's if is its own
    assert (start["nesting"], start["branches"]) == (3, 4)
    new_server = spans["NewServer"].facts
    assert new_server["params"] == [
        {"name": "addr", "type": "string", "default": None},
        {"name": "opts", "type": "...Options", "default": None},
    ]
    assert new_server["returns"] == "*Server"
    server = spans["Server"].facts
    assert server["signature"] == "type Server struct"
    assert server["doc"] == "Server serves requests until stopped."
    assert server["fields"] == ["Addr", "handler", "Logger"]
    assert server["members"] == ["Start", "String"]
    assert spans["Store"].facts["fields"] == ["Get", "Put"]
    assert spans["Options"].facts["signature"] == "type Options struct"
    assert spans["Options"].facts["doc"] == "Options configure a Server."


def test_params_sharing_a_type_and_unnamed() -> None:
    source = b"package p\nfunc F(a, b int, string) (n int, err error) { return }\n"
    (span,) = go.create("go").extract(source).spans
    assert [(p["name"], p["type"]) for p in span.facts["params"]] == [
        ("a", "int"),
        ("b", "int"),
        ("_", "string"),
    ]
    assert span.facts["returns"] == "(n int, err error)"


def test_generic_receiver() -> None:
    source = b"package p\nfunc (l *List[T]) Push(v T) {}\n"
    (span,) = go.create("go").extract(source).spans
    assert (span.name, span.kind) == ("List.Push", "method")


def test_struct_hash_tracks_fields_not_methods(extractor: RulesExtractor) -> None:
    source = FIXTURE.read_text()
    before = by_name(extractor.extract(source.encode()).spans)

    body_edit = source.replace("return &Server{Addr: addr}", "return &Server{Addr: addr + 1}")
    after = by_name(extractor.extract(body_edit.encode()).spans)
    assert after["NewServer"].content_hash != before["NewServer"].content_hash
    assert after["Server"].content_hash == before["Server"].content_hash
    assert after["Server.Start"].content_hash == before["Server.Start"].content_hash

    literal_edit = source.replace("w.WriteHeader(", "w.Header().Set(")
    after = by_name(extractor.extract(literal_edit.encode()).spans)
    assert after["Server.Start.handle"].content_hash != before["Server.Start.handle"].content_hash
    assert after["Server.Start"].content_hash != before["Server.Start"].content_hash

    field_edit = source.replace("\tAddr    string", "\tAddr    []byte")
    after = by_name(extractor.extract(field_edit.encode()).spans)
    assert after["Server"].content_hash != before["Server"].content_hash


def test_syntax_error_keeps_valid_spans(extractor: RulesExtractor) -> None:
    source = b"""package p

func Good() int { return 1 }

func Broken() int { return 1 + }

type T struct { a int }

func (t T) Fine() int { return t.a }
"""
    result = extractor.extract(source)
    assert result.has_errors
    assert [s.name for s in result.spans] == ["Good", "T", "T.Fine"]


CALLS = b"""package cache

// Load fills the cache and reports each miss.
func (c *Cache) Load(keys []string) error {
	defer c.mu.Unlock()
	c.mu.Lock()
	for _, k := range keys {
		if v, err := c.store.Get(k); err == nil {
			c.items[k] = v
		} else {
			fmt.Println("miss", k)
			log.Printf("miss %s", strings.ToUpper(k))
		}
	}
	go func() { c.metrics.Add(len(keys)) }()
	c.hooks[0](c)
	body := []byte(c.name)
	slices.Sort[[]string](keys)
	c.client().Do(NewRequest(body)).Close()
	retry := func() error { return c.refresh() }
	fmt.Println("done")
	return retry()
}

type Cache struct{ name string }
"""


def test_calls_are_listed_once_in_order_as_written(extractor: RulesExtractor) -> None:
    spans = by_name(extractor.extract(CALLS).spans)
    assert spans["Cache.Load"].facts["calls"] == [
        "c.mu.Unlock",
        "c.mu.Lock",
        "c.store.Get",
        "fmt.Println",  # listed once, at its first call
        "log.Printf",
        "strings.ToUpper",
        "(...)",  # the anonymous literal called by ``go``
        "c.metrics.Add",  # inside it: counts for Load
        "len",
        "c.hooks[]",
        "slices.Sort",  # explicit type arguments dropped; ``[]byte(...)`` is no call
        "c.client().Do().Close",
        "c.client().Do",
        "c.client",
        "NewRequest",
        "retry",
    ]
    # A named literal is its own span and keeps its calls.
    assert spans["Cache.Load.retry"].facts["calls"] == ["c.refresh"]
    assert "calls" not in spans["Cache"].facts  # a struct has none (as a Python class)


def test_calls_are_capped(extractor: RulesExtractor) -> None:
    body = "\n".join(f"\tf{i}()" for i in range(80))
    spans = extractor.extract(f"package p\nfunc many() {{\n{body}\n}}\n".encode()).spans
    assert spans[0].facts["calls"] == [f"f{i}" for i in range(64)]
