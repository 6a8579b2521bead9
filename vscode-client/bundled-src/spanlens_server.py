"""Runs the spanlens server bundled with the extension: `python spanlens_server.py serve --stdio`.

The package and its dependencies sit in ../libs (installed at build time, for CPython
3.10-3.13 of the .vsix's platform); they come first on sys.path so that whatever else the
interpreter has installed cannot shadow them. PYTHONPATH carries them to the processes the
server starts as `python -m spanlens_lsp...` (the built-in engine's supervisor and its llama.cpp
server, xllamacpp from ../libs), which would otherwise find no spanlens_lsp, or another one.
"""

import os
import sys

LIBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "libs")
sys.path.insert(0, LIBS)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [LIBS, os.environ.get("PYTHONPATH")]))

if __name__ == "__main__":  # not in the indexer's worker processes, which import this file
    from spanlens_lsp.cli import main

    sys.exit(main())
