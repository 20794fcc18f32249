"""Alias: ``python -m handler.deploy`` runs ``python -m handler.aws.deploy``."""

import sys

from handler.aws.deploy import main

if __name__ == "__main__":
    sys.exit(main())
