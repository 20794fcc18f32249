"""Alias: ``python -m bench.fuzz`` runs ``python -m bench.hardening.fuzz``."""

import sys

from bench.hardening.fuzz import main

if __name__ == "__main__":
    sys.exit(main())
