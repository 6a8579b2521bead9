"""Python extraction: spans, qualified names, ranges, parser facts, skeleton hashing."""

from __future__ import annotations

import ast
import sysconfig
import textwrap
from pathlib import Path

import pytest

from spanlens_lsp.indexing.languages import python
from spanlens_lsp.indexing.languages.python import PythonExtractor
from spanlens_lsp.indexing.spans import Span

FIXTURE = Path(__file__).parent.parent / "fixtures" / "python" / "shop.py"


@pytest.fixture(scope="module")
def extractor() -> PythonExtractor:
    return python.create("python")


def extract(extractor: PythonExtractor, code: str) -> list[Span]:
    return extractor.extract(textwrap.dedent(code).encode()).spans


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {span.name: span for span in spans if span.ordinal == 0}


def facts_of(extractor: PythonExtractor, code: str, name: str) -> dict:
    return by_name(extract(extractor, code))[name].facts


# --- spans, names, ranges ------------------------------------------------------------------


def test_fixture_spans(extractor: PythonExtractor) -> None:
    result = extractor.extract(FIXTURE.read_bytes())
    assert not result.has_errors
    assert [(s.name, s.kind, s.ordinal, s.start_line, s.end_line) for s in result.spans] == [
        ("load_prices", "function", 0, 13, 27),
        ("Cart", "class", 0, 30, 66),
        ("Cart.__init__", "method", 0, 36, 38),
        ("Cart.total", "method", 0, 40, 42),
        ("Cart.total", "method", 1, 44, 46),
        ("Cart.checkout", "method", 0, 48, 60),
        ("Cart.checkout.attempt", "function", 0, 51, 53),
        ("Cart.Line", "class", 0, 62, 66),
        ("Cart.Line.cost", "method", 0, 65, 66),
        ("deploy", "function", 0, 69, 75),
    ]


def test_decorated_span_covers_decorators_and_names_the_identifier(
    extractor: PythonExtractor,
) -> None:
    spans = extractor.extract(FIXTURE.read_bytes()).spans
    getter, setter = (s for s in spans if s.name == "Cart.total")
    # ``@property`` (0-based line 40) is part of the span, so hovering it finds the method
    assert (getter.start_line, getter.start_col) == (40, 4)
    assert (getter.name_start_line, getter.name_start_col, getter.name_end_col) == (41, 8, 13)
    assert (setter.start_line, setter.name_start_line) == (44, 45)
    assert getter.facts["decorators"] == ["property"]
    assert setter.facts["decorators"] == ["total.setter"]
    cart = by_name(spans)["Cart"]
    assert (cart.start_col, cart.name_start_col, cart.name_end_col) == (0, 6, 10)
    assert (cart.end_line, cart.end_col) == (66, 45)


def test_nested_and_async_names_and_kinds(extractor: PythonExtractor) -> None:
    spans = extract(
        extractor,
        """
        async def fetch(url):
            async def retry():
                def log():
                    pass
            class Result:
                def ok(self):
                    def check():
                        pass

        class Outer:
            class Inner:
                async def run(self):
                    pass
            if FAST:
                def speed(self):
                    pass
        """,
    )
    assert [(s.name, s.kind) for s in spans] == [
        ("fetch", "function"),
        ("fetch.retry", "function"),
        ("fetch.retry.log", "function"),
        ("fetch.Result", "class"),
        ("fetch.Result.ok", "method"),
        ("fetch.Result.ok.check", "function"),
        ("Outer", "class"),
        ("Outer.Inner", "class"),
        ("Outer.Inner.run", "method"),
        # defined under ``if`` in a class body: still a method of the class
        ("Outer.speed", "method"),
    ]
    assert [s.facts["is_async"] for s in spans if s.kind != "class"] == [
        True,
        True,
        False,
        False,
        False,
        True,
        False,
    ]


def test_duplicate_definitions_get_ordinals(extractor: PythonExtractor) -> None:
    spans = extract(
        extractor,
        """
        if sys.platform == "win32":
            def home():
                return "C:\\\\"
        else:
            def home():
                return "/"
        """,
    )
    assert [s.key for s in spans] == [("home", "function", 0), ("home", "function", 1)]


def test_utf16_columns(extractor: PythonExtractor) -> None:
    # LSP columns count UTF-16 units: the emoji is two of them
    spans = extract(extractor, 'x = "😀"; y = 1\nclass É:\n    pass\n')
    cls = spans[0]
    assert (cls.name, cls.name_start_col, cls.name_end_col) == ("É", 6, 7)


# --- function facts ------------------------------------------------------------------------


def test_signature_params_returns_docstring(extractor: PythonExtractor) -> None:
    facts = facts_of(
        extractor,
        '''
        async def fetch(
            url: str,  # where
            *,
            timeout: float = 5.0,
        ) -> bytes:
            """
            Fetch a URL.

                Indented detail stays indented.
            """
            return b""
        ''',
        "fetch",
    )
    assert facts["signature"] == "async def fetch(url: str, *, timeout: float = 5.0) -> bytes"
    assert facts["params"] == [
        {"name": "url", "annotation": "str", "default": None, "kind": "positional"},
        {"name": "timeout", "annotation": "float", "default": "5.0", "kind": "keyword_only"},
    ]
    assert facts["returns"] == "bytes"
    assert facts["docstring"] == "Fetch a URL.\n\n    Indented detail stays indented."
    assert facts["is_async"] is True
    assert facts["lines"] == 11


def test_param_kinds(extractor: PythonExtractor) -> None:
    facts = facts_of(
        extractor,
        """
        class C:
            def m(self, a, /, b: int = 1, *args: str, c, d=None, **kw: object) -> None:
                pass
        """,
        "C.m",
    )
    assert [(p["name"], p["kind"], p["annotation"], p["default"]) for p in facts["params"]] == [
        ("self", "positional_only", None, None),
        ("a", "positional_only", None, None),
        ("b", "positional", "int", "1"),
        ("args", "var_positional", "str", None),
        ("c", "keyword_only", None, None),
        ("d", "keyword_only", None, "None"),
        ("kw", "var_keyword", "object", None),
    ]
    assert facts["returns"] == "None"
    assert facts["signature"] == (
        "def m(self, a, /, b: int = 1, *args: str, c, d=None, **kw: object) -> None"
    )


def test_docstring_forms(extractor: PythonExtractor) -> None:
    spans = by_name(
        extract(
            extractor,
            """
            def raw():
                r'''Matches \\d+.'''
            def escaped():
                "One.\\nTwo."
            def fstring():
                f"not {a} docstring"
            def late():
                x = 1
                "not a docstring"
            def commented():
                # a comment first is fine
                '''Doc.'''
            """,
        )
    )
    assert spans["raw"].facts["docstring"] == "Matches \\d+."
    assert spans["escaped"].facts["docstring"] == "One.\nTwo."
    assert spans["fstring"].facts["docstring"] is None
    assert spans["late"].facts["docstring"] is None
    assert spans["commented"].facts["docstring"] == "Doc."


def test_raises_and_calls(extractor: PythonExtractor) -> None:
    facts = facts_of(
        extractor,
        """
        def save(self, path, retry=make_default()):
            try:
                data = os.path.join(path, "x")
                self.store.put(data)
                open(path).read()
                super().__init__()
                ", ".join(parts)
            except KeyError as exc:
                raise errors.NotFound(path) from exc
            except OSError:
                raise
            if not data:
                raise ValueError
            raise ValueError("again")
        """,
        "save",
    )
    assert facts["raises"] == ["errors.NotFound", "ValueError"]
    assert facts["calls"] == [
        "os.path.join",
        "self.store.put",
        "open().read",
        "open",
        "super().__init__",
        "super",
        "str.join",
        "errors.NotFound",
        "ValueError",
    ]
    # ``make_default()`` runs when the def runs, in the enclosing scope
    assert "make_default" not in facts["calls"]


def test_calls_are_capped(extractor: PythonExtractor) -> None:
    body = "\n".join(f"    f{i}()" for i in range(100))
    facts = facts_of(extractor, f"def many():\n{body}\n", "many")
    assert facts["calls"] == [f"f{i}" for i in range(64)]


def test_nested_definitions_keep_their_own_facts(extractor: PythonExtractor) -> None:
    spans = by_name(
        extract(
            extractor,
            """
            def outer():
                setup()

                @retrying(3)
                def inner():
                    if ready():
                        print("x")
                    raise RuntimeError

                class Helper:
                    def run(self):
                        subprocess.run(["ls"])

                return inner()
            """,
        )
    )
    outer = spans["outer"].facts
    assert outer["calls"] == ["setup", "retrying", "inner"]
    assert outer["raises"] == []
    assert outer["side_effects"] == []
    assert (outer["nesting"], outer["branches"]) == (0, 0)
    inner = spans["outer.inner"].facts
    assert inner["calls"] == ["ready", "print"]
    assert inner["raises"] == ["RuntimeError"]
    assert inner["side_effects"] == ["printing"]
    assert (inner["nesting"], inner["branches"]) == (1, 1)
    assert spans["outer.Helper.run"].facts["side_effects"] == ["subprocess"]


@pytest.mark.parametrize(
    ("body", "effect"),
    [
        ("open(path, 'w').write(text)", "file_io"),
        ("Path(path).write_text(text)", "file_io"),
        ("self.target.unlink()", "file_io"),
        ("os.makedirs(path)", "file_io"),
        ("shutil.rmtree(path)", "file_io"),
        ("self.stream.write(text)", "file_io"),
        ("file.writelines(args)", "file_io"),
        ("file.flush()", "file_io"),
        ("tempfile.mkstemp()", "file_io"),
        ("sock.sendall(body)", "network"),
        ("os.kill(x, 9)", "subprocess"),
        ("requests.post(url, json=body)", "network"),
        ("httpx.get(url)", "network"),
        ("urllib.request.urlopen(url)", "network"),
        ("socket.create_connection(addr)", "network"),
        ("subprocess.check_output(['git', 'status'])", "subprocess"),
        ("os.system('make')", "subprocess"),
        ("os.execvp('sh', args)", "subprocess"),
        ("return os.environ['HOME']", "environment"),
        ("os.environ['MODE'] = 'fast'", "environment"),
        ("return os.getenv('HOME')", "environment"),
        ("return os.environ.get('HOME')", "environment"),
        ("print('hello')", "printing"),
        ("sys.stderr.write('oops')", "printing"),
        ("sys.stdout.flush()", "printing"),
        ("logging.warning('careful')", "logging"),
        ("logger.debug('x=%s', x)", "logging"),
        ("self.log.error('failed')", "logging"),
        ("_LOGGER.exception('failed')", "logging"),
    ],
)
def test_side_effect_categories(extractor: PythonExtractor, body: str, effect: str) -> None:
    code = f"def f(self, path, text, url, body, addr, args, x):\n    {body}\n"
    facts = facts_of(extractor, code, "f")
    assert facts["side_effects"] == [effect]


def test_global_and_nonlocal_writes(extractor: PythonExtractor) -> None:
    spans = by_name(
        extract(
            extractor,
            """
            def reads_global():
                global COUNT
                return COUNT

            def bumps_global():
                global COUNT
                COUNT += 1

            def counter():
                total = 0
                def add(n):
                    nonlocal total
                    total = total + n
                def peek():
                    nonlocal total
                    return total
                return add
            """,
        )
    )
    assert spans["reads_global"].facts["side_effects"] == []
    assert spans["bumps_global"].facts["side_effects"] == ["global_write"]
    assert spans["counter.add"].facts["side_effects"] == ["nonlocal_write"]
    assert spans["counter.peek"].facts["side_effects"] == []
    assert spans["counter"].facts["side_effects"] == []


def test_pure_code_has_no_side_effects(extractor: PythonExtractor) -> None:
    facts = facts_of(
        extractor,
        """
        def pure(items, environ):
            text = "print(os.environ)"  # print(x) in a comment
            log.append(environ["HOME"])

            def later():
                return os.environ["HOME"]

            return sorted(items).count(text.replace("a", "b")), later
        """,
        "pure",
    )
    assert facts["side_effects"] == []


def test_nesting_and_branches(extractor: PythonExtractor) -> None:
    facts = facts_of(
        extractor,
        """
        def route(request):
            if request.a and request.b or request.c:        # if + 2 boolean operators
                for item in request.items:                  # for
                    with lock:
                        while item.pending():               # while
                            try:
                                handle(item)
                            except Retry:                   # except
                                continue
            elif request.d:                                 # elif
                x = 1 if request.e else 2                   # conditional expression
            else:
                values = [v for v in request.values if v]   # comprehension for + if
            match request.kind:
                case "a":                                   # case
                    pass
                case _:                                     # case
                    pass
            return None
        """,
        "route",
    )
    # if > for > with > while > try
    assert facts["nesting"] == 5
    assert facts["branches"] == 12


def test_tokens_and_lines(extractor: PythonExtractor) -> None:
    code = "def f():\n    return 1\n"
    facts = facts_of(extractor, code, "f")
    assert facts["lines"] == 2
    assert facts["tokens"] == (len(code.rstrip("\n")) + 3) // 4


# --- class facts ---------------------------------------------------------------------------


def test_class_facts(extractor: PythonExtractor) -> None:
    spans = by_name(extractor.extract(FIXTURE.read_bytes()).spans)
    cart = spans["Cart"].facts
    assert cart["signature"] == "class Cart(Base, metaclass=Registry):"
    assert cart["bases"] == ["Base"]
    assert cart["docstring"] == "A shopping cart."
    assert cart["members"] == ["__init__", "total", "checkout", "Line"]
    assert cart["attributes"] == ["currency", "max_items"]
    assert cart["decorators"] == []
    assert cart["lines"] == 37
    line = spans["Cart.Line"].facts
    assert (line["signature"], line["bases"], line["members"]) == ("class Line:", [], ["cost"])


def test_decorated_class_and_attribute_forms(extractor: PythonExtractor) -> None:
    facts = facts_of(
        extractor,
        """
        @dataclass(frozen=True)
        class Point(Generic[T]):
            x: int
            y: int = 0
            a = b = 1
            c, d = 2, 3
            def norm(self):
                z = 5
        """,
        "Point",
    )
    assert facts["decorators"] == ["dataclass(frozen=True)"]
    assert facts["signature"] == "class Point(Generic[T]):"
    assert facts["attributes"] == ["x", "y", "a", "b", "c", "d"]
    assert facts["members"] == ["norm"]


# --- hashing -------------------------------------------------------------------------------

CLASS = """
class Store:
    '''Keeps things.'''

    limit = 10

    def get(self, key):
        return self.data[key]

    def put(self, key, value):
        self.data[key] = value
"""


def hashes(extractor: PythonExtractor, code: str) -> dict[str, str]:
    return {s.name: s.content_hash for s in extract(extractor, code)}


def test_editing_a_method_body_changes_only_that_method(extractor: PythonExtractor) -> None:
    before = hashes(extractor, CLASS)
    after = hashes(extractor, CLASS.replace("return self.data[key]", "return self.data.get(key)"))
    assert after["Store.get"] != before["Store.get"]
    assert after["Store"] == before["Store"]
    assert after["Store.put"] == before["Store.put"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("def put(", "def store("),  # rename a method
        ("    limit = 10\n", "    limit = 10\n    depth = 2\n"),  # add a class attribute
        ("def get(self, key)", "def get(self, key, default=None)"),  # change a signature
        ("Keeps things.", "Keeps many things."),  # edit the docstring
    ],
)
def test_class_hash_follows_its_skeleton(extractor: PythonExtractor, old: str, new: str) -> None:
    assert hashes(extractor, CLASS)["Store"] != hashes(extractor, CLASS.replace(old, new))["Store"]


def test_nested_class_body_edit_keeps_outer_hash(extractor: PythonExtractor) -> None:
    code = "class A:\n    class B:\n        x = 1\n    def m(self):\n        pass\n"
    before = hashes(extractor, code)
    after = hashes(extractor, code.replace("x = 1", "x = 2"))
    assert after["A"] == before["A"]
    assert after["A.B"] != before["A.B"]


def test_moving_a_function_keeps_its_hash(extractor: PythonExtractor) -> None:
    code = "def a():\n    return 1\n\n\ndef b(x):\n    return x * 2\n"
    moved = "import os\n\n\n# a comment\n" + code
    assert hashes(extractor, moved) == hashes(extractor, code)
    spaced = code.replace("\n\n\n", "\n\n\n\n\n") + "\n\n"
    assert hashes(extractor, spaced) == hashes(extractor, code)


def test_decorator_change_changes_hash(extractor: PythonExtractor) -> None:
    code = "@cache\ndef f():\n    return 1\n"
    assert hashes(extractor, code)["f"] != hashes(extractor, code.replace("@cache", "@lru"))["f"]


# --- syntax errors -------------------------------------------------------------------------


def test_broken_function_keeps_the_others(extractor: PythonExtractor) -> None:
    code = """
        def good(a):
            return a

        def broken(a):
            return a +

        class Fine:
            def ok(self):
                return 1

            def half(self):
                if self.x
                    return 2

            def after(self):
                return 3

        def also_good():
            pass
        """
    result = extractor.extract(textwrap.dedent(code).encode())
    assert result.has_errors
    # the broken spans (and the class holding one) are left out, not guessed at
    assert [s.name for s in result.spans] == ["good", "Fine.ok", "Fine.after", "also_good"]


def test_unclosed_bracket_does_not_invent_nested_spans(extractor: PythonExtractor) -> None:
    code = """
        def good(a):
            return a

        def broken(a):
            print(a

        class Fine:
            def ok(self):
                return 1

        def also_good():
            pass
        """
    result = extractor.extract(textwrap.dedent(code).encode())
    assert result.has_errors
    # tree-sitter reads ``def ok`` as nested in ``broken``; that name would be a lie
    assert [s.name for s in result.spans] == ["good", "also_good"]


def test_empty_and_definition_free_files(extractor: PythonExtractor) -> None:
    assert extractor.extract(b"").spans == []
    result = extractor.extract(b"import os\nprint(os.sep)\n")
    assert (result.spans, result.has_errors) == ([], False)


# --- agreement with Python's own parser on real code ---------------------------------------


def stdlib_sample(count: int = 40) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    step = max(1, len(files) // count)
    return files[::step][:count]


def ast_definitions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    nodes = [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def test_span_count_matches_ast_on_stdlib(extractor: PythonExtractor) -> None:
    checked = 0
    grammar_gaps = []
    for path in stdlib_sample():
        data = path.read_bytes()
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError):
            continue  # e.g. Python 2 test data
        result = extractor.extract(data)
        if result.has_errors:
            # tree-sitter-python misreads a few valid files (in 3.11's stdlib: one,
            # test_compile.py, a string ending in a backslash-newline before ``f(``)
            grammar_gaps.append(path)
            continue
        definitions = ast_definitions(tree)
        assert len(result.spans) == len(definitions), path
        spans = sorted(result.spans, key=lambda s: (s.name_start_line, s.name_start_col))
        for span, node in zip(spans, definitions, strict=True):
            assert span.name.rpartition(".")[2] == node.name, path
            assert span.name_start_line == node.lineno - 1, path
            # decorators belong to the span; trailing comments may too
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            assert span.start_line == first - 1, (path, span.name)
            assert span.end_line >= (node.end_lineno or 0) - 1, (path, span.name)
        checked += 1
    assert checked >= 30
    assert len(grammar_gaps) <= 1, grammar_gaps


def test_facts_agree_with_ast_on_stdlib(extractor: PythonExtractor) -> None:
    for path in stdlib_sample(15):
        data = path.read_bytes()
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError):
            continue
        result = extractor.extract(data)
        if result.has_errors:
            continue  # see test_span_count_matches_ast_on_stdlib
        spans = sorted(result.spans, key=lambda s: (s.name_start_line, s.name_start_col))
        for span, node in zip(spans, ast_definitions(tree), strict=True):
            assert span.facts["docstring"] == (ast.get_docstring(node) or None), span.name
            if isinstance(node, ast.ClassDef):
                continue
            args = node.args
            expected = (
                [(a.arg, "positional_only") for a in args.posonlyargs]
                + [(a.arg, "positional") for a in args.args]
                + ([(args.vararg.arg, "var_positional")] if args.vararg else [])
                + [(a.arg, "keyword_only") for a in args.kwonlyargs]
                + ([(args.kwarg.arg, "var_keyword")] if args.kwarg else [])
            )
            got = [(p["name"], p["kind"]) for p in span.facts["params"]]
            assert got == expected, (path, span.name)
            assert span.facts["is_async"] == isinstance(node, ast.AsyncFunctionDef)
