"""Alias: ``python -m bench.faults`` runs ``python -m bench.hardening.faults``."""

import sys

from bench.hardening.faults import main

if __name__ == "__main__":
    sys.exit(main())
