"""`spanlens show PATH:LINE`: the span at a line, as its hover shows it."""

from __future__ import annotations

import argparse
import json
import stat
import sys
from pathlib import Path
from typing import Any

from spanlens_lsp.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    file_sha,
    open_workspace_store,
    user_path,
    workspace_root,
)


def parse_location(location: str) -> tuple[Path, int]:
    """Split ``PATH:LINE`` (1-based line) into its parts."""
    path, sep, line = location.rpartition(":")
    if not sep or not path or not line.isdigit() or int(line) < 1:
        raise CliError(
            f"expected PATH:LINE with a line number from 1, got {location!r}", EXIT_USAGE
        )
    return Path(path).expanduser(), int(line)


def _check_file(file_path: Path) -> None:
    """One line for a path that is no regular file (missing, a folder, a FIFO...)."""
    try:
        mode = file_path.stat().st_mode
    except FileNotFoundError as exc:
        raise CliError(f"no such file: {file_path}") from exc
    except OSError as exc:
        raise CliError(f"{file_path}: {exc.strerror or 'no such file'}") from exc
    if stat.S_ISDIR(mode):
        raise CliError(f"{file_path} is a directory: give a file and a line, PATH:LINE")
    if not stat.S_ISREG(mode):
        raise CliError(f"{file_path} is not a regular file")


def cmd_show(args: argparse.Namespace) -> int:
    """`spanlens show PATH:LINE [--markdown | --json]`.

    The file is indexed first when the index does not have its current text. A file the
    workspace walk would skip (ignored, generated, too large, not UTF-8) is refused, not
    indexed. With a read-only index, a changed file is shown from a parse made now, in a
    private copy, and the index is left as it is.
    """
    from spanlens_lsp.config import load_settings
    from spanlens_lsp.indexing.indexer import relative_path
    from spanlens_lsp.indexing.parsing import check_text
    from spanlens_lsp.indexing.source import normalise_source
    from spanlens_lsp.indexing.walk import ignore_rule_for, skip_reason

    file_path, line = parse_location(args.location)
    root = workspace_root(args.root)
    # A relative PATH is read from the current folder (from ROOT when not found there and
    # the current folder lies outside ROOT), as `enrich --only` reads it.
    file_path = user_path(root, str(file_path))
    _check_file(file_path)
    rel = relative_path(root, file_path)
    if rel is None:
        how = "" if args.root else " (found from the current folder; give --root ROOT)"
        raise CliError(f"{file_path} is outside the workspace {root}{how}")
    settings = load_settings(root)
    index = settings.index
    why = skip_reason(root, rel, index.exclude, index.max_file_size)
    if why is not None:
        rule = ignore_rule_for(root, rel, index.exclude)
        raise CliError(f"{rel} is not indexed: {why}" + (f" ({rule})" if rule else ""))
    try:
        data = file_path.read_bytes()
    except OSError as exc:
        raise CliError(f"{rel}: {exc.strerror}") from exc
    unusable = check_text(data)
    if unusable is not None:
        raise CliError(f"{rel} is not indexed: {unusable}")
    data = normalise_source(data)
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if line > max(lines, 1):
        raise CliError(f"{rel} has {lines} lines; there is no line {line}")
    view, span = _view(root, rel, line, data, settings)
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        header = f"{span.path}:{span.start_line + 1}-{span.end_line + 1}  {span.kind} {span.name}"
        print_view(header, view, raw_markdown=args.markdown)
    return EXIT_OK


def _view(root: Path, rel: str, line: int, data: bytes, settings: Any) -> tuple[Any, Any]:
    from spanlens_lsp.presentation.state import span_view
    from spanlens_lsp.store.db import db_path_for, scratch_store
    from spanlens_lsp.store.errors import StoreError, StoreReadOnly
    from spanlens_lsp.workspace.files import index_file

    try:
        store = open_workspace_store(root)
    except StoreReadOnly:
        try:
            store = open_workspace_store(root, readonly=True)
        except StoreError:  # no index at all, and none can be made: parse into a scratch one
            store = scratch_store()
            _note(f"cannot create an index in {root}; showing {rel} as parsed now")
    try:
        known = store.file_row(rel)
        if known is None or known.sha256 != file_sha(data):
            if store.readonly:
                scratch = scratch_store(store)
                store.close()
                store = scratch
                _note(
                    f"the index is read-only ({db_path_for(root)}); showing {rel} as parsed "
                    "now, without updating the index"
                )
            if index_file(store, root, rel, settings.index, data) is None:
                raise CliError(f"{rel}: not a source file spanlens indexes")
        span = store.span_at(rel, line - 1)
        if span is None:
            raise CliError(f"{rel}:{line} is not inside any function, method or class")
        view = span_view(
            store,
            span,
            max_failures=settings.enrichment.max_failures,
            models_configured=bool(settings.backends),
            with_methods=True,
        )
    finally:
        store.close()
    return view, span


def _note(text: str) -> None:
    print(f"spanlens: {text}", file=sys.stderr)


def print_view(header: str, view: Any, raw_markdown: bool = False) -> None:
    """Print a span: rendered Markdown on a terminal, plain text when piped, or the raw
    Markdown source (``--markdown``).

    Nothing from the model reaches the terminal as markup, escape sequences or hyperlinks:
    control characters go, rich markup is never parsed (the Markdown renderer does not, and
    the header is printed with ``markup=False``), and links render as text.
    """
    from spanlens_lsp.presentation.markdown import render_markdown, render_plaintext
    from spanlens_lsp.presentation.text import clean_text

    header = clean_text(header, one_line=True)
    if raw_markdown:
        print(header + "\n")
        print(clean_text(render_markdown(view)))
        return
    if not sys.stdout.isatty():
        print(header + "\n")
        print(clean_text(render_plaintext(view)))
        return
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console(markup=False, emoji=False, highlight=False)
    console.print(header, markup=False, emoji=False, highlight=False)
    console.print()
    console.print(Markdown(clean_text(render_markdown(view)), hyperlinks=False))
