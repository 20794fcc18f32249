"""Alias: ``python -m bench.cloudwatch`` runs ``python -m bench.coldstart.cloudwatch``."""

import sys

from bench.coldstart.cloudwatch import main

if __name__ == "__main__":
    sys.exit(main())
