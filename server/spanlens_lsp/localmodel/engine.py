"""The built-in engine: llama.cpp's server on 127.0.0.1, one per model, shared by every spanlens
process on the machine (CLI runs, the servers of several editor windows).

Each model's engine is described by a state file in the cache directory
(``engines/<model>.json``: supervisor pid, server pid, port, model, started_at, status), written
atomically. A process that needs the engine takes the model's lock (``filelock``), trusts the
state file only if its supervisor is alive and the server answers ``/health``, and otherwise
starts a new supervisor (``python -m spanlens_lsp.localmodel.supervise``) on a free port and waits
for it: two processes asking at once end with one engine. Every request for the engine
touches ``engines/<model>.used``; the supervisor stops the server after ``idle_minutes``
without use and restarts it with backoff if it dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import httpx
from filelock import FileLock

from spanlens_lsp.localmodel.catalog import EMBEDDING, get_model
from spanlens_lsp.localmodel.paths import cache_dir, installed_model_path

#: Seconds a process waits for another to finish starting the engine (loading a 1.5B model
#: from a cold disk takes well under a minute).
START_TIMEOUT = 180.0
#: What a caller is told when the model is missing.
INSTALL_HINT = "run `spanlens model install` (or the editor's 'Set up the local model' action)"
#: How to get the engine's llama.cpp package.
LOCAL_EXTRA_HINT = "install the [local] extra: pip install 'spanlens-lsp[local]'"
#: The exit status of :mod:`.serve` when xllamacpp is not installed (no point restarting).
MISSING_EXTRA = 3
#: Most threads an embedding model's engine gets (measured: on 2 busy cores, 1 thread embeds
#: faster than 2, each waiting on the other at every step of the graph).
EMBEDDING_THREADS = 2


class EngineUnavailable(Exception):
    """The engine cannot run: the message is one line saying why and what to do."""


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How the engine of one model runs (from ``[local]`` in the settings)."""

    #: The catalog name of the model.
    model: str
    #: Stop the engine after this many minutes without a request.
    idle_minutes: float = 15.0
    #: Threads for generation and prompt processing; 0 = all cores but one (the editor's).
    threads: int = 0
    #: Context of the engine's one slot, in tokens.
    context_tokens: int = 4096

    @property
    def thread_count(self) -> int:
        """The threads the engine gets: ``threads``, or one less than the cores."""
        return self.threads if self.threads > 0 else max(1, (os.cpu_count() or 2) - 1)

    @property
    def embedding(self) -> bool:
        """Whether the model is an embedding model (served with ``--embedding``)."""
        return get_model(self.model).kind == EMBEDDING

    @property
    def server_threads(self) -> int:
        """The threads the server gets: :attr:`thread_count`, at most
        :data:`EMBEDDING_THREADS` for an embedding model (a small encoder gains nothing from
        more, and its calls come while the editor and the chat engine work)."""
        count = self.thread_count
        return min(count, EMBEDDING_THREADS) if self.embedding else count


@dataclass(slots=True)
class EngineState:
    """What the state file says about a model's engine."""

    #: The supervisor's pid: the process to signal to stop the engine.
    pid: int
    port: int
    model: str
    started_at: float
    #: "starting", "running" or "failed" (the supervisor gave up restarting it).
    status: str = "starting"
    #: The llama.cpp server's own pid (the supervisor's child), once started.
    server_pid: int | None = None
    #: Why the engine failed, when it did.
    error: str | None = None
    #: "llguidance" when the engine's llama.cpp takes llguidance grammars (a grammar it cannot
    #: take aborts llama-server, so only an engine that says so gets one).
    grammar: str | None = None

    @property
    def url(self) -> str:
        """The engine's base URL."""
        return f"http://127.0.0.1:{self.port}"


def engines_dir() -> Path:
    """Where state, lock, touch and log files of the engines live."""
    return cache_dir() / "engines"


def state_path(model: str) -> Path:
    """The state file of ``model``'s engine."""
    return engines_dir() / f"{model}.json"


def lock_path(model: str) -> Path:
    """The lock that serialises starting and stopping ``model``'s engine."""
    return engines_dir() / f"{model}.lock"


def used_path(model: str) -> Path:
    """Touched on every request for the engine: the supervisor's idle clock."""
    return engines_dir() / f"{model}.used"


def log_path(model: str) -> Path:
    """The engine's log (supervisor and llama.cpp server)."""
    return engines_dir() / f"{model}.log"


def engine_lock(model: str) -> FileLock:
    """The model's engine lock (an OS lock: a crashed holder releases it)."""
    engines_dir().mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path(model)), timeout=START_TIMEOUT)


#: The keys of a state file this version reads (read_state runs in every wait loop).
_STATE_FIELDS = frozenset(f.name for f in fields(EngineState))


def read_state(model: str) -> EngineState | None:
    """The state file of ``model``'s engine, or None when there is none (or it is unreadable)."""
    try:
        raw = json.loads(state_path(model).read_text(encoding="utf-8"))
        # A newer spanlens may have written more: what this one knows still describes it.
        return EngineState(**{k: v for k, v in raw.items() if k in _STATE_FIELDS})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def write_state(state: EngineState) -> None:
    """Write the state file atomically (a reader sees the old file or the new, never half)."""
    path = state_path(state.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state)), encoding="utf-8")
    os.replace(tmp, path)


def remove_state(model: str, pid: int) -> None:
    """Remove the state file if it still describes the supervisor ``pid``."""
    state = read_state(model)
    if state is not None and state.pid == pid:
        with contextlib.suppress(OSError):
            state_path(model).unlink()


def engine_installed() -> bool:
    """Whether the engine's llama.cpp package (xllamacpp, the ``[local]`` extra) is here."""
    import importlib.util

    return importlib.util.find_spec("xllamacpp") is not None


def engine_grammar() -> str | None:
    """The grammar language this interpreter's llama.cpp takes besides GBNF: "llguidance"
    when xllamacpp was built with it (it then converts every JSON schema through it)."""
    try:
        import xllamacpp
    except ImportError:
        return None
    converted = xllamacpp.json_schema_to_grammar("{}")
    return "llguidance" if converted.startswith("%llguidance") else None


def pid_alive(pid: int | None) -> bool:
    """Whether a process ``pid`` exists (a zombie counts as dead)."""
    if not pid or pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate it there
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def healthy(port: int, timeout: float = 2.0) -> bool:
    """Whether the llama.cpp server on ``port`` answers ``/health`` with its model loaded."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def touch_used(model: str) -> None:
    """Mark ``model``'s engine as used now (resets its idle clock)."""
    path = used_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def live_state(model: str) -> EngineState | None:
    """The state of ``model``'s engine if its supervisor is alive, else None (a state file
    left by a dead supervisor is never trusted)."""
    state = read_state(model)
    if state is None or not pid_alive(state.pid):
        return None
    return state


def ensure_engine(options: EngineOptions) -> EngineState:
    """The running engine of ``options.model``, started if none is: blocking (run it off the
    event loop). Raises :class:`EngineUnavailable` with a one-line reason."""
    model_file = installed_model_path(options.model)
    if model_file is None:
        raise EngineUnavailable(f"model {options.model} is not installed: {INSTALL_HINT}")
    with engine_lock(options.model):
        touch_used(options.model)
        state = live_state(options.model)
        if state is not None and state.status != "failed":
            if _wait_healthy(state, options.model, START_TIMEOUT):
                return _running(state)
            _stop(state)
        elif state is not None:
            _stop(state)  # gave up restarting: a new supervisor tries afresh
        state = _spawn(options, model_file)
        if not _wait_healthy(state, options.model, START_TIMEOUT):
            error = (read_state(options.model) or state).error
            _stop(state)
            raise EngineUnavailable(
                f"the built-in engine for {options.model} did not start"
                + (f" ({error})" if error else "")
                + f"; see {log_path(options.model)}"
            )
        return _running(state)


def stop_engine(model: str) -> bool:
    """Stop ``model``'s engine if one runs; whether one did."""
    with engine_lock(model):
        state = live_state(model)
        if state is None:
            with contextlib.suppress(OSError):
                state_path(model).unlink()
            return False
        _stop(state)
        return True


def _running(state: EngineState) -> EngineState:
    return read_state(state.model) or state


def _wait_healthy(state: EngineState, model: str, timeout: float) -> bool:
    """Wait until the supervisor ``state.pid`` has recorded itself and its server answers
    /health (following a restart on another port); False if the supervisor dies, gives up,
    or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(state.pid):
        current = read_state(model)
        if current is not None and current.pid == state.pid:
            if current.status == "failed":
                return False
            if healthy(current.port):
                return True
        time.sleep(0.25)
    return False


def _spawn(options: EngineOptions, model_file: Path) -> EngineState:
    """Start a supervisor for ``options.model`` on a free port, detached from this process
    (it outlives the CLI run or editor that started it), and record it."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "spanlens_lsp.localmodel.supervise",
        "--model",
        options.model,
        "--path",
        str(model_file),
        "--port",
        str(port),
        "--threads",
        str(options.server_threads),
        "--context",
        str(options.context_tokens),
        "--idle-minutes",
        str(options.idle_minutes),
    ]
    if options.embedding:
        command.append("--embedding")
    with open(log_path(options.model), "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    # The supervisor writes the state file itself (it is the one that keeps it current).
    return EngineState(pid=process.pid, port=port, model=options.model, started_at=time.time())


def _stop(state: EngineState) -> None:
    """Signal the supervisor (it stops its server) and forget the state file."""
    import signal

    for pid in (state.pid, state.server_pid):
        if pid and pid_alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(state.pid):
        with contextlib.suppress(OSError):
            os.kill(state.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    with contextlib.suppress(OSError):
        if (read_state(state.model) or state).pid == state.pid:
            state_path(state.model).unlink()


def engine_report(model: str) -> dict[str, Any]:
    """What doctor and status show about ``model``'s engine: state (not installed, stopped,
    starting, running, failed), pid, port, memory (RSS of the server, MiB) and tokens/s."""
    try:
        installed = installed_model_path(model) is not None
    except ValueError as exc:  # an unknown model name
        return {"model": model, "state": "unknown model", "error": str(exc)}
    report: dict[str, Any] = {"model": model, "installed": installed}
    state = read_state(model)
    if state is not None and state.status == "failed":
        report.update(state="failed", error=state.error)
        return report
    if state is None or not pid_alive(state.pid):
        report["state"] = "stopped" if installed else "not installed"
        if not installed:
            report["hint"] = INSTALL_HINT
        return report
    report.update(pid=state.pid, server_pid=state.server_pid, port=state.port, url=state.url)
    report["started_at"] = state.started_at
    report["state"] = "running" if healthy(state.port, timeout=1.0) else "starting"
    report["memory_mb"] = rss_mb(state.server_pid)
    report.update(throughput(state.port))
    return report


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of ``pid`` in MiB (Linux /proc), or None when unknown."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def throughput(port: int) -> dict[str, float]:
    """Prompt and generation tokens per second so far, from llama.cpp's ``/metrics``
    (empty before the first request)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1.0)
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    wanted = {
        "llamacpp:prompt_tokens_seconds": "prompt_tokens_per_s",
        "llamacpp:predicted_tokens_seconds": "tokens_per_s",
    }
    found: dict[str, float] = {}
    for line in response.text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            with contextlib.suppress(ValueError):
                if float(value) > 0:
                    found[wanted[name]] = round(float(value), 1)
    return found
