"""`spanlens serve`: the language server over stdio or TCP."""

from __future__ import annotations

import argparse

from spanlens_lsp.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
)


def cmd_serve(args: argparse.Namespace) -> int:
    """`spanlens serve [--stdio] [--tcp HOST:PORT]`."""
    if args.stdio and args.tcp:
        raise CliError("choose one of --stdio and --tcp", EXIT_USAGE)
    address = None
    if args.tcp:
        host, sep, port = args.tcp.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise CliError(f"expected --tcp HOST:PORT, got {args.tcp!r}", EXIT_USAGE)
        address = (host, int(port))
    from spanlens_lsp.lsp.server import serve_stdio, serve_tcp

    if address is None:
        serve_stdio()
    else:
        serve_tcp(*address)
    return EXIT_OK
