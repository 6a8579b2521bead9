"""A real llama.cpp engine for the tests: llama-cpp-python's OpenAI-compatible server with the
real SmolLM2-135M GGUF, started on a free 127.0.0.1 port and always stopped.

`make test` installs both (`make engine-deps`); without them these tests fail with the command
that fixes it, never skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.llama_engine import EngineDidNotStart, running_llama_server

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
    log_path = ROOT / ".cache" / f"llama-server-{os.getpid()}.log"
    with log_path.open("wb") as log, contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(
                running_llama_server(MODEL, N_CTX, "--n_batch", "256", log=log)
            )
        except EngineDidNotStart as exc:
            pytest.fail(f"{exc}; see {log_path}")
        yield url
