"""`--help` of every command ends with examples, says how ROOT is found where it takes one, and
`spanlens --help` documents `--json` (for exactly the commands that have it) and NO_COLOR
(issue 18 §2)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from spanlens_lsp.cli import build_parser
from spanlens_lsp.cli.common import ROOT_RULE

SPANLENS = str(Path(sys.executable).parent / "spanlens")


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand's parser, by its words after `spanlens`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from commands(child, (*path, name))


def examples(help_text: str) -> list[str]:
    """The lines of the "examples:" part that ends ``help_text`` (empty when none ends it)."""
    match = re.search(r"\nexamples:\n((?:  \S.*\n?)+)\Z", help_text)
    return [line.strip() for line in match.group(1).splitlines()] if match else []


def flat(text: str) -> str:
    return " ".join(text.split())


def test_every_command_help_ends_with_examples_of_that_command() -> None:
    found = dict(commands(build_parser()))
    assert {"index", "show", "status", "enrich", "completion"} <= {p[0] for p in found}
    assert ("model", "install") in found
    for path, parser in found.items():
        lines = examples(parser.format_help())
        assert 1 <= len(lines) <= 3, (path, parser.format_help())
        for line in lines:
            assert line.startswith("spanlens " + " ".join(path)), (path, line)


def test_commands_that_take_root_say_how_it_is_found() -> None:
    for path, parser in commands(build_parser()):
        takes_root = any(a.dest == "root" for a in parser._actions)
        assert (flat(ROOT_RULE) in flat(parser.format_help())) == takes_root, path
    assert flat(ROOT_RULE) in flat(build_parser().format_help())


def test_main_help_documents_json_for_exactly_the_commands_that_have_it() -> None:
    main = flat(build_parser().format_help())
    listed = re.search(r"--json \(([^)]*)\) prints JSON", main)
    assert listed is not None, main
    with_json = {
        " ".join(path)
        for path, parser in commands(build_parser())
        if any("--json" in a.option_strings for a in parser._actions)
    }
    assert set(listed.group(1).split(", ")) == with_json
    assert "NO_COLOR=1" in main


def test_the_installed_command_prints_the_examples() -> None:
    done = subprocess.run(
        [SPANLENS, "status", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert examples(done.stdout) == ["spanlens status", "spanlens status --json | jq .pending"]
