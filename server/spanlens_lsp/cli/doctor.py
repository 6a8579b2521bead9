"""`spanlens doctor`: config, backends, GPU and database, with fixes."""

from __future__ import annotations

import argparse
import json

from spanlens_lsp.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    engine_line,
    workspace_root,
)


def cmd_doctor(args: argparse.Namespace) -> int:
    """`spanlens doctor [ROOT] [--json]`: exit 1 when something needs fixing."""
    import asyncio

    from spanlens_lsp.app import probe_backends, probe_embeddings
    from spanlens_lsp.enrichment.reports import doctor_report

    root = workspace_root(args.root)
    report = asyncio.run(doctor_report(root, probe_backends, probe_embeddings))
    if args.json:
        print(json.dumps(report))
        return EXIT_ERROR if report["problems"] else EXIT_OK
    config = report["config"]
    print("config: " + (config.get("error") or ", ".join(config["sources"])))
    for note in config.get("notes", []):
        print(f"  note: {note}")
    for b in report.get("backends", []):
        state = "reachable" if b["reachable"] else "unreachable"
        if b["reachable"] and b["model_present"] is not None:
            state += ", model " + ("present" if b["model_present"] else "missing")
        where = f"{b['name']} ({b['tier']}, {b['provider']}) {b['url']} {b['model']}"
        print(f"backend {where}: {state}")
        check = b.get("output_check")
        if check:
            context = check.get("context_per_slot")
            print(
                f"  engine {check.get('engine', '?')}, structured output "
                f"{check.get('structured_output', '?')}, context per slot "
                f"{context if context else '?'}, slots {check.get('slots') or '?'}, "
                f"replies {'valid' if check['ok'] else 'invalid: ' + check['detail']}"
            )
    for e in report.get("embeddings", []):
        state = "reachable" if e["reachable"] else "unreachable"
        if e["dims"]:
            state += f", {e['dims']} dimensions"
        print(f"embeddings {e['name']} ({e['provider']}) {e['url']} {e['model']}: {state}")
    if report.get("embedding_note"):
        print(f"embeddings: none; {report['embedding_note']}")
    engine = report.get("local_engine")
    if engine is not None:
        print("built-in engine: " + engine_line(engine))
    gpu = report.get("gpu")
    if gpu is not None:
        print("gpu: " + ("available" if gpu.get("available") else gpu.get("note", "disabled")))
    db = report.get("database")
    if db is not None:
        if db.get("exists") and "spans" in db:
            print(
                f"database: {db['path']}: {db['spans']} spans, {db['fresh']} enriched, "
                f"{db['stale']} stale, {db['pending']} pending, {db['failed']} failed"
            )
            tables = ", ".join(f"{name} {rows}" for name, rows in db.get("tables", {}).items())
            print(f"  migration {db.get('migration')}; rows: {tables}")
        else:
            print(f"database: {db['path']}: " + (db.get("error") or db.get("note", "")))
    if not report["problems"]:
        print("no problems found")
        return EXIT_OK
    print(f"{len(report['problems'])} problem(s):")
    for problem in report["problems"]:
        print(f"  - {problem}")
    return EXIT_ERROR
