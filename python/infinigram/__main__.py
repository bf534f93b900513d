"""``python -m infinigram``: the command line (see :mod:`infinigram.cli`)."""

import sys

from .cli import main

sys.exit(main())
