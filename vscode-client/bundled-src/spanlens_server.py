"""Runs the spanlens server bundled with the extension: `python spanlens_server.py serve --stdio`.

The package and its dependencies sit in ../libs (installed at build time, for CPython
3.10-3.13 of the .vsix's platform); they come first on sys.path so that whatever else the
interpreter has installed cannot shadow them.
"""

import os
import sys

LIBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "libs")
sys.path.insert(0, LIBS)

if __name__ == "__main__":  # not in the indexer's worker processes, which import this file
    from spanlens.cli import main

    sys.exit(main())
