"""What a repository's own spanlens.toml cannot do, end to end against the stand-in server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer

from spanlens_lsp.config import ALLOW_WORKSPACE_REMOTE

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


def test_url_credentials_are_never_sent_and_echoed_ones_are_scrubbed_everywhere(
    tmp_path: Path,
    write: Callable[[str, str], Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A user:pass@ URL sends no Basic auth; what a server echoes back (the Bearer key, the
    Authorization header it got, the base64 of user:pass) is in nothing spanlens keeps."""
    import base64
    import json
    import sqlite3

    from tests.support.standin import RecordedRequest, Reply

    caplog.set_level("DEBUG", logger="spanlens_lsp")
    key = "sk-test-Qm9vYXJr-777"
    basic = base64.b64encode(b"alice:s3cr3t-pw").decode()
    calls: list[int] = []

    def echo_then_answer(request: RecordedRequest) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            got = request.headers.get("authorization", "")
            return Reply.error(500, body=f"bad: saw {got!r}; Basic {basic}; alice:s3cr3t-pw")
        return valid_responder(request)

    monkeypatch.delenv(ALLOW_WORKSPACE_REMOTE, raising=False)
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    monkeypatch.setenv("SPANLENS_ENRICHMENT_BACKOFF_BASE", "0.005")
    monkeypatch.setenv("SPANLENS_TEST_KEY", key)
    write("calc.py", "def add(a, b):\n    return a + b\n")
    with StandinModelServer(responder=echo_then_answer) as server:
        url = server.url.replace("http://", "http://alice:s3cr3t-pw@")
        backend = {
            "name": "b",
            "provider": "openai",
            "url": url,
            "api_key_env": "SPANLENS_TEST_KEY",
        }
        monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([backend]))
        code, out, err = cli("enrich", str(tmp_path))
        status = cli("status", str(tmp_path), "--json")[1]
        doctor = cli("doctor", str(tmp_path), "--json")[1]
        sent = [r.headers.get("authorization", "") for r in server.requests]
    assert code == 0, err
    assert sent and all(value == f"Bearer {key}" for value in sent)  # never Basic
    kept = b"".join(p.read_bytes() for p in (tmp_path / ".spanlens").rglob("*") if p.is_file())
    shown = out + err + status + doctor + caplog.text
    with sqlite3.connect(tmp_path / ".spanlens" / "index.db") as db:
        details = [row[0] for row in db.execute("SELECT detail FROM attempts") if row[0]]
    assert any("***" in detail for detail in details), details  # the echo was stored, masked
    for secret in (key, basic, "s3cr3t-pw"):
        assert secret.encode() not in kept, secret
        assert secret not in shown, secret


def test_a_remote_tier_never_receives_a_span_holding_a_credential(
    tmp_path: Path,
    write: Callable[[str, str], Path],
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every credential shape of the privacy corpus, each in its own file, against a backend
    the user declared remote: only the clean file's span is sent."""
    import json

    from tests.unit.test_privacy import CREDENTIALS

    names = []
    for index, (_, (path, line)) in enumerate(sorted(CREDENTIALS.items())):
        if path.endswith(".py"):
            names.append(f"holder_{index}")
            write(f"m{index}.py", f"def holder_{index}():\n    {line.rstrip()}\n    return 1\n")
    write("clean.py", "def add(a, b):\n    return a + b\n")
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    with StandinModelServer(responder=valid_responder) as server:
        cloud = {"name": "cloud", "url": server.url, "remote": True}
        monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([cloud]))
        cli("enrich", str(tmp_path))
        sent = " ".join(json.dumps(r.json) for r in server.chat_requests)
    assert "def add(a, b)" in sent and len(names) > 15
    for name in names:
        assert name not in sent, name
