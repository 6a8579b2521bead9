"""Source loading: each span's current text and context, or why it can no longer be enriched."""

from __future__ import annotations

from collections.abc import Callable

from spanlens_lsp.enrichment.prompt.names import NO_NAMES, Names, WorkspaceNames
from spanlens_lsp.enrichment.prompt.source import SpanSource, enclosing_context
from spanlens_lsp.indexing.hashing import content_hash, file_sha256
from spanlens_lsp.indexing.spans import CONTAINER_KINDS
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow

#: Reads a workspace-relative file's current text (an open editor buffer, or the disk).
SourceReader = Callable[[str], "str | None"]

#: A span, its source when it can be enriched, else the problem.
Loaded = tuple[SpanRow, "SpanSource | None", "str | None"]


def load_sources(
    store: Store,
    read: SourceReader,
    spans: list[SpanRow],
    workspace_names: WorkspaceNames | None = None,
) -> list[Loaded]:
    """Each span's text and context; a problem instead when its text moved on.

    ``workspace_names`` gives each source the names a reply may mention (grounding)."""
    by_path: dict[str, list[SpanRow]] = {}
    for span in spans:
        by_path.setdefault(span.path, []).append(span)
    loaded: list[Loaded] = []
    for path, group in by_path.items():
        text = read(path)
        if text is None:
            loaded += [(span, None, "file is gone") for span in group]
            continue
        lines = text.split("\n")
        file_spans = store.spans_in_file(path)
        names = workspace_names.for_file(store, text, file_spans) if workspace_names else NO_NAMES
        # A container's hash covers only its skeleton, so its text can change under the
        # same hash: only a file identical to the indexed one vouches for it.
        indexed = store.indexed_sha256(path)
        file_current = indexed == file_sha256(text.encode("utf-8"))
        for span in group:
            if span.kind in CONTAINER_KINDS and not file_current:
                loaded.append((span, None, "file changed since it was indexed"))
            else:
                loaded.append(_source_for(span, lines, file_spans, names))
    return loaded


def _source_for(
    span: SpanRow, lines: list[str], file_spans: list[SpanRow], names: Names = NO_NAMES
) -> Loaded:
    if span.end_line >= len(lines):
        return span, None, "source changed since indexing"
    if (
        span.kind not in CONTAINER_KINDS
        and content_hash(span_text(span, lines)) != span.content_hash
    ):
        return span, None, "source changed since indexing"
    shown = [line.rstrip("\r") for line in lines[span.start_line : span.end_line + 1]]
    context = enclosing_context(span, file_spans, lines)
    return span, SpanSource(span, shown, context, names), None


def span_text(span: SpanRow, lines: list[str]) -> str:
    """The exact text of ``span`` (its columns are UTF-16 offsets, as in LSP)."""
    first = lines[span.start_line]
    last = lines[span.end_line]
    start = _utf16_to_index(first, span.start_col)
    end = _utf16_to_index(last, span.end_col)
    if span.start_line == span.end_line:
        return first[start:end]
    middle = lines[span.start_line + 1 : span.end_line]
    return "\n".join([first[start:], *middle, last[:end]])


def _utf16_to_index(line: str, column: int) -> int:
    if line.isascii():
        return column
    units = 0
    for index, char in enumerate(line):
        if units >= column:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line)
