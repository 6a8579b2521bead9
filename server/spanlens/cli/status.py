"""`spanlens status`: files, spans and enrichment states."""

from __future__ import annotations

import argparse
import json
from typing import Any

from spanlens.cli.common import (
    EXIT_OK,
    workspace_root,
)


def cmd_status(args: argparse.Namespace) -> int:
    """`spanlens status [ROOT] [--json]`."""
    from spanlens.config import load_settings
    from spanlens.enrichment.version import ENRICHMENT_VERSION
    from spanlens.store import open_store

    root = workspace_root(args.root)
    settings = load_settings(root)
    store = open_store(root, readonly=True)
    try:
        files = store.files_by_language()
        kinds = store.counts_by_language_and_kind()
        states = store.state_counts(ENRICHMENT_VERSION, settings.enrichment.max_failures)
    finally:
        store.close()
    by_language: dict[str, Any] = {}
    for language, count, errors in files:
        by_language[language] = {"files": count, "files_with_errors": errors or 0, "spans": {}}
    for language, kind, count in kinds:
        by_language.setdefault(language, {"files": 0, "files_with_errors": 0, "spans": {}})
        by_language[language]["spans"][kind] = count
    total_spans = sum(count for _, _, count in kinds)
    if args.json:
        print(
            json.dumps(
                {
                    "files": sum(c for _, c, _ in files),
                    "spans": total_spans,
                    "enriched": states["fresh"],
                    "stale": states["stale"],
                    "pending": states["pending"],
                    "failed": states["failed"],
                    "languages": by_language,
                }
            )
        )
        return EXIT_OK
    file_count = sum(c for _, c, _ in files)
    hint = f" (nothing indexed: run `spanlens index {root}`)" if not file_count else ""
    print(f"{file_count} files, {total_spans} spans{hint}")
    for language, info in sorted(by_language.items()):
        kinds_text = ", ".join(f"{n} {k}" for k, n in sorted(info["spans"].items()))
        broken = info["files_with_errors"]
        error_note = f", {broken} with syntax errors" if broken else ""
        print(f"  {language:<11} {info['files']} files{error_note}: {kinds_text}")
    print(
        f"enrichment: {states['fresh']} enriched, {states['stale']} stale, "
        f"{states['pending']} pending, {states['failed']} failed"
    )
    return EXIT_OK
