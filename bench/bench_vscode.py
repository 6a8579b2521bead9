"""VS Code extension: activation to first lens on a 1,000-file workspace, extension host
memory, .vsix size. A real code-server with the built .vsix (`make bench-vscode`).

"Server up" is the first status the server sends after its workspace index (the status bar
item leaves "starting"); "first lens" is the first `.codelens-decoration` of a file opened
then. No model (backends = []): the lens says "facts only", so nothing waits on a model.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.vscode_session import VSIX, vscode

FILES = 1000
SPANS_PER_FILE = 8


def make_workspace(root: Path) -> None:
    for i in range(FILES):
        package = root / f"pkg{i // 100}"
        package.mkdir(parents=True, exist_ok=True)
        body = "".join(
            f"def f{i}_{j}(value, other=None):\n    total = value + {j}\n"
            f"    if other:\n        total += other\n    return total\n\n\n"
            for j in range(SPANS_PER_FILE)
        )
        (package / f"mod{i}.py").write_text(body)
    (root / "first.py").write_text("def hello(name):\n    return 'hi ' + name\n")


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-vscode-") as tmp:
        home = Path(tmp)
        workspace = home / "ws"
        make_workspace(workspace)
        settings = {
            "spanlens.backends": [],
            "spanlens.gpu.enabled": False,
            "workbench.startupEditor": "none",
        }
        with vscode(home, workspace, settings, trust=True, artifacts="bench_vscode") as editor:
            # The extension activates when the first file of its languages opens.
            opened = time.monotonic()
            editor.call("open", name="first.py")
            editor.call("statusBar", pattern="spanlens (idle|facts_only|waiting)", timeout=120_000)
            server_up = time.monotonic()
            editor.call("lenses", pattern="facts only", timeout=60_000)
            first_lens = time.monotonic()
            rss = editor.extension_host_rss_mb()
            log = "\n".join(
                p.read_text()
                for p in editor.user_data.glob("logs/*/exthost*/spanlens.spanlens/spanlens.log")
            )
    indexed = re.search(r"indexed .* in ([\d.]+)s: (\d+) files parsed", log)
    result = {
        "files": FILES + 1,
        "spans": FILES * SPANS_PER_FILE + 1,
        "open_to_server_up_s": round(server_up - opened, 2),
        "server_up_to_first_lens_s": round(first_lens - server_up, 2),
        "open_to_first_lens_s": round(first_lens - opened, 2),
        "server_index_s": float(indexed.group(1)) if indexed else None,
        "extension_host_rss_mb": round(rss, 1) if rss else None,
        "vsix_mb": round(VSIX.stat().st_size / 2**20, 2),
    }
    from run import print_table

    print_table(
        [
            (
                "open first file -> server up (activate, start, index)",
                f"{result['open_to_server_up_s']} s",
                "",
            ),
            (
                "server up -> first lens rendered",
                f"{result['server_up_to_first_lens_s']} s",
                "<= 3 s",
            ),
            ("open first file -> first lens", f"{result['open_to_first_lens_s']} s", ""),
            ("server's workspace index", f"{result['server_index_s']} s", ""),
            ("extension host RSS", f"{result['extension_host_rss_mb']} MiB", ""),
            (".vsix size", f"{result['vsix_mb']} MB", ""),
        ]
    )
    return result
