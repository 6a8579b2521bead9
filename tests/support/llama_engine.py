"""Starting llama-cpp-python's OpenAI-compatible server for the real-engine tests and bench."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from spanlens_lsp.localmodel.engine import free_port
from spanlens_lsp.localmodel.supervise import stop_process


class EngineDidNotStart(RuntimeError):
    """The server exited, or did not answer in time: one line saying which."""


def llama_server_command(model: Path, port: int, n_ctx: int, *extra: str) -> list[str]:
    """The command line of a one-model llama-cpp-python server (alias ``smollm2``, two threads)
    on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        "2",
        *extra,
    ]


def builtin_server_command(model: Path, port: int, n_ctx: int, threads: int = 2) -> list[str]:
    """The command line of the built-in engine's llama.cpp server (xllamacpp, alias
    ``smollm2``) on 127.0.0.1:``port``, without its supervisor."""
    return [
        sys.executable,
        "-m",
        "spanlens_lsp.localmodel.serve",
        "--alias",
        "smollm2",
        "--path",
        str(model),
        "--port",
        str(port),
        "--threads",
        str(threads),
        "--context",
        str(n_ctx),
    ]


@contextlib.contextmanager
def running_llama_server(
    model: Path, n_ctx: int, *extra: str, log: IO[bytes] | None = None, timeout: float = 120
) -> Iterator[str]:
    """A llama-cpp-python server (:func:`llama_server_command`) on a free port, its base URL
    once ``/v1/models`` answers; always stopped on exit (a SIGTERM may wait for the generation
    in progress: then SIGKILL). Its output goes to ``log`` (default: nowhere). Raises
    :class:`EngineDidNotStart`."""
    port = free_port()
    with _running(llama_server_command(model, port, n_ctx, *extra), port, log, timeout) as url:
        yield url


@contextlib.contextmanager
def running_builtin_server(
    model: Path, n_ctx: int, log: IO[bytes] | None = None, timeout: float = 120
) -> Iterator[str]:
    """The built-in engine's server (:func:`builtin_server_command`), as
    :func:`running_llama_server`."""
    port = free_port()
    with _running(builtin_server_command(model, port, n_ctx), port, log, timeout) as url:
        yield url


@contextlib.contextmanager
def _running(command: list[str], port: int, log: IO[bytes] | None, timeout: float) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    what = command[2]
    output = log if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise EngineDidNotStart(f"{what} exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise EngineDidNotStart(f"{what} did not answer within {timeout:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(process)
