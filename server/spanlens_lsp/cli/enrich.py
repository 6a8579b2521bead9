"""`spanlens enrich`: index, then enrich pending spans, then embed them (when an embedding
endpoint is configured)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spanlens_lsp.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    ProgressBar,
    open_workspace_store,
    run_index,
    workspace_file,
    workspace_root,
)
from spanlens_lsp.cli.embed import embed_runs, embed_totals


def cmd_enrich(args: argparse.Namespace) -> int:
    """`spanlens enrich [ROOT] [--limit N] [--tier T] [--retry-failed] [--only PATH] [--json]`."""
    import asyncio

    from spanlens_lsp.config import load_settings
    from spanlens_lsp.embedding.builtin import embedding_endpoints
    from spanlens_lsp.enrichment import runner
    from spanlens_lsp.enrichment.backends.defaults import FACTS_ONLY_NOTE, resolve_default_backends

    root = workspace_root(args.root)
    settings = asyncio.run(resolve_default_backends(load_settings(root)))
    if not settings.backends and not settings.backends_configured:
        raise CliError(FACTS_ONLY_NOTE)
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1", EXIT_USAGE)
    tiers = [b.tier for b in settings.backends]
    if args.tier is not None and args.tier not in tiers:
        raise CliError(f"--tier {args.tier}: no backend has that tier (tiers: {tiers})", EXIT_USAGE)
    only = [workspace_file(root, value) for value in args.only] if args.only else None
    run = asyncio.run(_enrich(root, settings, args, only))
    # Then every span's vector, summaries included, when an embedding endpoint is configured.
    embedded = []
    if embedding_endpoints(settings) and not run.stopped:
        embedded = asyncio.run(embed_runs(root, settings, only, show_progress=not args.json))
    if args.json:
        print(json.dumps({**run.as_json(), **(embed_totals(embedded) if embedded else {})}))
    else:
        print("\n".join([*runner.summary_lines(run), *(e.summary() for e in embedded)]))
    return EXIT_ERROR if run.stopped or any(e.failed for e in embedded) else EXIT_OK


async def _enrich(root: Path, settings: Any, args: argparse.Namespace, only: Any) -> Any:
    """Pre-flight, index, then the run: one event loop, so that the run calls the very
    endpoints (clients, breakers) the pre-flight probed."""
    from spanlens_lsp.app import command_endpoints, enrich_workspace
    from spanlens_lsp.enrichment.call.preflight import (
        preflight,
        refusal_message,
        serves_model,
        unusable_message,
    )
    from spanlens_lsp.store.enrichments import retry_failed

    async with command_endpoints(settings) as calls:
        probes = await preflight(calls)
        if not any(p["reachable"] for p in probes):
            raise CliError(refusal_message(probes))
        if not any(serves_model(p) for p in probes):
            raise CliError(unusable_message(probes))
        store = open_workspace_store(root)
        try:
            run_index(root, store, show_progress=not args.json)
            if args.retry_failed:
                retry_failed(store)
        finally:
            store.close()
        # Every enrichment takes a while: draw the bar (and its "waiting ..." text) for any job.
        progress = ProgressBar("enriching", not args.json, min_total=1)
        try:
            return await enrich_workspace(
                root,
                settings,
                endpoints=calls.endpoints,
                limit=args.limit,
                tier=args.tier,
                paths=only,
                progress=progress,
            )
        finally:
            progress.close()
