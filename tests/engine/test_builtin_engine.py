"""The built-in engine for real: llama.cpp's server (xllamacpp, the ``[local]`` extra) with
the SmolLM2-135M GGUF "installed" in the test's cache directory. One engine per model for
every process, restarted when it dies, stopped when idle, a dead pid's state file never
trusted, and `spanlens enrich` with nothing configured using it. One thread each: 2 cores
are shared."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from tests.support.localmodel import install_model_file
from tests.unit.test_enrichment_engine import attempts

from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.enrichment.backends.base import ChatReply, ChatRequest
from spanlens_lsp.enrichment.backends.capabilities import OutputForm
from spanlens_lsp.enrichment.backends.local import LocalEngineBackend, local_backend_settings
from spanlens_lsp.localmodel.engine import (
    EngineOptions,
    EngineState,
    engine_report,
    ensure_engine,
    healthy,
    live_state,
    pid_alive,
    read_state,
    state_path,
    stop_engine,
    write_state,
)

from .conftest import MODEL

NAME = "smollm2-test"


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineOptions]:
    """SmolLM2 installed as model NAME; whatever engine a test starts is stopped after it."""
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        pytest.fail("xllamacpp is not installed: run `make setup` (the [local] extra)")
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `make engine-deps`")
    install_model_file(monkeypatch, MODEL, NAME)
    yield EngineOptions(NAME, idle_minutes=10, threads=1, context_tokens=2048)
    stop_engine(NAME)


def test_two_processes_asking_at_once_share_one_engine(installed: EngineOptions) -> None:
    script = (
        "import json; from spanlens_lsp.localmodel.engine import EngineOptions, ensure_engine; "
        f"s = ensure_engine(EngineOptions({NAME!r}, threads=1, context_tokens=2048)); "
        "print(json.dumps([s.pid, s.port]))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ)
        for _ in range(2)
    ]
    found = [json.loads(p.communicate(timeout=120)[0]) for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert found[0] == found[1]  # one supervisor pid, one port
    state = live_state(NAME)
    assert state is not None and [state.pid, state.port] == found[0]
    report = engine_report(NAME)
    assert report["state"] == "running" and report["memory_mb"] > 10


def test_a_killed_engine_is_restarted(installed: EngineOptions) -> None:
    first = ensure_engine(installed)
    assert first.server_pid is not None
    os.kill(first.server_pid, signal.SIGKILL)
    wait_until(lambda: not healthy(first.port, timeout=0.5), 10, "the server to go")
    again = ensure_engine(installed)
    assert again.pid == first.pid and again.server_pid != first.server_pid
    assert healthy(again.port)


def test_an_idle_engine_stops(installed: EngineOptions) -> None:
    state = ensure_engine(EngineOptions(NAME, idle_minutes=0.05, threads=1, context_tokens=2048))
    wait_until(lambda: not pid_alive(state.pid), 30, "the idle engine to stop")
    assert not state_path(NAME).exists() and not pid_alive(state.server_pid)
    assert engine_report(NAME)["state"] == "stopped"


def test_a_state_file_with_a_dead_pid_is_not_trusted(installed: EngineOptions) -> None:
    # Its port answers /health: another process's server now, not this model's engine.
    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    impostor = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    port = impostor.server_address[1]
    try:
        assert healthy(port)
        write_state(
            EngineState(pid=dead.pid, port=port, model=NAME, started_at=0, status="running")
        )
        assert engine_report(NAME)["state"] == "stopped"
        state = ensure_engine(installed)
    finally:
        impostor.shutdown()
    assert state.pid != dead.pid and state.port != port and healthy(state.port)
    # The state file names the new engine (its supervisor may have updated the server's
    # status or pid since: compare what identifies the engine).
    now = read_state(NAME)
    assert now is not None and (now.pid, now.port, now.model) == (state.pid, state.port, NAME)


def test_enrich_with_nothing_configured_uses_the_built_in_engine(
    installed: EngineOptions,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    root = tmp_path_factory.mktemp("workspace")
    (root / "spanlens.toml").write_text(
        f'[local]\nmodel = "{NAME}"\nthreads = 1\ncontext_tokens = 2048\n\n'
        '[enrichment]\nretries = 0\nmax_invalid_per_tier = 1\ntiers = ["small"]\n'
        "[gpu]\nenabled = false\n"
    )
    (root / "tools.py").write_text("def is_even(number):\n    return number % 2 == 0\n")
    code, _, err = cli("enrich", str(root), "--limit", "1", "--json")
    assert code in (0, 1), err
    rows = attempts(root)
    assert rows and {r["backend"] for r in rows} == {"built-in"}
    assert {r["model"] for r in rows} == {NAME}
    assert all(
        r["failure_type"] not in ("connection refused", "backend misconfigured") for r in rows
    )
    code, out, _ = cli("status", str(root), "--json")
    engine = json.loads(out)["local_engine"]
    assert engine["state"] == "running" and engine["model"] == NAME
    assert engine["memory_mb"] > 10 and engine["port"] == live_state(NAME).port  # type: ignore[union-attr]


async def test_the_built_in_engine_is_asked_for_json_on_one_line(installed: EngineOptions) -> None:
    # A small model writes a line break and indentation before every key and item when the
    # grammar lets it: a seventh of its reply tokens. The built-in engine (llama.cpp with
    # llguidance) is asked for JSON on one line, and gets it.
    settings = settings_from_dict(
        {"local": {"model": NAME, "threads": installed.threads, "context_tokens": 2048}}
    )
    backend = LocalEngineBackend(local_backend_settings(settings), settings.local)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "tags"],
        "properties": {
            "summary": {"type": "string", "minLength": 1, "maxLength": 80},
            "tags": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"type": "string", "minLength": 1, "maxLength": 12},
            },
        },
    }
    request = ChatRequest(
        messages=[{"role": "user", "content": "Describe `def add(a, b): return a + b` in JSON."}],
        schema=schema,
        max_tokens=120,
    )
    try:
        caps = await backend.detect(30.0)
        reply = await backend.chat(request)
    finally:
        await backend.aclose()
    assert read_state(NAME).grammar == "llguidance"  # type: ignore[union-attr]
    assert caps.form is OutputForm.COMPACT_GRAMMAR
    assert isinstance(reply, ChatReply), reply
    data = json.loads(reply.text)
    assert reply.text == json.dumps(data, ensure_ascii=False)  # one line, ", " and ": "
    assert len(data["tags"]) == 2
