"""Line endings and byte order marks: spans and positions as an editor counts them.

LSP counts LF, CRLF and a lone CR as line breaks, in text without a BOM. The index must
agree, in every language, and the engine's check of a span against the file's current
text must read that text as the indexer did.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlens_lsp.enrichment.planning.sources import span_text
from spanlens_lsp.indexing.hashing import content_hash, file_sha256
from spanlens_lsp.indexing.indexer import index_files, index_text
from spanlens_lsp.indexing.source import buffer_source_text, read_source_text
from spanlens_lsp.store.db import open_store

PY = (
    "import os\n\n\nclass Box:\n    def size(self, n):\n        return n\n\n\n"
    "def make():\n    return Box()\n"
)
JS = (
    "const x = 1;\n\nclass Box {\n  size(n) {\n    return n;\n  }\n}\n\n"
    "function make() {\n  return new Box();\n}\n"
)
GO = (
    "package main\n\ntype Box struct{}\n\nfunc (b Box) Size(n int) int {\n\treturn n\n}\n\n"
    "func Make() Box {\n\treturn Box{}\n}\n"
)

#: (file, source, {span name: (start line, name start column)}) with LF line ends.
CASES = [
    ("a.py", PY, {"Box": (3, 6), "Box.size": (4, 8), "make": (8, 4)}),
    ("a.js", JS, {"Box": (2, 6), "Box.size": (3, 2), "make": (8, 9)}),
    ("a.go", GO, {"Box": (2, 5), "Box.Size": (4, 13), "Make": (8, 5)}),
]


def _positions(root: Path, name: str) -> dict[str, tuple[int, int]]:
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        return {s.name: (s.start_line, s.name_start_col) for s in store.spans_in_file(name)}
    finally:
        store.close()


@pytest.mark.parametrize(("name", "source", "expected"), CASES)
@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_lone_cr_and_crlf_files_give_the_spans_and_lines_of_lf(
    tmp_path: Path, name: str, source: str, expected: dict, ending: str
) -> None:
    (tmp_path / name).write_bytes(source.replace("\n", ending).encode())
    positions = _positions(tmp_path, name)
    assert {k: positions.get(k) for k in expected} == expected


@pytest.mark.parametrize(("name", "source", "expected"), CASES)
def test_a_bom_shifts_no_column(tmp_path: Path, name: str, source: str, expected: dict) -> None:
    # Put the first span on line 0, where the BOM sits.
    first = min(expected.items(), key=lambda item: item[1][0])
    lines = source.split("\n")
    trimmed = "\n".join(lines[first[1][0] :])
    (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + trimmed.encode())
    positions = _positions(tmp_path, name)
    assert positions[first[0]] == (0, first[1][1])


def test_the_engine_reads_a_file_as_the_indexer_hashed_it(tmp_path: Path) -> None:
    """The one reader of a file's current text: its sha is the index's, and a span's text
    from it has the span's hash, for CRLF, lone CR and BOM files alike."""
    variants = {
        "crlf.py": PY.replace("\n", "\r\n").encode(),
        "cr.py": PY.replace("\n", "\r").encode(),
        "bom.py": b"\xef\xbb\xbf" + PY.encode(),
    }
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        for name, data in variants.items():
            text = read_source_text(tmp_path / name)
            assert text is not None
            assert file_sha256(text.encode()) == store.file_row(name).sha256  # type: ignore[union-attr]
            lines = text.split("\n")
            for span in store.spans_in_file(name):
                if span.kind != "class":
                    assert content_hash(span_text(span, lines)) == span.content_hash
            # The editor's buffer of the same file agrees too, and re-indexing it changes nothing.
            buffer = buffer_source_text(data.decode("utf-8-sig"))
            assert file_sha256(buffer.encode()) == store.file_row(name).sha256  # type: ignore[union-attr]
            diff = index_text(store, tmp_path, name, data.decode("utf-8-sig").encode())
            assert diff is not None and not diff.touched
    finally:
        store.close()


def test_columns_on_one_long_line_with_wide_characters_are_utf16(tmp_path: Path) -> None:
    """Positions on one long line count UTF-16 units, as LSP does (é is one unit, 😀 two)."""
    line = "".join(f"function f{i}(a){{return '{'é😀'[i % 2] * (i % 5)}'+a;}}" for i in range(300))
    (tmp_path / "one.js").write_text(line + "\n", encoding="utf-8")
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        spans = {s.name: s for s in store.spans_in_file("one.js")}
    finally:
        store.close()
    assert len(spans) == 300
    units = line.encode("utf-16-le")
    for i in (0, 1, 7, 150, 299):
        expected = units.index(f"function f{i}(".encode("utf-16-le")) // 2
        assert spans[f"f{i}"].start_col == expected
        assert spans[f"f{i}"].name_start_col == expected + len("function ")
