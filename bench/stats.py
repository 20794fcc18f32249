"""Small-sample statistics for per-trial figures (cold starts): median, spread, warnings.

Latency *distributions* go through HdrHistogram (``bench.latency``); this module is for a
handful of trials, where pyperf's approach applies: report the median with min and max, a
robust spread (median absolute deviation, as a share of the median), and say in words when
the result should not be trusted. Pure arithmetic, no I/O.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.records import Record

MIN_SAMPLES = 5
HIGH_SPREAD = 0.10


@dataclass(frozen=True)
class TrialStats(Record):
    samples: int
    p50: float
    min: float
    max: float
    mad: float
    spread: float  # MAD / median
    warnings: tuple[str, ...]


def summarize(values: list[float], what: str = "result", more: str = "--trials") -> TrialStats:
    """Median, min, max and MAD of ``values``; warnings name ``what`` and the flag for ``more``."""
    if not values:
        raise ValueError("no samples")
    median = statistics.median(values)
    mad = statistics.median(abs(value - median) for value in values)
    spread = mad / median if median else 0.0
    warnings = []
    if len(values) < MIN_SAMPLES:
        warnings.append(f"{what}: only {len(values)} samples; use at least {MIN_SAMPLES} ({more})")
    if spread > HIGH_SPREAD:
        warnings.append(
            f"{what}: unstable, the median absolute deviation is {spread:.0%} of the median "
            f"(the machine is noisy; more {more}, or fewer background jobs)"
        )
    return TrialStats(len(values), median, min(values), max(values), mad, spread, tuple(warnings))
