"""`spanlens show PATH:LINE`: the span at a line, as its hover shows it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spanlens.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    file_sha,
    open_workspace_store,
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


def cmd_show(args: argparse.Namespace) -> int:
    """`spanlens show PATH:LINE [--markdown | --json]`."""
    from spanlens.config import load_settings
    from spanlens.indexing.indexer import index_text, relative_path
    from spanlens.presentation.state import span_view
    from spanlens.store.db import workspace_root_of

    file_path, line = parse_location(args.location)
    if not file_path.is_file():
        raise CliError(f"no such file: {file_path}")
    if args.root:
        root = workspace_root(args.root)
    else:
        root = workspace_root_of(file_path.parent) or Path.cwd().resolve()
    rel = relative_path(root, file_path)
    if rel is None:
        raise CliError(f"{file_path} is outside the workspace {root}")
    settings = load_settings(root)
    store = open_workspace_store(root)
    try:
        data = file_path.read_bytes()
        known = store.file_row(rel)
        stale = known is None or known.sha256 != file_sha(data)
        if stale and index_text(store, root, rel, data) is None:
            raise CliError(f"{rel}: not a source file spanlens indexes")
        span = store.span_at(rel, line - 1)
        if span is None:
            raise CliError(f"{rel}:{line} is not inside any function, method or class")
        view = span_view(
            store,
            span,
            max_failures=settings.enrichment.max_failures,
            models_configured=bool(settings.backends),
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        header = f"{span.path}:{span.start_line + 1}-{span.end_line + 1}  {span.kind} {span.name}"
        print_view(header, view, raw_markdown=args.markdown)
    return EXIT_OK


def print_view(header: str, view: Any, raw_markdown: bool = False) -> None:
    """Print a span: rendered Markdown on a terminal, plain text when piped, or the raw
    Markdown source (``--markdown``).

    Nothing from the model reaches the terminal as markup, escape sequences or hyperlinks:
    control characters go, rich markup is never parsed (the Markdown renderer does not, and
    the header is printed with ``markup=False``), and links render as text.
    """
    from spanlens.presentation.markdown import render_markdown, render_plaintext
    from spanlens.presentation.text import clean_text

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
