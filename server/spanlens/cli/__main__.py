"""`python -m spanlens.cli`: the same as the `spanlens` console script."""

import sys

from spanlens.cli import main

sys.exit(main())
