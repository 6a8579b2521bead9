"""`spanlens` command line: index, enrich, docgen, show, status, stats, doctor, serve.

Imports are lazy, per command: `spanlens index` must not pay for the LSP or HTTP stacks.
Every failure a user can cause ends in one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `spanlens` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or EXIT_OK)
    except CliError as exc:
        print(f"spanlens: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("spanlens: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback
        from spanlens.config import ConfigError
        from spanlens.store import StoreError

        if isinstance(exc, (ConfigError, StoreError)):
            print(f"spanlens: {exc}", file=sys.stderr)
            return EXIT_ERROR
        if _debug():
            raise
        print(
            f"spanlens: internal error: {type(exc).__name__}: {exc} "
            "(set SPANLENS_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _debug() -> bool:
    import os

    return os.environ.get("SPANLENS_DEBUG", "") not in {"", "0"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from spanlens import __version__

    parser = argparse.ArgumentParser(
        prog="spanlens",
        description="Know what every function in your repository does.",
    )
    parser.add_argument("--version", action="version", version=f"spanlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("index", "index the workspace: spans and parser facts", cmd_index)
    p.add_argument("root", nargs="?", default=".", help="workspace root (default: .)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("show", "show the span at PATH:LINE as its hover does", cmd_show)
    p.add_argument("location", metavar="PATH:LINE", help="file and 1-based line number")
    p.add_argument("--root", help="workspace root (default: nearest indexed ancestor, or .)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("serve", "run the language server (stdio unless --tcp is given)", cmd_serve)
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP address instead")

    p = command("status", "files and spans by language and kind, enrichment states", cmd_status)
    p.add_argument("root", nargs="?", default=".", help="workspace root (default: .)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("enrich", "index, then enrich pending spans through the model backends", cmd_enrich)
    p.add_argument("root", nargs="?", default=".", help="workspace root (default: .)")
    p.add_argument("--limit", type=int, metavar="N", help="enrich at most N pending spans")
    p.add_argument("--tier", metavar="T", help="start every span at tier T")
    p.add_argument("--retry-failed", action="store_true", help="retry spans marked failed")
    p.add_argument(
        "--only",
        action="append",
        metavar="PATH",
        help="enrich only spans of this file (repeatable; relative to ROOT or absolute)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("stats", "model calls per tier and backend: success, tokens, cost", cmd_stats)
    p.add_argument("root", nargs="?", default=".", help="workspace root (default: .)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("doctor", "check config, backends, GPU and database; say how to fix", cmd_doctor)
    p.add_argument("root", nargs="?", default=".", help="workspace root (default: .)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


# ---------------------------------------------------------------- helpers


def workspace_root(value: str) -> Path:
    """Resolve and check a workspace root argument."""
    root = Path(value).expanduser()
    if not root.exists():
        raise CliError(f"workspace root {value!r} does not exist")
    if not root.is_dir():
        raise CliError(f"workspace root {value!r} is not a directory")
    return root.resolve()


def open_workspace_store(root: Path) -> Any:
    """Open the workspace database, telling the user when a corrupt one was set aside."""
    from spanlens.store import open_store

    store = open_store(root)
    if store.recovered_from is not None:
        print(
            f"spanlens: the database was damaged; kept it as {store.recovered_from.name} "
            "and started a new one",
            file=sys.stderr,
        )
    return store


class ProgressBar:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        """Redraw at most once per percent."""
        if not self.enabled or total < 50:
            return
        percent = done * 100 // max(total, 1)
        if percent == self._last and done != total:
            return
        self._last = percent
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total} {extra}".rstrip() + " ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_index(root: Path, store: Any, show_progress: bool) -> Any:
    """Index ``root`` into ``store`` with the workspace's settings."""
    from spanlens.config import load_settings
    from spanlens.indexing.indexer import index_workspace

    settings = load_settings(root)
    return index_workspace(
        root,
        store,
        exclude=settings.index.exclude,
        max_size=settings.index.max_file_size,
        workers=settings.index.workers,
        progress=ProgressBar("indexing", show_progress),
    )


# ---------------------------------------------------------------- commands


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


def parse_location(location: str) -> tuple[Path, int]:
    """Split ``PATH:LINE`` (1-based line) into its parts."""
    path, sep, line = location.rpartition(":")
    if not sep or not path or not line.isdigit() or int(line) < 1:
        raise CliError(
            f"expected PATH:LINE with a line number from 1, got {location!r}", EXIT_USAGE
        )
    return Path(path).expanduser(), int(line)


def cmd_show(args: argparse.Namespace) -> int:
    """`spanlens show PATH:LINE [--json]`."""
    from spanlens.config import load_settings
    from spanlens.indexing.indexer import index_text, relative_path
    from spanlens.presentation.markdown import render_markdown
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
        stale = known is None or known.sha256 != _sha(data)
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
        print(f"{span.path}:{span.start_line + 1}-{span.end_line + 1}  {span.kind} {span.name}\n")
        print(render_markdown(view))
    return EXIT_OK


def _sha(data: bytes) -> str:
    from spanlens.indexing.hashing import file_sha256

    return file_sha256(data)


def cmd_serve(args: argparse.Namespace) -> int:
    """`spanlens serve [--stdio] [--tcp HOST:PORT]`."""
    if args.stdio and args.tcp:
        raise CliError("choose one of --stdio and --tcp", EXIT_USAGE)
    address = None
    if args.tcp:
        host, sep, port = args.tcp.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise CliError(f"expected --tcp HOST:PORT, got {args.tcp!r}", EXIT_USAGE)
        address = (host, int(port))
    from spanlens.lsp.server import serve_stdio, serve_tcp

    if address is None:
        serve_stdio()
    else:
        serve_tcp(*address)
    return EXIT_OK


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
    print(f"{sum(c for _, c, _ in files)} files, {total_spans} spans")
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


def cmd_enrich(args: argparse.Namespace) -> int:
    """`spanlens enrich [ROOT] [--limit N] [--tier T] [--retry-failed] [--only PATH] [--json]`."""
    import asyncio

    from spanlens.config import load_settings
    from spanlens.enrichment import runner
    from spanlens.store.enrichments import retry_failed

    root = workspace_root(args.root)
    settings = load_settings(root)
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1", EXIT_USAGE)
    tiers = [b.tier for b in settings.backends]
    if args.tier is not None and args.tier not in tiers:
        raise CliError(f"--tier {args.tier}: no backend has that tier (tiers: {tiers})", EXIT_USAGE)
    only = [_workspace_file(root, value) for value in args.only] if args.only else None
    probes = asyncio.run(runner.preflight(settings))
    if not any(p["reachable"] for p in probes):
        raise CliError(runner.refusal_message(probes))
    if not any(runner.serves_model(p) for p in probes):
        raise CliError(runner.unusable_message(probes))
    store = open_workspace_store(root)
    try:
        run_index(root, store, show_progress=not args.json)
        if args.retry_failed:
            retry_failed(store)
    finally:
        store.close()
    progress = ProgressBar("enriching", not args.json)
    run = asyncio.run(
        runner.run_enrich(
            root, settings, limit=args.limit, tier=args.tier, paths=only, progress=progress
        )
    )
    if args.json:
        print(json.dumps(run.as_json()))
    else:
        print("\n".join(runner.summary_lines(run)))
    return EXIT_ERROR if run.stopped else EXIT_OK


def _workspace_file(root: Path, value: str) -> str:
    """A file argument (relative to ROOT, or absolute) as a workspace-relative path."""
    from spanlens.indexing.indexer import relative_path

    path = Path(value).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise CliError(f"--only {value}: no such file", EXIT_USAGE)
    rel = relative_path(root, path)
    if rel is None:
        raise CliError(f"--only {value}: outside the workspace {root}", EXIT_USAGE)
    return rel


def cmd_stats(args: argparse.Namespace) -> int:
    """`spanlens stats [ROOT] [--json]`."""
    from spanlens.enrichment.reports import stats_report
    from spanlens.store import open_store

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
        f"{report['calls_saved_by_batching']} calls saved by batching, "
        f"estimated cost {report['cost']:.4f}"
    )
    for row in report["backends"]:
        gpu = ", ".join(f"{k[9:]} {v:g}" for k, v in row.items() if k.startswith("gpu_peak_"))
        print(
            f"  {row['tier']:<8} {row['backend']:<12} {row['calls']:>6} calls "
            f"{row['success_rate']:>6.0%} ok  tokens {row['tokens_in']}/{row['tokens_out']}  "
            f"p50 {row['latency_p50_ms']:.0f}ms p95 {row['latency_p95_ms']:.0f}ms  "
            f"saved {row['calls_saved_by_batching']}  cost {row['cost']:.4f}"
            + (f"  gpu peak: {gpu}" if gpu else "")
        )
        if row["failures"]:
            print(f"           failures: {row['failures']}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """`spanlens doctor [ROOT] [--json]`: exit 1 when something needs fixing."""
    import asyncio

    from spanlens.enrichment.reports import doctor_report

    root = workspace_root(args.root)
    report = asyncio.run(doctor_report(root))
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
            print(f"database: {db['path']}: " + db.get("error", "not created yet"))
    if not report["problems"]:
        print("no problems found")
        return EXIT_OK
    print(f"{len(report['problems'])} problem(s):")
    for problem in report["problems"]:
        print(f"  - {problem}")
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
