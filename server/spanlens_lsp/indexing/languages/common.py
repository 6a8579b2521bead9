"""Pieces every tree-sitter extractor shares: ranges, skeletons, doc comments, the rules walk."""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from tree_sitter import Node, Parser

from spanlens_lsp.indexing.spans import (
    ParsedSource,
    Span,
)

#: Most unique calls kept per span (every language); the rest add nothing a reader would use.
MAX_CALLS = 64


def text_of(source: bytes, node: Node) -> str:
    """The source text of ``node``."""
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def reparse(parser: Parser, source: bytes, previous: ParsedSource | None) -> ParsedSource:
    """Parse ``source``; given an earlier parse of the same file, re-parse only what changed.

    The edit is what lies between the longest common prefix and suffix of the two versions;
    tree-sitter reuses every subtree outside it, which turns a one-line edit in a big file
    from a full parse into a few microseconds. A file with syntax errors is parsed afresh.
    ``previous.tree`` is edited in place: it must not be used again. Any earlier version of
    the file is a correct base, only a slower one the more it differs.
    """
    if previous is None:
        return ParsedSource(source, parser.parse(source))
    old = previous.source
    start = _common_prefix(old, source)
    tail = _common_suffix(old, source, min(len(old), len(source)) - start)
    old_end = len(old) - tail
    new_end = len(source) - tail
    tree = previous.tree
    tree.edit(
        start_byte=start,
        old_end_byte=old_end,
        new_end_byte=new_end,
        start_point=_point(old, start),
        old_end_point=_point(old, old_end),
        new_end_point=_point(source, new_end),
    )
    new_tree = parser.parse(source, tree)
    if new_tree.root_node.has_error:
        # Error recovery can settle differently when it starts from reused subtrees; a fresh
        # parse keeps what is extracted from a broken file independent of its edit history.
        new_tree = parser.parse(source)
    return ParsedSource(source, new_tree)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix (binary search: slices compare in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix, at most ``limit`` bytes."""
    low, high = 0, limit
    len_a, len_b = len(a), len(b)
    while low < high:
        mid = (low + high + 1) // 2
        if a[len_a - mid :] == b[len_b - mid :]:
            low = mid
        else:
            high = mid - 1
    return low


def _point(source: bytes, offset: int) -> tuple[int, int]:
    """tree-sitter's (row, byte column) of a byte offset."""
    line_start = source.rfind(b"\n", 0, offset) + 1
    return source.count(b"\n", 0, offset), offset - line_start


class _Utf16Columns:
    """Byte columns to UTF-16 columns for one source, in O(log n) per position.

    Slicing the line before each position (as this once did) made a long line quadratic:
    a 1 MB one-line file took 7 s to index instead of 2. Here the source is scanned once:
    for each multi-byte character, its end offset and how many more bytes than UTF-16 units
    all characters up to it take. A column is then its byte column less that surplus
    between the line's start and the position.
    """

    __slots__ = ("ascii", "ends", "source", "surplus")

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.ascii = source.isascii()
        self.ends: list[int] = []
        self.surplus: list[int] = []
        if self.ascii:
            return
        total = 0
        for match in _NON_ASCII.finditer(source):
            offset = match.start()
            for char in match.group().decode("utf-8", "replace"):
                width = len(char.encode("utf-8", "surrogatepass"))
                offset += width
                total += width - (2 if ord(char) > 0xFFFF else 1)
                self.ends.append(offset)
                self.surplus.append(total)

    def _surplus_before(self, offset: int) -> int:
        index = bisect.bisect_right(self.ends, offset)
        return self.surplus[index - 1] if index else 0

    def column(self, byte_offset: int, byte_column: int) -> int:
        if self.ascii:
            return byte_column
        line_start = byte_offset - byte_column
        return byte_column - (self._surplus_before(byte_offset) - self._surplus_before(line_start))


_NON_ASCII = re.compile(rb"[\x80-\xff]+")
_columns = threading.local()


def lsp_column(source: bytes, byte_offset: int, byte_column: int) -> int:
    """Convert tree-sitter's byte column to LSP's UTF-16 column (see :class:`_Utf16Columns`;
    the table of the last source converted is kept, per thread)."""
    table: _Utf16Columns | None = getattr(_columns, "table", None)
    if table is None or table.source is not source:
        table = _Utf16Columns(source)
        _columns.table = table
    return table.column(byte_offset, byte_column)


def skeleton_text(source: bytes, node: Node, bodies: Iterable[Node]) -> str:
    """The text of a container with each member body in ``bodies`` cut out.

    This is what a class (struct, impl, interface) hashes: its header, doc and member
    signatures. Editing one method body therefore changes that method's hash only.
    """
    parts: list[bytes] = []
    pos = node.start_byte
    for body in sorted(bodies, key=lambda b: b.start_byte):
        if body.start_byte < pos or body.end_byte > node.end_byte:
            continue
        parts.append(source[pos : body.start_byte])
        parts.append(b"...")
        pos = body.end_byte
    parts.append(source[pos : node.end_byte])
    return b"".join(parts).decode("utf-8", "replace")


def make_span(
    source: bytes,
    node: Node,
    name_node: Node | None,
    name: str,
    kind: str,
    facts: dict[str, Any] | None,
    digest: str,
) -> Span:
    """Build a :class:`Span` for ``node``; ``digest`` is the :func:`content_hash` of its text."""
    name_node = name_node or node
    sl, sc = node.start_point
    el, ec = node.end_point
    nl, nc = name_node.start_point
    nel, nec = name_node.end_point
    return Span(
        name=name,
        kind=kind,
        start_line=sl,
        start_col=lsp_column(source, node.start_byte, sc),
        end_line=el,
        end_col=lsp_column(source, node.end_byte, ec),
        name_start_line=nl,
        name_start_col=lsp_column(source, name_node.start_byte, nc),
        name_end_line=nel,
        name_end_col=lsp_column(source, name_node.end_byte, nec),
        content_hash=digest,
        facts=facts,
    )


def approx_tokens(text: str) -> int:
    """A model-agnostic token estimate (about four characters a token for code)."""
    return (len(text) + 3) // 4


def line_count(node: Node) -> int:
    """Lines the node covers, inclusive."""
    return node.end_point[0] - node.start_point[0] + 1


def preceding_comment(source: bytes, node: Node, comment_types: frozenset[str]) -> str | None:
    """The comment block directly above ``node`` (doc comment), with comment markers removed."""
    lines: list[str] = []
    expected_line = node.start_point[0]
    sibling = node.prev_sibling
    while sibling is not None and sibling.type in comment_types:
        if sibling.end_point[0] < expected_line - 1 or not _starts_line(source, sibling):
            break
        lines[:0] = text_of(source, sibling).splitlines()
        expected_line = sibling.start_point[0]
        sibling = sibling.prev_sibling
    if not lines:
        return None
    return clean_comment("\n".join(lines))


def _starts_line(source: bytes, node: Node) -> bool:
    """True when only whitespace precedes ``node`` on its line (not a trailing comment)."""
    start = node.start_byte
    line_start = start - node.start_point[1]  # no scan back: lines can be megabytes long
    return not source[line_start:start].strip()


def clean_comment(text: str) -> str | None:
    """Strip ``//``, ``///``, ``/** */``, ``*`` and ``#`` markers from a comment block."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        for prefix in ("/**", "/*!", "/*", "*/", "//!", "///", "//", "*", "#"):
            if line.startswith(prefix):
                line = line[len(prefix) :]
                break
        if line.endswith("*/"):
            line = line[:-2]
        out.append(line.strip())
    result = "\n".join(out).strip()
    return result or None


def signature_text(source: bytes, node: Node, body: Node | None) -> str:
    """The text of ``node`` up to ``body`` (all of it when None), whitespace collapsed.

    A trailing ``;`` goes too, so a signature-only declaration (``fn area(&self) -> f64;``)
    reads like the header of one that has a body.
    """
    end = body.start_byte if body is not None else node.end_byte
    text = source[node.start_byte : end].decode("utf-8", "replace")
    return " ".join(text.split()).rstrip(";").rstrip()


def param_fact(
    name: str, type_text: str | None = None, default: str | None = None
) -> dict[str, Any]:
    """One entry of the ``params`` fact."""
    return {"name": name, "type": type_text, "default": default}


def collapsed_text(source: bytes, node: Node | None) -> str | None:
    """The text of ``node`` with whitespace runs collapsed to one space (None for None)."""
    if node is None:
        return None
    return " ".join(text_of(source, node).split())


def callee_renderer(
    dotted: re.Pattern[bytes], render: Callable[[bytes, Node, int], str]
) -> Callable[[bytes, Node | None], str | None]:
    """``name(source, callee)``: the callee as written when it is a plain path (``dotted``
    matches it), else as ``render(source, callee, 0)`` writes it; None for no callee."""

    def name(source: bytes, callee: Node | None) -> str | None:
        if callee is None:
            return None
        raw = source[callee.start_byte : callee.end_byte]
        if dotted.fullmatch(raw):
            return raw.decode("ascii")
        return render(source, callee, 0)

    return name
