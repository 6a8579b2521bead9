"""`python -m spanlens_lsp.cli`: the same as the `spanlens` console script."""

import sys

from spanlens_lsp.cli import main

sys.exit(main())
