"""`spanlens status`: files, spans and enrichment states."""

from __future__ import annotations

import argparse
import json

from spanlens.cli.common import (
    EXIT_OK,
    engine_line,
    workspace_root,
)


def cmd_status(args: argparse.Namespace) -> int:
    """`spanlens status [ROOT] [--json]`."""
    from spanlens.config import load_settings
    from spanlens.localmodel.engine import engine_report
    from spanlens.store.db import open_store
    from spanlens.workspace.report import workspace_status

    root = workspace_root(args.root)
    settings = load_settings(root)
    store = open_store(root, readonly=True)
    try:
        report = workspace_status(store, settings.enrichment.max_failures)
    finally:
        store.close()
    report["local_engine"] = engine_report(settings.local.model)
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    file_count = report["files"]
    hint = f" (nothing indexed: run `spanlens index {root}`)" if not file_count else ""
    print(f"{file_count} files, {report['spans']} spans{hint}")
    for language, info in sorted(report["languages"].items()):
        kinds_text = ", ".join(f"{n} {k}" for k, n in sorted(info["spans"].items()))
        broken = info["files_with_errors"]
        error_note = f", {broken} with syntax errors" if broken else ""
        print(f"  {language:<11} {info['files']} files{error_note}: {kinds_text}")
    print(
        f"enrichment: {report['enriched']} enriched, {report['stale']} stale, "
        f"{report['pending']} pending, {report['failed']} failed"
    )
    print("built-in engine: " + engine_line(report["local_engine"]))
    return EXIT_OK
