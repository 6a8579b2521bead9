"""`spanlens embed`: index, then bring every span's embedding up to date."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from spanlens_lsp.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    ProgressBar,
    open_workspace_store,
    run_index,
    workspace_file,
    workspace_root,
)

#: Why `spanlens embed` has nothing to do, and what to do about it.
NO_EMBEDDINGS = (
    "no embedding endpoint, so search uses keywords only; run `spanlens model install "
    "all-minilm-l6-v2` for the built-in embedding model, or add an [[embeddings]] table to "
    "spanlens.toml (see the README's 'Embedding endpoints')"
)


def cmd_embed(args: argparse.Namespace) -> int:
    """`spanlens embed [ROOT] [--only PATH] [--json]`."""
    from spanlens_lsp.config import load_settings

    root = workspace_root(args.root)
    settings = load_settings(root)
    from spanlens_lsp.embedding.builtin import embedding_endpoints

    if not embedding_endpoints(settings):
        raise CliError(NO_EMBEDDINGS)
    only = [workspace_file(root, value) for value in args.only] if args.only else None
    store = open_workspace_store(root)
    try:
        run_index(root, store, show_progress=not args.json)
    finally:
        store.close()
    runs = asyncio.run(embed_runs(root, settings, only, show_progress=not args.json))
    if args.json:
        print(json.dumps({"embeddings": [run.as_json() for run in runs]}))
    else:
        print("\n".join(run.summary() for run in runs))
    return EXIT_ERROR if any(run.failed for run in runs) else EXIT_OK


async def embed_runs(
    root: Path, settings: Any, only: list[str] | None, *, show_progress: bool
) -> list[Any]:
    """Every configured embedder's run over the workspace (or ``only`` those files), with a
    progress bar on a terminal; `spanlens enrich` runs this after enriching."""
    from spanlens_lsp.app import embed_workspace

    bar = ProgressBar("embedding", show_progress, min_total=1)
    try:
        return await embed_workspace(
            root,
            settings,
            paths=only,
            progress=lambda run: bar(run.changed + run.failed, run.todo),
        )
    finally:
        bar.close()


def embed_totals(runs: list[Any]) -> dict[str, int]:
    """The runs' counts summed, as flat keys of `spanlens enrich --json`."""
    keys = ("embedded", "reused", "private_skipped", "failed", "calls", "tokens")
    return {f"embed_{key}": sum(getattr(run, key) for run in runs) for key in keys}
