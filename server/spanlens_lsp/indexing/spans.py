"""The span: one function, method, class (struct, interface, enum, impl, trait) in a file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tree_sitter import Tree

#: Kinds whose hash is taken over their skeleton (header, doc, member signatures).
CONTAINER_KINDS = frozenset({"class", "struct", "interface", "enum", "impl", "trait"})


class _Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...


_S = TypeVar("_S", bound=_Named)


def direct_members(container: str, spans: Iterable[_S]) -> list[tuple[str, _S]]:
    """The methods of the container named ``container`` among ``spans`` (one file's): the
    spans named ``<container>.<name>`` that are no container themselves, with their short
    name, in the given order (a nested class's methods are its own)."""
    prefix = container + "."
    found = []
    for span in spans:
        own = span.name[len(prefix) :]
        if (
            span.name.startswith(prefix)
            and own
            and "." not in own
            and span.kind not in CONTAINER_KINDS
        ):
            found.append((own, span))
    return found


@dataclass(slots=True)
class Span:
    """A span as extracted from one parse of one file.

    Lines and columns are 0-based, like LSP positions; ``end_line`` is inclusive (the line of
    the last character). ``name`` is qualified (``Class.method``, ``outer.inner``).
    """

    name: str
    kind: str
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    name_start_line: int
    name_start_col: int
    name_end_line: int
    name_end_col: int
    content_hash: str
    #: None when the extractor was told the hash is known: the store has its facts.
    facts: dict[str, Any] | None = field(default_factory=dict)
    ordinal: int = 0

    @property
    def key(self) -> tuple[str, str, int]:
        """The part of the span key local to its file: (qualified name, kind, ordinal)."""
        return (self.name, self.kind, self.ordinal)


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """One file's bytes and the tree tree-sitter parsed from them.

    Handed back to :meth:`Extractor.extract` with the file's next version, it lets the parser
    re-parse only what the edit touched.
    """

    source: bytes
    tree: Tree


@dataclass(slots=True)
class Extraction:
    """What one parse of one file yields.

    ``has_errors`` is true when tree-sitter found syntax errors; the spans are those that still
    parse, and the indexer then keeps spans the file had before rather than deleting them.
    """

    spans: list[Span]
    has_errors: bool = False
    #: This parse, for re-parsing the file's next version incrementally.
    parsed: ParsedSource | None = None


def assign_ordinals(spans: list[Span]) -> list[Span]:
    """Number spans that share (name, kind) in source order, so every key is unique."""
    seen: dict[tuple[str, str], int] = {}
    for span in spans:
        k = (span.name, span.kind)
        span.ordinal = seen.get(k, 0)
        seen[k] = span.ordinal + 1
    return spans
