"""Alias: ``python -m bench.truth_server`` runs ``python -m bench.truth.server``."""

import sys

from bench.truth.server import main

if __name__ == "__main__":
    sys.exit(main())
