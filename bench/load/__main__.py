"""Run the load generator: ``python -m bench.load --help``."""

from __future__ import annotations

import sys

from bench.load.cli import main

if __name__ == "__main__":
    sys.exit(main())
