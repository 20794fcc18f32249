"""Reports read results JSON written by ``bench`` and never run a benchmark."""
