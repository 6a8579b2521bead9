"""numpy (~90 ms to import) loads when vectors are first searched or an embedding reply is
checked, never at server start nor for a command that does not search by meaning."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPORT = "print('numpy loaded' if 'numpy' in sys.modules else 'numpy not loaded')\n"


def python(script: str) -> str:
    """Run ``script`` in a fresh interpreter; its last line of output."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys\n" + script + REPORT], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_starting_the_language_server_does_not_import_numpy() -> None:
    script = "import spanlens_lsp.lsp.server\nfrom spanlens_lsp.app import build_services\n"
    assert python(script) == "numpy not loaded"


def test_commands_that_do_not_search_by_meaning_do_not_import_numpy(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    write("app.py", "def parse_config(text):\n    return text\n")
    script = (
        "from spanlens_lsp.cli import main\n"
        f"assert main(['index', {str(tmp_path)!r}]) == 0\n"
        f"assert main(['status', {str(tmp_path)!r}]) == 0\n"
        # Keyword search: no endpoint is configured, so no vector is needed.
        f"assert main(['search', 'parse config', '--root', {str(tmp_path)!r}]) == 0\n"
    )
    assert python(script) == "numpy not loaded"


def test_searching_vectors_imports_numpy(tmp_path: Path) -> None:
    # The check above can see numpy: searching a vector index loads it.
    script = (
        "from pathlib import Path\n"
        "from spanlens_lsp.search.hybrid import rank\n"
        "from spanlens_lsp.store.db import open_store\n"
        "from spanlens_lsp.store.embeddings import put_embeddings\n"
        f"store = open_store(Path({str(tmp_path)!r}))\n"
        "put_embeddings(store, 'm', [('h', 't', [1.0, 0.0])])\n"
        "rank(store, 'anything', query_vector=[1.0, 0.0], model='m')\n"
    )
    assert python(script) == "numpy loaded"
