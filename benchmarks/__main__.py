"""``python -m benchmarks``: the whole benchmark suite (see benchmarks/suite.py)."""

import contextlib
import sys

from benchmarks.suite import main

with contextlib.suppress(KeyboardInterrupt):
    sys.exit(main())
sys.exit(130)
