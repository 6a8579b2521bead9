"""`spanlens index`: spans and parser facts for the workspace."""

from __future__ import annotations

import argparse
import json

from spanlens_lsp.cli.common import (
    EXIT_OK,
    open_workspace_store,
    run_index,
    workspace_root,
)


def cmd_index(args: argparse.Namespace) -> int:
    """`spanlens index [ROOT] [--json]`."""
    root = workspace_root(args.root)
    store = open_workspace_store(root)
    try:
        summary = run_index(root, store, show_progress=not args.json)
    finally:
        store.close()
    if args.json:
        print(json.dumps(summary.as_json()))
        return EXIT_OK
    print(
        f"files: {summary.files_indexed} indexed, {summary.files_unchanged} unchanged, "
        f"{summary.files_skipped} skipped, {summary.files_removed} removed"
    )
    print(
        f"spans: {summary.spans_added} added, {summary.spans_changed} changed, "
        f"{summary.spans_removed} removed, {summary.spans_unchanged} unchanged "
        f"({summary.spans_total} in total)"
    )
    if summary.files_with_errors:
        print(f"{summary.files_with_errors} files have syntax errors (their valid spans are kept)")
    reasons: dict[str, int] = {}
    for reason in summary.skipped.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        print("skipped: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
    print(f"{summary.seconds:.2f}s")
    return EXIT_OK
