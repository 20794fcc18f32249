"""``python -m bench.coldstart``: the cold/warm-start profiler (see ``bench.coldstart.profiler``)."""

import sys

from bench.coldstart.profiler import main

if __name__ == "__main__":
    sys.exit(main())
