"""`spanlens model list | install [NAME] [--from PATH_OR_URL] | remove NAME`.

Exit codes: 0 done (or already installed), 1 the install or remove failed (every source
unreachable, a hash mismatch, not installed), 2 usage (an unknown model, a bad ``--from``),
3 not enough disk space.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from spanlens_lsp.cli.common import EXIT_OK, EXIT_USAGE, CliError, help_options


def add_model_parser(sub: Any) -> None:
    """Add ``model`` and its subcommands to the ``spanlens`` parser's subparsers."""
    text = "list, install or remove the built-in local models"
    p = sub.add_parser(
        "model",
        help=text,
        description=text,
        **help_options("spanlens model list", "spanlens model install  # the default model"),
    )
    p.set_defaults(handler=cmd_model)
    actions = p.add_subparsers(dest="model_command", metavar="ACTION")

    text = "the models, their sizes, which are installed and where"
    q = actions.add_parser(
        "list",
        help=text,
        description=text,
        **help_options("spanlens model list", "spanlens model list --json"),
    )
    q.add_argument("--json", action="store_true", help="print one JSON object")

    text = "download and verify a model (default: the default)"
    q = actions.add_parser(
        "install",
        help=text,
        description=text,
        **help_options(
            "spanlens model install qwen2.5-coder-0.5b",
            "spanlens model install --from ~/Downloads/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        ),
    )
    q.add_argument("name", nargs="?", metavar="NAME", help="the model (see `spanlens model list`)")
    q.add_argument(
        "--from",
        dest="source",
        metavar="PATH_OR_URL",
        help="install from this GGUF file or http(s) URL instead of the usual sources",
    )

    text = "delete an installed model"
    q = actions.add_parser(
        "remove",
        help=text,
        description=text,
        **help_options("spanlens model remove qwen2.5-coder-0.5b"),
    )
    q.add_argument("name", metavar="NAME")


def cmd_model(args: argparse.Namespace) -> int:
    """Run one ``spanlens model`` action."""
    from spanlens_lsp.localmodel.catalog import CatalogError, UnknownModel
    from spanlens_lsp.localmodel.install import InstallCancelled, InstallError

    action = {"list": _list, "install": _install, "remove": _remove}.get(args.model_command or "")
    if action is None:
        raise CliError(
            "say what to do: spanlens model list | install [NAME] | remove NAME", EXIT_USAGE
        )
    try:
        return action(args)
    except UnknownModel as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    except CatalogError as exc:
        raise CliError(str(exc)) from exc
    except InstallError as exc:
        raise CliError(str(exc), exc.code) from exc
    except InstallCancelled as exc:
        raise CliError("install cancelled; run it again to resume") from exc


def _list(args: argparse.Namespace) -> int:
    from spanlens_lsp.localmodel.catalog import catalog, default_model
    from spanlens_lsp.localmodel.install import partial_bytes
    from spanlens_lsp.localmodel.paths import cache_dir, installed_model_path, models_dir

    default = default_model()
    rows: list[dict[str, Any]] = []
    for spec in catalog().values():
        path = installed_model_path(spec.name)
        rows.append(
            {
                "name": spec.name,
                "label": spec.label,
                "kind": spec.kind,
                "filename": spec.filename,
                "size": spec.size,
                "sha256": spec.sha256,
                "default": spec.name == default,
                "installed": path is not None,
                "path": str(path) if path else None,
                "partial_bytes": 0 if path else partial_bytes(spec),
            }
        )
    if args.json:
        report = {
            "cache_dir": str(cache_dir()),
            "models_dir": str(models_dir()),
            "default": default,
            "models": rows,
        }
        print(json.dumps(report))
        return EXIT_OK
    width = max(len(str(row["name"])) for row in rows) + 2 if rows else 0
    for row in rows:
        mark = "*" if row["default"] else " "
        if row["installed"]:
            state = f"installed: {row['path']}"
        elif row["partial_bytes"]:
            share = int(row["partial_bytes"]) * 100 // max(int(row["size"]), 1)
            state = f"not installed ({share}% downloaded; `install` resumes)"
        else:
            state = "not installed"
        print(
            f"{mark} {row['name']:<{width}}{row['kind']:<11}{_size(int(row['size'])):>10}  "
            f"{row['label']}  — {state}"
        )
    print(f"* default. Models live in {models_dir()}; install with `spanlens model install`.")
    return EXIT_OK


def _install(args: argparse.Namespace) -> int:
    from spanlens_lsp.localmodel.catalog import default_model, get_model
    from spanlens_lsp.localmodel.install import install

    spec = get_model(args.name or default_model())
    started = time.monotonic()
    progress = TerminalProgress()
    try:
        result = install(spec, args.source, progress=progress)
    finally:
        progress.close()
    if not result.installed:
        print(f"{spec.name} is already installed: {result.path}")
        return EXIT_OK
    took = time.monotonic() - started
    print(
        f"installed {spec.name} ({spec.label}, {_size(spec.size)}, SHA-256 verified) at "
        f"{result.path} from {result.source} in {took:.0f} s"
    )
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    from spanlens_lsp.localmodel.catalog import get_model
    from spanlens_lsp.localmodel.install import remove

    path = remove(get_model(args.name))
    print(f"removed {args.name} ({path})")
    return EXIT_OK


class TerminalProgress:
    """Install progress on stderr: a rich bar on a terminal, else a line per tenth."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._total = 0
        self._done = 0
        self._label = ""
        self._last_tenth = -1

    def start(self, label: str, total: int, done: int = 0) -> None:
        """Begin a phase (a download, a copy) of ``total`` bytes."""
        self.close()
        self._label, self._total, self._done = label, total, done
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                TextColumn(label, markup=False),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True, markup=False, emoji=False, highlight=False),
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(label, total=total, completed=done)
            self._bar.start()
        else:
            resumed = f", resuming at {_size(done)}" if done else ""
            print(f"spanlens: {label} ({_size(total)}{resumed})", file=sys.stderr)
            self._last_tenth = done * 10 // max(total, 1)

    def advance(self, amount: int) -> None:
        """Move on by ``amount`` bytes."""
        self._done += amount
        if self._bar is not None:
            self._bar.update(self._task, advance=amount)
            return
        tenth = self._done * 10 // max(self._total, 1)
        if not self.tty and tenth > self._last_tenth:
            self._last_tenth = tenth
            print(f"spanlens: {self._label}: {tenth * 10}%", file=sys.stderr)

    def note(self, line: str) -> None:
        """Print one line (a source that failed, a wait for another install)."""
        self.close()
        print(f"spanlens: {line}", file=sys.stderr)

    def close(self) -> None:
        """Stop drawing the bar, if one is up."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _size(size: int) -> str:
    if size >= 1024**3:
        return f"{size / 1024**3:.2f} GiB"
    if size >= 1024**2:
        return f"{size / 1024**2:.0f} MiB"
    return f"{size:,} B"
