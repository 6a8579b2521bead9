"""The supervisor of one model's engine: starts the llama.cpp server (:mod:`.serve`) as its
child, restarts it with backoff when it dies, and stops it (and itself) after the idle
period. The server cannot know about idleness; the supervisor reads it from the touch file
that every request for the engine refreshes, and from the server's busy slots.

``python -m spanlens_lsp.localmodel.supervise --model NAME --path GGUF --port N --threads T
--context C --idle-minutes M [--embedding]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from spanlens_lsp.localmodel.engine import (
    LOCAL_EXTRA_HINT,
    MISSING_EXTRA,
    EngineState,
    engine_grammar,
    engine_lock,
    healthy,
    read_state,
    remove_state,
    used_path,
    write_state,
)
from spanlens_lsp.localmodel.serve import add_server_options, server_command

#: Restarts allowed within :data:`RESTART_WINDOW` seconds before the supervisor gives up.
MAX_RESTARTS = 5
RESTART_WINDOW = 300.0
BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0


class Supervisor:
    """Keeps one llama.cpp server alive while it is used."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.model: str = args.model
        self.idle = max(1.0, args.idle_minutes * 60)
        self.poll = min(2.0, self.idle / 4)
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts: list[float] = []
        self.last_use = time.time()

    def record(self) -> None:
        """Write this supervisor's state file (under the engine lock its starter holds)."""
        write_state(
            EngineState(
                pid=os.getpid(),
                port=self.args.port,
                model=self.model,
                started_at=time.time(),
                grammar=engine_grammar(),
            )
        )

    def start_child(self) -> None:
        """Start the server and record its pid."""
        self.child = subprocess.Popen(
            server_command(self.args, self.model), stdin=subprocess.DEVNULL
        )
        self.update(server_pid=self.child.pid, status="starting")

    def update(self, **changes: object) -> None:
        """Rewrite this supervisor's state file with ``changes``."""
        state = read_state(self.model)
        if state is None or state.pid != os.getpid():
            return
        for key, value in changes.items():
            setattr(state, key, value)
        write_state(state)

    def used_recently(self, now: float) -> bool:
        """Whether a request for the engine, or a busy slot, is within the idle period."""
        with contextlib.suppress(OSError):
            self.last_use = max(self.last_use, used_path(self.model).stat().st_mtime)
        if self.busy():
            self.last_use = now
        return now - self.last_use < self.idle

    def busy(self) -> bool:
        """Whether the server is working on a request (llama.cpp's ``/slots``)."""
        try:
            slots = httpx.get(f"http://127.0.0.1:{self.args.port}/slots", timeout=1.0).json()
        except (httpx.HTTPError, ValueError):
            return False
        return isinstance(slots, list) and any(
            isinstance(s, dict) and s.get("is_processing") for s in slots
        )

    def run(self) -> int:
        """Supervise until idle or told to stop; the exit status."""
        self.record()
        self.start_child()
        running = False
        while not self.stopping.wait(self.poll if running else 0.25):
            assert self.child is not None
            if self.child.poll() is not None:
                running = False
                if not self.restart():
                    self.child = None
                    return 1  # the state file stays, saying why
                continue
            if not running and healthy(self.args.port, timeout=1.0):
                running = True
                self.update(status="running")
            if running and not self.used_recently(time.time()) and self.stop_if_idle():
                return 0
        self.shutdown()
        return 0

    def restart(self) -> bool:
        """The server died: start it again after a backoff, unless it keeps dying."""
        now = time.time()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW]
        code = self.child.returncode if self.child else None
        if code == MISSING_EXTRA:
            self.update(status="failed", error=f"xllamacpp is missing: {LOCAL_EXTRA_HINT}")
            return False
        if len(self.restarts) >= MAX_RESTARTS:
            self.update(status="failed", error=f"the server kept exiting (last status {code})")
            print(f"giving up: the server exited {MAX_RESTARTS} times", flush=True)
            return False
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** len(self.restarts))
        self.restarts.append(now)
        print(f"server exited with {code}; restarting in {delay:.0f} s", flush=True)
        if self.stopping.wait(delay):
            return False
        self.start_child()
        return True

    def stop_if_idle(self) -> bool:
        """Under the engine lock (so no process is handed the engine as it stops): stop if
        still idle."""
        with engine_lock(self.model):
            if self.used_recently(time.time()):
                return False
            print("idle: stopping", flush=True)
            self.shutdown()
            return True

    def shutdown(self) -> None:
        """Stop the server and forget the state file (kept when it says the engine failed)."""
        state = read_state(self.model)
        if state is None or state.status != "failed":
            remove_state(self.model, os.getpid())
        if self.child is not None:
            stop_process(self.child)


def stop_process(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Ask ``process`` to stop, kill it when it has not stopped within ``grace`` seconds, and
    reap it either way (no zombie left behind). Nothing happens when it already exited."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m spanlens_lsp.localmodel.supervise")
    parser.add_argument("--model", required=True)
    add_server_options(parser)
    parser.add_argument("--idle-minutes", type=float, required=True)
    supervisor = Supervisor(parser.parse_args(argv))
    signal.signal(signal.SIGTERM, lambda *_: supervisor.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: supervisor.stopping.set())
    try:
        return supervisor.run()
    finally:
        supervisor.shutdown()


if __name__ == "__main__":
    sys.exit(main())
