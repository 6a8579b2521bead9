"""`spanlens` command line: index, enrich, docgen, show, search, status, stats, doctor, serve,
model, completion.

Imports are lazy, per command: `spanlens index` must not pay for the LSP or HTTP stacks.
Every failure a user can cause ends in one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

from spanlens_lsp.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    ROOT_RULE,
    CliError,
    help_options,
)
from spanlens_lsp.cli.completion import add_completion_parser
from spanlens_lsp.cli.docgen import cmd_docgen
from spanlens_lsp.cli.doctor import cmd_doctor
from spanlens_lsp.cli.embed import cmd_embed
from spanlens_lsp.cli.enrich import cmd_enrich
from spanlens_lsp.cli.index import cmd_index
from spanlens_lsp.cli.model import add_model_parser
from spanlens_lsp.cli.search import cmd_search
from spanlens_lsp.cli.serve import cmd_serve
from spanlens_lsp.cli.show import cmd_show
from spanlens_lsp.cli.stats import cmd_stats
from spanlens_lsp.cli.status import cmd_status

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `spanlens` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    with _store_notices():
        try:
            code = _run_rebuilding(args)
            if not sys.stdout.closed:  # `serve` closes it at exit
                sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
            return code
        except BrokenPipeError:
            # The reader went away (`spanlens stats | head -1`): stop quietly, as Unix tools
            # do, and keep Python from reporting the pipe again when it exits.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        except CliError as exc:
            print(f"spanlens: {exc}", file=sys.stderr)
            return exc.code
        except KeyboardInterrupt:
            print("spanlens: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # the last line of defence: one line, never a traceback
            line = _plain_line(exc)
            if line is None and _debug():
                raise
            print(
                line
                or f"spanlens: internal error: {type(exc).__name__}: {exc} "
                "(set SPANLENS_DEBUG=1 for a traceback)",
                file=sys.stderr,
            )
            return EXIT_ERROR


def _run_rebuilding(args: argparse.Namespace) -> int:
    """Run the command; when SQLite finds the database damaged part-way (after the check on
    open passed), set it aside, rebuild it with what can be salvaged, and run again once."""
    from spanlens_lsp.store.errors import StoreCorrupt

    try:
        return int(args.handler(args) or EXIT_OK)
    except StoreCorrupt as exc:
        if exc.path is None or not exc.path.exists():
            raise
        from spanlens_lsp.store.repair import recover

        try:
            recover(exc.path, exc.inode)  # says so in one line (see _store_notices)
        except OSError as error:
            raise CliError(
                f"{exc} and cannot be rebuilt: {error.strerror or error}; delete it and run "
                "`spanlens index`"
            ) from error
    return int(args.handler(args) or EXIT_OK)


@contextlib.contextmanager
def _store_notices() -> Iterator[None]:
    """Print the store's one-line notices (a damaged database set aside) on stderr."""
    import logging

    class _Line(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(f"spanlens: {record.getMessage()}", file=sys.stderr)

    # Records still propagate: under `serve`, the editor's log gets them as well.
    logger = logging.getLogger("spanlens_lsp.store.repair")
    handler = _Line(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _plain_line(exc: BaseException) -> str | None:
    """One line for failures a user can act on (bad config, database, files), else None."""
    import sqlite3

    from spanlens_lsp.settings import ConfigError
    from spanlens_lsp.store.errors import StoreError

    if isinstance(exc, (ConfigError, StoreError)):
        return f"spanlens: {exc}"
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        lowered = text.lower()
        if "disk is full" in lowered:
            return "spanlens: the disk is full: the index cannot be written"
        if "readonly" in lowered or "read-only" in lowered:
            return "spanlens: the index is read-only; make .spanlens writable to index or enrich"
        if "unable to open database" in lowered:
            return "spanlens: cannot open the index (.spanlens/index.db): check its permissions"
        if "disk i/o error" in lowered:
            return "spanlens: disk I/O error while reading or writing the index"
        return f"spanlens: database error: {text}"
    if isinstance(exc, OSError):
        where = f"{os.fsdecode(exc.filename)}: " if exc.filename else ""
        return f"spanlens: {where}{exc.strerror or exc}"
    if isinstance(exc, UnicodeError):
        return f"spanlens: a file name or file is not valid UTF-8 ({exc})"
    return None


def _debug() -> bool:
    import os

    return os.environ.get("SPANLENS_DEBUG", "") not in {"", "0"}


ROOT_HELP = "workspace root (default: the project around the current folder; see below)"

#: The end of `spanlens --help`: how ROOT is found, output conventions, examples.
MAIN_EPILOG = f"""\
{textwrap.fill(ROOT_RULE + ".", 79)}

--json (index, show, search, status, enrich, embed, docgen, stats, doctor, model
list) prints JSON on stdout and draws no progress bar. Progress bars and rendered
Markdown appear only on a terminal; NO_COLOR=1 keeps them free of colour. `spanlens
COMMAND --help` shows each command's examples; `spanlens completion bash|zsh|fish`
prints a completion script.

examples:
  spanlens index && spanlens status
  spanlens show src/app/cli.py:42"""


def _file_filter(parser: argparse.ArgumentParser, flag: str, what: str) -> None:
    """A repeatable ``flag PATH`` that limits a command to files (relative to the current
    folder), as ``enrich --only``, ``embed --only`` and ``docgen --file`` take it."""
    parser.add_argument(
        flag,
        action="append",
        metavar="PATH",
        help=f"{what} (repeatable; relative to the current folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from spanlens_lsp import __version__

    parser = argparse.ArgumentParser(
        prog="spanlens",
        description="Know what every function in your repository does.",
        epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"spanlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str,
        help_text: str,
        handler: Callable[[argparse.Namespace], int],
        *examples: str,
        root: bool = True,
    ) -> Any:
        options = help_options(*examples, root=root)
        p = sub.add_parser(name, help=help_text, description=help_text, **options)
        p.set_defaults(handler=handler)
        return p

    p = command(
        "index",
        "index the workspace: spans and parser facts",
        cmd_index,
        "spanlens index                  # the project around the current folder",
        "spanlens index ~/src/app --json",
    )
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command(
        "show",
        "show the span at PATH:LINE as its hover does",
        cmd_show,
        "spanlens show src/app/cli.py:42",
        "spanlens show cli.py:42 --json  # in src/app/",
    )
    p.add_argument(
        "location", metavar="PATH:LINE", help="file (from the current folder) and 1-based line"
    )
    p.add_argument("--root", help=ROOT_HELP)
    output = p.add_mutually_exclusive_group()
    output.add_argument(
        "--markdown", action="store_true", help="print the hover's Markdown source as is"
    )
    output.add_argument("--json", action="store_true", help="print JSON")

    p = command(
        "search",
        "find spans by name, keywords and meaning",
        cmd_search,
        'spanlens search "read settings from disk"',
        "spanlens search parse_config --limit 5 --json",
    )
    p.add_argument("query", metavar="QUERY", help="what the span does, or (part of) its name")
    p.add_argument("--root", help=ROOT_HELP)
    p.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N results (default 20)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command(
        "serve",
        "run the language server (stdio unless --tcp is given)",
        cmd_serve,
        "spanlens serve                  # over stdio, as editors start it",
        "spanlens serve --tcp 127.0.0.1:2087",
        root=False,
    )
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP address instead")

    p = command(
        "status",
        "files and spans by language and kind, enrichment states",
        cmd_status,
        "spanlens status",
        "spanlens status --json | jq .pending",
    )
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command(
        "enrich",
        "index, enrich pending spans through the model backends, then embed them ([[embeddings]])",
        cmd_enrich,
        "spanlens enrich --limit 20",
        "spanlens enrich --only src/app/cli.py --json",
    )
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--limit", type=int, metavar="N", help="enrich at most N pending spans")
    p.add_argument("--tier", metavar="T", help="start every span at tier T")
    p.add_argument("--retry-failed", action="store_true", help="retry spans marked failed")
    _file_filter(p, "--only", "enrich only spans of this file")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command(
        "embed",
        "index, then embed every span whose text changed ([[embeddings]] endpoints)",
        cmd_embed,
        "spanlens embed                  # `spanlens enrich` embeds too, after enriching",
        "spanlens embed --only src/app/cli.py --json",
    )
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    _file_filter(p, "--only", "embed only spans of this file")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command(
        "docgen",
        "write per-file docs for files whose spans are all enriched",
        cmd_docgen,
        "spanlens docgen --dry-run       # the docs and model calls it would make",
        "spanlens docgen --file src/app/cli.py",
    )
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    _file_filter(p, "--file", "only this file's doc")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="list the docs and model calls it would make"
    )
    mode.add_argument("--status", action="store_true", help="doc coverage only; writes nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command(
        "stats",
        "model calls per tier and backend: success, tokens, cost",
        cmd_stats,
        "spanlens stats",
        "spanlens stats --json",
    )
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command(
        "doctor",
        "check config, backends, GPU and database; say how to fix",
        cmd_doctor,
        "spanlens doctor",
        "spanlens doctor ~/src/app --json",
    )
    p.add_argument("root", nargs="?", metavar="ROOT", help=ROOT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    add_model_parser(sub)
    add_completion_parser(sub, parser)
    return parser
