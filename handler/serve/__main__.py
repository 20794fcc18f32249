"""Alias: ``python -m handler.serve`` runs ``python -m handler.local.serve``."""

import sys

from handler.local.serve import main

if __name__ == "__main__":
    sys.exit(main())
