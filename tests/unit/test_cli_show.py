"""`spanlens show` output: rendered on a terminal, plain when piped, raw with --markdown.

Model text is untrusted: whatever an enrichment holds (rich markup, ANSI and OSC 8 escape
sequences, URLs, bidi overrides) must reach the terminal as inert text. The enrichment is
written with the store's own ``put_enrichment``, so these tests defend the terminal even if
validation upstream ever lets such text through.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store

Cli = Callable[..., tuple[int, str, str]]

SOURCE = '''
def make_str(value, width=8):
    """Pad a value."""
    return str(value).rjust(width)
'''

ANSI_BLINK = "\x1b[5;31m"
OSC8_OPEN = "\x1b]8;;http://evil.example/\x07"
HOSTILE = {
    "summary": (
        "Pads [link=http://x]click[/link] and [bold]shouts[/bold] "
        f"{ANSI_BLINK}BLINK\x1b[0m {OSC8_OPEN}here\x1b]8;;\x07 "
        "see https://evil.example/x for make_str behaviour. \u202eelif"
    ),
    "inputs": ["value: anything `str()` takes", "width: the [red]width[/red]"],
    "outputs": ["the padded string"],
    "side_effects": [],
    "pitfalls": ["\x1b[2J clears nothing"],
    "tags": ["text"],
    "usage_snippet": "make_str(3)",
    "evidence": [{"field": "summary", "lines": [1, 3]}],
}


@pytest.fixture
def project(write: Callable[[str, str], Path], tmp_path: Path) -> Path:
    write("fmt.py", SOURCE)
    store = open_store(tmp_path)
    try:
        index_files(tmp_path, store, workers=1)
        span = store.span_at("fmt.py", 0)
        assert span is not None
        stored = queries.put_enrichment(
            store,
            span.content_hash,
            ENRICHMENT_VERSION,
            HOSTILE,
            model="m",
            tier="small",
            backend="b",
            host="127.0.0.1",
        )
        assert stored
    finally:
        store.close()
    return tmp_path


def assert_inert(out: str) -> None:
    """No escape sequence, hyperlink or bidi override from the model came through."""
    assert ANSI_BLINK not in out and "\x1b[2J" not in out
    assert "\x1b]8" not in out and "\x07" not in out  # no OSC 8 hyperlink, from anyone
    assert "\u202e" not in out


def test_piped_show_is_plain_readable_text(project: Path, cli: Cli) -> None:
    code, out, err = cli("show", f"{project / 'fmt.py'}:2", "--root", str(project))
    assert code == 0, err
    assert_inert(out)
    assert "\x1b" not in out  # no styling at all in a pipe
    # The model's words as it wrote them: no Markdown escapes, markup shown literally.
    assert "Pads [link=http://x]click[/link] and [bold]shouts[/bold]" in out
    assert "see https://evil.example/x for make_str behaviour." in out
    assert "\\" not in out and "**" not in out
    assert "Parser facts:" in out and "  - value: anything `str()` takes" in out


def test_show_names_the_model_that_wrote_the_enrichment(project: Path, cli: Cli) -> None:
    store = open_store(project)
    try:
        span = store.span_at("fmt.py", 0)
        assert span is not None
        queries.put_enrichment(
            store, span.content_hash, ENRICHMENT_VERSION, HOSTILE,
            model="hf.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1\x1b[5m", tier="small",
            backend="b", host="127.0.0.1",
        )  # fmt: skip
    finally:
        store.close()
    for extra in ((), ("--markdown",)):
        code, out, err = cli("show", f"{project / 'fmt.py'}:2", "--root", str(project), *extra)
        assert code == 0, err
        assert "enriched by SmolLM2-135M-Instruct-GGUF:Q4_1 (small) on " in out, out
        assert "\x1b" not in out


def test_markdown_flag_prints_the_hover_source(project: Path, cli: Cli) -> None:
    code, out, err = cli("show", f"{project / 'fmt.py'}:2", "--root", str(project), "--markdown")
    assert code == 0, err
    assert_inert(out)
    assert "**Parser facts**" in out and "```python\ndef make_str" in out
    assert "make\\_str" in out or "make_str" in out  # escaping is the presentation's choice
    code, _, err = cli("show", f"{project / 'fmt.py'}:2", "--markdown", "--json")
    assert code == 2 and "not allowed with" in err


def test_json_is_unchanged(project: Path, cli: Cli) -> None:
    code, out, _ = cli("show", f"{project / 'fmt.py'}:2", "--root", str(project), "--json")
    view = json.loads(out)
    assert code == 0 and view["enrichment"]["data"]["summary"] == HOSTILE["summary"]


def run_in_terminal(*args: str) -> tuple[int, str]:
    """Run `spanlens ARGS` with stdout and stderr on a pseudo-terminal: (status, output)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="40")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spanlens_lsp.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


_SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_terminal_show_renders_markdown_and_keeps_model_text_inert(project: Path) -> None:
    code, out = run_in_terminal("show", f"{project / 'fmt.py'}:2", "--root", str(project))
    assert code == 0, out
    assert_inert(out)
    # rendered, not the source: styled (rich's own SGR codes), no Markdown punctuation left
    assert _SGR.search(out)
    visible = _SGR.sub("", out).replace("\r\n", "\n")
    assert "Parser facts" in visible and "**" not in visible
    assert "\\." not in visible and "make\\_str" not in visible
    assert "[link=http://x]click[/link]" in visible and "[bold]shouts[/bold]" in visible
    assert "https://evil.example/x" in visible
    assert re.sub(r"\s+", " ", visible).count("the [red]width[/red]") == 1
    # Only styling escapes (SGR) reach the terminal: no cursor moves, clears or OSC.
    assert not re.search(r"\x1b(?!\[[0-9;]*m)", out)
