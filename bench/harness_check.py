"""Alias: ``python -m bench.harness_check`` runs ``python -m bench.truth.check``."""

import sys

from bench.truth.check import main

if __name__ == "__main__":
    sys.exit(main())
