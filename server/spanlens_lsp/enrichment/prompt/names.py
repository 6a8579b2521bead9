"""What a span's code knows: the identifiers of its code, facts, file and workspace.

:class:`Names` is built once per file by the engine (file text identifiers) and shares one
frozenset of workspace span names, so a grounding check (:mod:`..reply.grounding`) is a few
set lookups, never a query. The prompt shows these facts; the reply is held to them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from spanlens_lsp.store.handle import Store

_IDENT = re.compile(r"[A-Za-z_$][\w$]*")


@dataclass(frozen=True, slots=True)
class Names:
    """Names a span's reply may use besides those in the span itself: identifiers of its file
    and enclosing context, and span names of the workspace (shared across files)."""

    file: frozenset[str] = frozenset()
    workspace: frozenset[str] = frozenset()
    #: Names of the spans of the span's file (for the subject check).
    file_spans: frozenset[str] = frozenset()

    def knows(self, name: str) -> bool:
        """Whether ``name`` occurs in the file or names a workspace span."""
        return name in self.file or name in self.workspace

    def is_span(self, name: str) -> bool:
        """Whether ``name`` is the (last part of the) name of a span in the file or workspace."""
        return name in self.file_spans or name in self.workspace


class WorkspaceNames:
    """The workspace's span names, read from the store at most every ``refresh_after`` seconds
    (a name indexed since then is still found in its own file's text)."""

    def __init__(self, refresh_after: float = 30.0) -> None:
        self.refresh_after = refresh_after
        self._names: frozenset[str] = frozenset()
        self._read_at: float | None = None

    def get(self, store: Store) -> frozenset[str]:
        """The span names (and their last parts) of every indexed file."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.refresh_after:
            self._names = span_names(store.span_names())
            self._read_at = now
        return self._names

    def for_file(self, store: Store, text: str, file_spans: Iterable[Any]) -> Names:
        """The :class:`Names` of one file (its text and spans) in this workspace."""
        return names_for_file(text, (span.name for span in file_spans), self.get(store))


#: No names beyond the span's own (the default of contexts built without a file).
NO_NAMES = Names()


def identifiers(text: str) -> frozenset[str]:
    """Every identifier-shaped word of ``text``."""
    return frozenset(_IDENT.findall(text))


def span_names(names: Iterable[str]) -> frozenset[str]:
    """Span names and their last parts (``Class.method`` gives both and ``method``)."""
    found: set[str] = set()
    for name in names:
        found.add(name)
        found.update(part for part in name.split(".") if part)
    return frozenset(found)


def names_for_file(text: str, file_span_names: Iterable[str], workspace: frozenset[str]) -> Names:
    """The :class:`Names` of one file's spans."""
    return Names(identifiers(text), workspace, span_names(file_span_names))


def fact_identifiers(facts: Any) -> set[str]:
    """Identifiers in every string of a span's facts (parameters, calls, raises, decorators)."""
    found: set[str] = set()
    stack = [facts]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            found.update(_IDENT.findall(node))
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return found


#: Receivers a reply may leave out of ``inputs`` (extractors list them as parameters).
RECEIVERS = frozenset({"self", "cls", "this"})
_PARAM_NAME = re.compile(r"[A-Za-z_$][\w$]*")


def needs_input(param: str) -> bool:
    """Whether a parameter must have an ``inputs`` entry: a named one, not a receiver, not
    ``_`` and not a destructuring pattern (``{a, b}``) that no ``name: meaning`` can name."""
    return param not in RECEIVERS and param != "_" and _PARAM_NAME.fullmatch(param) is not None
