"""Alias: ``python -m bench.overload`` runs ``python -m bench.hardening.overload``."""

import sys

from bench.hardening.overload import main

if __name__ == "__main__":
    sys.exit(main())
