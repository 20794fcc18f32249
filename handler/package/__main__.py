"""Alias: ``python -m handler.package`` runs ``python -m handler.aws.package``."""

import sys

from handler.aws.package import main

if __name__ == "__main__":
    sys.exit(main())
