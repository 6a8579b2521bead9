"""A read-only index or workspace: reading commands work, writing ones say so in one line.

Tests run as root, which ignores permission bits, so the CLI runs here as ``nobody``
(``setpriv``) on a workspace root owns: the file system really refuses the writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

from spanlens_lsp.cli import main

NOBODY = 65534
CODE = '''def parse(text):
    """Split lines."""
    return text.splitlines()


class Loader:
    def load(self, name):
        return parse(name)
'''


def as_nobody(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `spanlens ARGS` as the unprivileged user nobody."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root for this test"
    command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    run = subprocess.run(
        [*command, sys.executable, "-m", "spanlens_lsp.cli", *args],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ, "HOME": "/", **(env or {})},
        timeout=120,
    )
    return run.returncode, run.stdout, run.stderr


@pytest.fixture
def root() -> Iterator[Path]:
    """A workspace owned by root that nobody can read but not write."""
    folder = Path(tempfile.mkdtemp(prefix="spanlens-ro-"))
    folder.chmod(0o755)
    (folder / "app.py").write_text(CODE, encoding="utf-8")
    (folder / "app.py").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _indexed(root: Path, *, folder_mode: int, file_mode: int) -> Path:
    assert main(["index", str(root)]) == 0
    db = root / ".spanlens" / "index.db"
    db.chmod(file_mode)
    db.parent.chmod(folder_mode)
    return db


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: Read-only database file (in a folder nobody may write to, or one anybody may).
MODES = {"read-only file": (0o777, 0o644), "read-only folder": (0o755, 0o666)}


@pytest.mark.parametrize("mode", MODES)
def test_status_and_show_read_a_read_only_index(root: Path, mode: str) -> None:
    db = _indexed(root, folder_mode=MODES[mode][0], file_mode=MODES[mode][1])
    before = _digest(db)

    code, out, err = as_nobody("status", str(root), "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["files"] == 1 and status["spans"] == 3 and status["pending"] == 3

    code, out, err = as_nobody("show", f"{root / 'app.py'}:2", "--root", str(root), "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "parse" and err == ""

    # A changed file is shown from a parse made now; the index stays as it was.
    (root / "app.py").write_text("import os\n\n" + CODE, encoding="utf-8")
    code, out, err = as_nobody("show", f"{root / 'app.py'}:4", "--root", str(root), "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "parse"
    assert err.strip() == (
        f"spanlens: the index is read-only ({db}); showing app.py as parsed now, "
        "without updating the index"
    )
    assert _digest(db) == before
    if mode == "read-only folder":
        names = sorted(p.name for p in db.parent.iterdir())
        assert names == [".gitignore", "index.db", "index.db.checked", "index.db.lock"]


@pytest.mark.parametrize("mode", MODES)
def test_writing_commands_say_the_index_is_read_only(root: Path, mode: str) -> None:
    db = _indexed(root, folder_mode=MODES[mode][0], file_mode=MODES[mode][1])
    (root / "more.py").write_text("def more():\n    return 1\n", encoding="utf-8")
    line = (
        f"spanlens: the index is read-only ({db}): `spanlens status` and `show` still read "
        "it; make it writable to index or enrich"
    )
    code, out, err = as_nobody("index", str(root))
    assert (code, out, err.strip()) == (1, "", line)
    with StandinModelServer(responder=valid_responder) as standin:
        backends = json.dumps([{"name": "b", "tier": "small", "url": standin.url}])
        env = {"SPANLENS_BACKENDS": backends, "SPANLENS_GPU_ENABLED": "false"}
        code, out, err = as_nobody("enrich", str(root), env=env)
        assert not standin.chat_requests
    assert (code, out, err.strip()) == (1, "", line)


def test_an_unwritable_root_gets_one_line_and_show_still_works(root: Path) -> None:
    code, out, err = as_nobody("index", str(root))
    assert (code, out) == (1, "")
    assert err.strip() == (
        f"spanlens: cannot create {root / '.spanlens'}: the workspace root {root} is not writable"
    )
    code, _, err = as_nobody("status", str(root))
    assert code == 1
    assert err.strip() == (
        f"spanlens: no index at {root / '.spanlens' / 'index.db'}: run `spanlens index {root}` "
        "first"
    )
    code, out, err = as_nobody("show", f"{root / 'app.py'}:7", "--root", str(root), "--json")
    assert code == 0, err
    assert json.loads(out)["name"] == "Loader.load"
    assert (
        err.strip() == f"spanlens: cannot create an index in {root}; showing app.py as parsed now"
    )
    assert not (root / ".spanlens").exists()
