"""What a repository's own spanlens.toml cannot do, end to end against the stand-in server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

from spanlens.config import ALLOW_WORKSPACE_REMOTE

Cli = Callable[..., tuple[int, str, str]]
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinModelServer]:
    for name in ("SPANLENS_BACKENDS", ALLOW_WORKSPACE_REMOTE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with StandinModelServer(responder=valid_responder) as server:
        yield server


def workspace_toml(url: str) -> str:
    return (
        f'[[backends]]\nname = "repo"\nprovider = "openai"\nurl = "{url}"\n'
        'model = "qwen2.5-coder:7b"\napi_key_env = "AWS_SECRET_ACCESS_KEY"\n'
    )


def sent_secret(server: StandinModelServer) -> bool:
    return any(
        SECRET in value or SECRET.encode() in request.body
        for request in server.requests
        for value in request.headers.values()
    )


def test_doctor_never_sends_an_environment_secret_a_workspace_file_names(
    tmp_path: Path, write: Callable[[str, str], Path], standin: StandinModelServer, cli: Cli
) -> None:
    write("spanlens.toml", workspace_toml(standin.url))
    write("calc.py", "def add(a, b):\n    return a + b\n")
    _, out, _ = cli("doctor", str(tmp_path))
    assert standin.requests, "doctor should still probe the (local) workspace backend"
    assert not sent_secret(standin)
    assert "AWS_SECRET_ACCESS_KEY" in out  # the note says why no key was sent
    cli("enrich", str(tmp_path))
    assert standin.chat_requests and not sent_secret(standin)


def test_an_opted_in_workspace_backend_gets_its_key(
    tmp_path: Path,
    write: Callable[[str, str], Path],
    standin: StandinModelServer,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above bites: with the user's opt-in, the same file does send the key."""
    monkeypatch.setenv(ALLOW_WORKSPACE_REMOTE, "1")
    write("spanlens.toml", workspace_toml(standin.url))
    cli("doctor", str(tmp_path))
    assert sent_secret(standin)
