"""`spanlens docgen`: write every missing or stale per-file doc (or list them, or count them)."""

from __future__ import annotations

import argparse
import json
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

#: How long a run waits for another process (the server) to finish writing docs.
LOCK_WAIT_SECONDS = 120.0


def cmd_docgen(args: argparse.Namespace) -> int:
    """`spanlens docgen [ROOT] [--file PATH]... [--dry-run] [--status] [--json]`."""
    import asyncio

    from spanlens_lsp.config import load_settings
    from spanlens_lsp.docgen.generate import Docgen, write_docs
    from spanlens_lsp.docgen.job import record_doc_result
    from spanlens_lsp.docgen.plan import DOC_MISSING, DOC_STALE, doc_state, needs_model_call
    from spanlens_lsp.docgen.write import DocPathError, DocsLocked, acquire, docs_lock
    from spanlens_lsp.enrichment.backends.defaults import resolve_default_backends
    from spanlens_lsp.store.docs import doc_failures

    root = workspace_root(args.root)
    settings = asyncio.run(resolve_default_backends(load_settings(root)))
    try:
        docgen = Docgen(root, settings)
    except DocPathError as exc:
        raise CliError(str(exc)) from exc
    only = [workspace_file(root, value, "--file") for value in args.file or []]
    store = open_workspace_store(root, readonly=args.status)
    try:
        if only and not args.status:
            # Only the files asked for; cross-references come from the existing index.
            from spanlens_lsp.workspace.files import index_file

            for path in only:
                index_file(store, root, path, settings.index)
        elif not args.status:
            run_index(root, store, show_progress=not args.json)
        graph = docgen.load(store)
        failures = {} if args.status else doc_failures(store)
    finally:
        store.close()
    for path in only:
        if path not in graph.files:
            raise CliError(f"--file {path}: not indexed, or it has no spans")
    if args.status:
        counts = docgen.coverage(graph)
        if args.json:
            print(json.dumps({**counts, "dir": str(docgen.folder)}))
        else:
            print(
                f"docs in {docgen.folder}: {counts['fresh']} fresh, {counts['stale']} stale, "
                f"{counts['missing']} missing, {counts['waiting']} waiting for enrichment"
            )
        return EXIT_OK
    plans = [docgen.plan(graph, path) for path in (only or sorted(graph.files))]
    headers = {p.path: docgen.header(p.path) for p in plans}
    states = {p.path: doc_state(p, headers[p.path]) for p in plans}
    todo = [p for p in plans if states[p.path] in (DOC_MISSING, DOC_STALE)]
    # A doc that failed max_failures times for its current overview key is left alone, like
    # a span failed for good, until the file or its spans change; one still backing off is
    # tried again now (an explicit run), and every result is kept for the server's backoff.
    max_failures = settings.enrichment.max_failures
    given_up = {
        p.path
        for p in todo
        if (f := failures.get(p.path)) is not None
        and f.overview_key == p.overview_key
        and f.count >= max_failures
    }
    todo = [p for p in todo if p.path not in given_up]
    calls = [p for p in todo if needs_model_call(p, headers[p.path])]
    waiting = sorted(path for path, state in states.items() if state == "waiting")
    if args.dry_run:
        return _print_dry_run(args.json, docgen, todo, {p.path for p in calls}, waiting)
    if calls and docgen.model is None:
        raise CliError(f"no backend in tier {docgen.writer.tier}: no doc was written")
    lock = docs_lock(root)
    try:
        acquire(lock, 0)
    except DocsLocked:
        print("another spanlens process is writing docs; waiting for it to finish", flush=True)
        try:
            acquire(lock, LOCK_WAIT_SECONDS)
        except DocsLocked as exc:
            raise CliError(f"{exc} (lock {lock.lock_file}); no doc was written") from exc
    progress = ProgressBar("docs", not args.json, min_total=1)
    try:
        removed = [] if only else docgen.remove_orphans(graph)
        results = asyncio.run(_write(root, settings, docgen, todo, progress, write_docs))
    finally:
        progress.close()
        lock.release()
    by_path = {p.path: p for p in todo}
    store = open_workspace_store(root)
    try:
        for result in results:
            record_doc_result(store, settings, by_path[result.path], result)
    finally:
        store.close()
    fresh = len(plans) - len(todo) - len(given_up)
    return _print_results(args.json, docgen, results, removed, waiting, fresh, sorted(given_up))


async def _write(
    root: Any, settings: Any, docgen: Any, todo: list[Any], progress: Any, write_docs: Any
) -> Any:
    """Write the docs, asking for overviews through the engine's call path (built as the
    server builds it), so each overview call is recorded in ``attempts`` like a span's."""
    from spanlens_lsp.app import command_calls

    async with command_calls(root, settings) as calls:
        docgen.writer.calls = calls
        return await write_docs(docgen, todo, progress)


def _print_dry_run(
    as_json: bool, docgen: Any, todo: list[Any], calls: set[str], waiting: list[str]
) -> int:
    rows = [
        {"path": p.path, "doc": str(docgen.doc_of(p.path)), "modelCall": p.path in calls}
        for p in todo
    ]
    if as_json:
        print(json.dumps({"write": rows, "modelCalls": len(calls), "waiting": waiting}))
        return EXIT_OK
    for row in rows:
        how = "1 model call" if row["modelCall"] else "re-render, no model call"
        print(f"would write {row['doc']} ({how})")
    print(f"{len(rows)} docs, {len(calls)} model calls; {len(waiting)} files wait for enrichment")
    return EXIT_OK


def _print_results(
    as_json: bool,
    docgen: Any,
    results: list[Any],
    removed: list[str],
    waiting: list[str],
    fresh: int,
    skipped: list[str],
) -> int:
    written = [r for r in results if r.written]
    failed = [r for r in results if not r.written]
    calls = sum(r.model_calls for r in results)
    if as_json:
        print(
            json.dumps(
                {
                    "dir": str(docgen.folder),
                    "docs": [r.as_json() for r in results],
                    "written": len(written),
                    "failed": len(failed),
                    "modelCalls": calls,
                    "removed": removed,
                    "waiting": waiting,
                    "skipped": skipped,
                }
            )
        )
    else:
        rendered = sum(1 for r in written if r.rendered_only)
        print(
            f"docs in {docgen.folder}: {len(written)} written ({calls} model calls, "
            f"{rendered} re-rendered without one), {len(failed)} failed, {len(removed)} removed; "
            f"{len(waiting) if waiting else 0} files wait for enrichment"
        )
        for result in failed:
            print(f"  {result.path}: {result.error}")
        for path in skipped:
            print(f"  {path}: its doc failed too often; skipped until the file or its spans change")
    return EXIT_ERROR if failed or skipped else EXIT_OK
