"""`spanlens index`, `show` and `status`: output a user reads, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

CODE = '''
def parse_config(path: str, strict: bool = False) -> dict:
    """Read a config file."""
    with open(path) as handle:
        text = handle.read()
    if strict and not text:
        raise ValueError("empty config")
    return {"text": text}


class Loader:
    def load(self, name):
        return parse_config(name)
'''


def test_index_json_has_the_documented_flat_keys(
    tmp_path: Path, write: Callable, cli: Callable
) -> None:
    write("app/config.py", CODE)
    code, out, err = cli("index", str(tmp_path), "--json")
    assert code == 0, err
    data = json.loads(out)
    for key in (
        "files_indexed",
        "files_unchanged",
        "files_skipped",
        "spans_added",
        "spans_changed",
        "spans_removed",
        "spans_unchanged",
        "spans_total",
        "seconds",
    ):
        assert key in data
    assert data["files_indexed"] == 1 and data["spans_total"] == 3
    assert all(not isinstance(v, (dict, list)) for v in data.values())


def test_index_human_summary(tmp_path: Path, write: Callable, cli: Callable) -> None:
    write("app/config.py", CODE)
    code, out, _ = cli("index", str(tmp_path))
    assert code == 0
    assert "1 indexed" in out and "3 added" in out


def test_show_renders_facts_labelled_as_facts_and_pending(
    tmp_path: Path, write: Callable, cli: Callable
) -> None:
    path = write("app/config.py", CODE)
    cli("index", str(tmp_path))
    code, out, err = cli("show", f"{path}:5", "--root", str(tmp_path))
    assert code == 0, err
    assert "parse_config" in out
    assert "Parser facts:" in out  # piped: plain text, no Markdown
    assert "raises: ValueError" in out and "file_io" in out and "\\" not in out
    assert "pending" in out
    code, out, _ = cli("show", f"{path}:5", "--root", str(tmp_path), "--markdown")
    assert code == 0 and "**Parser facts**" in out and "`ValueError`" in out
    # innermost span wins: line 12 is inside Loader.load
    code, out, _ = cli("show", f"{path}:12", "--root", str(tmp_path), "--json")
    view = json.loads(out)
    assert view["name"] == "Loader.load" and view["state"] == "pending"
    assert view["enrichment"] is None


def test_show_errors_are_one_line(tmp_path: Path, write: Callable, cli: Callable) -> None:
    path = write("app/config.py", CODE)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.py"
    outside.write_text("def x():\n    pass\n")
    cases = [
        (("show", "nonsense"), "PATH:LINE"),
        (("show", f"{path}:0"), "PATH:LINE"),
        (("show", f"{tmp_path}/missing.py:3", "--root", str(tmp_path)), "no such file"),
        (("show", f"{path}:9", "--root", str(tmp_path)), "not inside any"),
        (("show", f"{outside}:1", "--root", str(tmp_path)), "outside the workspace"),
        (("index", str(tmp_path / "nope")), "does not exist"),
        (("status", str(tmp_path / "nope")), "does not exist"),
    ]
    for args, expected in cases:
        code, _, err = cli(*args)
        assert code != 0, args
        assert expected in err, (args, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_status_counts_languages_kinds_and_states(
    tmp_path: Path, write: Callable, cli: Callable
) -> None:
    write("app/config.py", CODE)
    write("web/app.js", "function main() {}\nclass View { render() {} }\n")
    cli("index", str(tmp_path))
    code, out, _ = cli("status", str(tmp_path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["files"] == 2
    assert data["languages"]["python"]["spans"] == {"class": 1, "function": 1, "method": 1}
    assert data["pending"] == data["spans"] and data["enriched"] == 0
    code, out, _ = cli("status", str(tmp_path))
    assert "python" in out and "javascript" in out and "pending" in out


def test_status_without_an_index_says_what_to_do(tmp_path: Path, cli: Callable) -> None:
    code, _, err = cli("status", str(tmp_path))
    assert code == 1 and "spanlens index" in err


def test_corrupt_database_is_reported_and_rebuilt(
    tmp_path: Path, write: Callable, cli: Callable
) -> None:
    write("app/config.py", CODE)
    (tmp_path / ".spanlens").mkdir()
    (tmp_path / ".spanlens" / "index.db").write_bytes(b"garbage" * 1000)
    code, out, err = cli("index", str(tmp_path), "--json")
    assert code == 0
    assert "damaged" in err
    assert json.loads(out)["spans_total"] == 3
    assert any(p.name.startswith("index.db.corrupt-") for p in (tmp_path / ".spanlens").iterdir())


def test_show_of_odd_inputs_is_one_plain_line(
    tmp_path: Path, write: Callable, cli: Callable
) -> None:
    import os

    path = write("app/config.py", CODE)
    (tmp_path / "latin1.py").write_bytes(b"def caf\xe9():\n    pass\n")
    os.mkfifo(tmp_path / "pipe.py")
    root = ("--root", str(tmp_path))
    cases = [
        ((f"{path}:99999999999999999999", *root), "app/config.py has 12 lines; there is no line"),
        ((f"{path}:13", *root), "there is no line 13"),
        ((f"{path}:0", *root), "PATH:LINE"),
        ((f"{tmp_path / 'app'}:1", *root), "is a directory"),
        ((f"{tmp_path / 'pipe.py'}:1", *root), "is not a regular file"),
        ((f"{tmp_path / 'latin1.py'}:1", *root), "latin1.py is not indexed: not valid UTF-8"),
    ]
    for args, expected in cases:
        code, out, err = cli("show", *args)
        assert code != 0, args
        assert expected in err, (args, err)
        assert "internal error" not in err and len(err.strip().splitlines()) == 1
        assert out == ""


def test_show_of_an_ignored_file_says_which_rule_and_indexes_nothing(
    tmp_path: Path, write: Callable, cli: Callable
) -> None:
    import sqlite3

    write("app/config.py", CODE)
    write("node_modules/pkg/x.js", "function f() { return 1; }\n")
    write("gen/out.py", CODE)
    write(".gitignore", "gen/\n")
    write("bundle.min.js", "function f() { return 1; }\n")
    cli("index", str(tmp_path))
    cases = {
        "node_modules/pkg/x.js": "node_modules/ is a folder spanlens never indexes",
        "gen/out.py": "pattern 'gen/' in .gitignore",
        "bundle.min.js": "not indexed: generated",
    }
    for rel, expected in cases.items():
        code, out, err = cli("show", f"{tmp_path / rel}:1", "--root", str(tmp_path))
        assert code == 1 and out == ""
        assert err.startswith(f"spanlens: {rel} is not indexed: ") and expected in err, err
    conn = sqlite3.connect(tmp_path / ".spanlens" / "index.db")
    paths = {row[0] for row in conn.execute("SELECT path FROM files")}
    conn.close()
    assert paths == {"app/config.py"}


def test_an_index_path_that_is_no_file_is_one_plain_line(
    tmp_path: Path, write: Callable, cli: Callable
) -> None:
    write("app/config.py", CODE)
    (tmp_path / ".spanlens" / "index.db").mkdir(parents=True)
    for command in ("index", "status", "stats"):
        code, out, err = cli(command, str(tmp_path))
        assert (code, out) == (1, "")
        assert err == f"spanlens: cannot open {tmp_path}/.spanlens/index.db: it is a directory\n"
    (tmp_path / ".spanlens" / "index.db").rmdir()
    (tmp_path / ".spanlens").rmdir()
    (tmp_path / ".spanlens").write_text("not a folder")
    code, out, err = cli("index", str(tmp_path))
    assert (code, out) == (1, "")
    assert err == f"spanlens: cannot create {tmp_path}/.spanlens: File exists\n"


def test_the_last_line_of_defence_names_database_and_file_failures_plainly() -> None:
    import errno
    import sqlite3

    from spanlens_lsp.cli import _plain_line

    cases = [
        (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.OperationalError("disk I/O error"), "disk I/O error"),
        (OSError(errno.ENOSPC, "No space left on device", "/w/x.py"), "/w/x.py: No space left"),
        (PermissionError(errno.EACCES, "Permission denied", "/w/.spanlens"), "Permission denied"),
    ]
    for exc, expected in cases:
        line = _plain_line(exc)
        assert line is not None and line.startswith("spanlens: ") and expected in line
        assert "internal error" not in line and "\n" not in line
    assert _plain_line(ZeroDivisionError("x")) is None  # a real bug still says internal error
