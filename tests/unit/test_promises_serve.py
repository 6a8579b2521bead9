"""`spanlens serve` promises outside pytest-lsp's stdio client: TCP, and how the root is found."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from spanlens_lsp.lsp.edge import document_root

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _receive(sock: socket.socket, buffer: bytearray, want_id: int) -> dict[str, Any]:
    """Read messages until the response to ``want_id`` (notifications are skipped)."""
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buffer += chunk
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            rest += chunk
        message = json.loads(rest[:length])
        del buffer[:]
        buffer += rest[length:]
        if message.get("id") == want_id and "method" not in message:
            return message  # type: ignore[no-any-return]


def test_serve_over_tcp_answers_initialize_and_exits_cleanly(tmp_path: Path) -> None:
    (tmp_path / "spanlens.toml").write_text("backends = []\n[gpu]\nenabled = false\n")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    server = subprocess.Popen(
        [sys.executable, "-m", "spanlens_lsp.cli", "serve", "--tcp", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:  # wait (bounded) until the server listens
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=20)
                break
            except ConnectionRefusedError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the server never listened"
                time.sleep(0.05)
        with sock:
            buffer = bytearray()
            _send(
                sock,
                {
                    "id": 1,
                    "method": "initialize",
                    "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}},
                },
            )
            result = _receive(sock, buffer, 1)["result"]
            assert result["capabilities"]["positionEncoding"] == "utf-16"
            assert result["serverInfo"]["name"] == "spanlens"
            _send(sock, {"method": "initialized", "params": {}})
            _send(sock, {"id": 2, "method": "shutdown", "params": None})
            assert _receive(sock, buffer, 2)["result"] is None
            _send(sock, {"method": "exit", "params": None})
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.parametrize(
    ("folders", "root_uri", "root_path", "expected"),
    [
        (["a", "b"], "c", "d", "a"),  # the first workspace folder
        ([], "c", "d", "c"),  # else rootUri
        (None, None, "d", "d"),  # else rootPath
        (None, None, None, None),
    ],
)
def test_the_root_is_the_first_folder_then_root_uri_then_root_path(
    tmp_path: Path,
    folders: list[str] | None,
    root_uri: str | None,
    root_path: str | None,
    expected: str | None,
) -> None:
    params = types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        workspace_folders=(
            None
            if folders is None
            else [types.WorkspaceFolder(uri=(tmp_path / f).as_uri(), name=f) for f in folders]
        ),
        root_uri=(tmp_path / root_uri).as_uri() if root_uri else None,
        root_path=str(tmp_path / root_path) if root_path else None,
    )
    root = document_root(params)
    assert root == (None if expected is None else (tmp_path / expected).resolve())
