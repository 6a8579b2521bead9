"""`spanlens stats`: model calls per tier and backend."""

from __future__ import annotations

import argparse
import json

from spanlens_lsp.cli.common import (
    EXIT_OK,
    workspace_root,
)
from spanlens_lsp.presentation.text import clean_text


def cmd_stats(args: argparse.Namespace) -> int:
    """`spanlens stats [ROOT] [--json]`."""
    from spanlens_lsp.enrichment.reports import stats_report
    from spanlens_lsp.store.db import open_store
    from spanlens_lsp.store.enrichments import BATCH_FAILURES_BEFORE_FALLBACK

    root = workspace_root(args.root)
    store = open_store(root, readonly=True)
    try:
        report = stats_report(store)
    finally:
        store.close()
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    print(
        f"{report['calls']} calls, {report['success_rate']:.0%} succeeded, tokens "
        f"{report['tokens_in']} in / {report['tokens_out']} out, "
        f"{report['calls_saved_by_batching']} calls saved by batching"
        + (
            f" ({report['failed_batch_calls']} batched calls failed), "
            if report["failed_batch_calls"]
            else ", "
        )
        + f"estimated cost {report['cost']:.4f}"
    )
    for row in report["backends"]:
        gpu = ", ".join(f"{k[9:]} {v:g}" for k, v in row.items() if k.startswith("gpu_peak_"))
        print(
            f"  {row['tier']:<8} {row['backend']:<12} {row['calls']:>6} calls "
            f"{row['success_rate']:>6.0%} ok  tokens {row['tokens_in']}/{row['tokens_out']}  "
            f"p50 {row['latency_p50_ms']:.0f}ms p95 {row['latency_p95_ms']:.0f}ms  "
            f"saved {row['calls_saved_by_batching']}"
            + (
                f" ({row['failed_batch_calls']} batches failed)"
                if row["failed_batch_calls"]
                else ""
            )
            + f"  cost {row['cost']:.4f}"
            + (f"  gpu peak: {gpu}" if gpu else "")
        )
        if row["failures"]:
            print(f"           failures: {row['failures']}")
    if report["rejections"]:
        print("recent rejections (span: rule):")
        for line in report["rejections"]:
            print(f"  {clean_text(line, one_line=True)}")
    for off in report.get("batching_off", []):
        print(
            f"batching off for tier {off['tier']} (model {off['model']}): its last "
            f"{BATCH_FAILURES_BEFORE_FALLBACK} batched calls stored nothing; one span a call"
        )
    return EXIT_OK
