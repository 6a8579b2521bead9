"""One llama.cpp server in this process (xllamacpp, the ``[local]`` extra): started by the
supervisor, stopped by SIGTERM or when the supervisor is gone.

``python -m spanlens_lsp.localmodel.serve --path GGUF --alias NAME --port N --threads T
--context C [--embedding]`` (``--embedding``: an embedding model, mean pooled, answering
``/v1/embeddings``)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from spanlens_lsp.localmodel.engine import LOCAL_EXTRA_HINT, MISSING_EXTRA


def serve(
    path: str, alias: str, port: int, threads: int, context: int, embedding: bool = False
) -> int:
    """Run the server until SIGTERM or the parent's exit; the exit status."""
    try:
        import xllamacpp
    except ImportError:
        print(f"xllamacpp is missing: {LOCAL_EXTRA_HINT}", file=sys.stderr)
        return MISSING_EXTRA
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.model_alias = {alias}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = context
    # One slot: spanlens sends a file's spans one after another, and the slot's KV cache
    # keeps the shared prompt prefix; a second slot would halve the context and the speed.
    params.n_parallel = 1
    # No host-memory prompt cache beyond the slot's own (llama-server's default is 8 GiB).
    params.cache_ram_mib = 0
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    if embedding:
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        # An encoder sees a whole text at once: one text must fit in one physical batch.
        params.n_batch = params.n_ubatch = min(context, 2048)
    params.endpoint_metrics = True
    params.endpoint_slots = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    server = xllamacpp.Server(params)
    print(f"serving {alias} at {server.listening_address}", flush=True)
    while not stop.wait(1.0):
        if os.getppid() != parent:  # the supervisor died: never outlive it
            break
    del server
    return 0


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """The server's options but its alias: the supervisor takes them too, to pass them on
    (:func:`server_command`)."""
    parser.add_argument("--path", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--context", type=int, required=True)
    parser.add_argument("--embedding", action="store_true")


def server_command(options: argparse.Namespace, alias: str) -> list[str]:
    """The command line of a server with ``options`` (those of :func:`add_server_options`)
    that serves its model as ``alias``."""
    return [
        sys.executable,
        "-m",
        "spanlens_lsp.localmodel.serve",
        "--alias",
        alias,
        "--path",
        options.path,
        "--port",
        str(options.port),
        "--threads",
        str(options.threads),
        "--context",
        str(options.context),
        *(["--embedding"] if options.embedding else []),
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m spanlens_lsp.localmodel.serve")
    parser.add_argument("--alias", required=True)
    add_server_options(parser)
    args = parser.parse_args(argv)
    return serve(args.path, args.alias, args.port, args.threads, args.context, args.embedding)


if __name__ == "__main__":
    sys.exit(main())
