"""`spanlens status`: files, spans and enrichment states."""

from __future__ import annotations

import argparse
import json

from spanlens_lsp.cli.common import (
    EXIT_OK,
    engine_line,
    workspace_root,
)


def cmd_status(args: argparse.Namespace) -> int:
    """`spanlens status [ROOT] [--json]`."""
    from spanlens_lsp.config import load_settings
    from spanlens_lsp.embedding.builtin import embedding_note
    from spanlens_lsp.localmodel.engine import engine_report
    from spanlens_lsp.store.db import open_store
    from spanlens_lsp.workspace.report import embedding_status, workspace_status

    root = workspace_root(args.root)
    settings = load_settings(root)
    store = open_store(root, readonly=True)
    try:
        report = workspace_status(store, settings.enrichment.max_failures)
        # The first embedding endpoint in force (as in the server's spanlens/status).
        report["embeddings"] = embedding_status(root, settings, store)
    finally:
        store.close()
    report["local_engine"] = engine_report(settings.local.model)
    report["embedding_note"] = embedding_note(settings)
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
    embeddings = report["embeddings"]
    if embeddings is not None:
        print(
            f"embeddings ({embeddings['model']}, {embeddings['source']}): "
            f"{embeddings['embedded']} embedded, {embeddings['pending']} pending"
        )
        if embeddings["engine"] is not None:
            print("built-in engine (embeddings): " + engine_line(embeddings["engine"]))
    if report["embedding_note"]:
        print(f"embeddings: none; {report['embedding_note']}")
    print("built-in engine: " + engine_line(report["local_engine"]))
    return EXIT_OK
