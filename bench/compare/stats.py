"""The statistics of ``bench.compare``: a ratio new/baseline and a confidence interval on it
that accounts for the variation *between runs*. Pure arithmetic, no I/O.

Each run of a side gives one value of a figure (say its in-handler p50, from that run's
HdrHistogram); the histogram only summarises one run, and two runs of the same command on a
shared machine differ by far more than a histogram's sampling error suggests. So, as pyperf
and benchstat do, the unit of replication is the run:

- **Ratio**: the geometric mean of the new side's per-run values over the baseline's (a ratio
  of typical values that is symmetric: 2x slower one way is 2x faster the other).
- **Interval**: Student's two-sample t-interval, pooled variance, on the natural logarithms of
  the per-run values (the difference of the mean logs), exponentiated back to a ratio. pyperf's
  ``compare_to`` decides "significant" with the same two-sample t-test (pooled variance,
  ``n1 + n2 - 2`` degrees of freedom; ``pyperf/_compare.py`` ``is_significant``). The log turns
  a ratio into a difference, and latency figures are closer to log-normal than normal.
  benchstat uses the Mann-Whitney U test instead; with 3 runs per side its smallest two-sided
  p-value is 0.1, so it could never call anything significant at 5 % with 3 + 3 runs, which is
  why this module takes the t-interval (its assumption, normal log-values, is the price).
- **Many figures, one false-alarm rate**: one comparison makes ``k`` intervals (every pair ×
  every figure that has one). With the Bonferroni correction each interval is drawn at
  confidence ``1 - (1 - family) / k``, so the chance that *any* of the ``k`` intervals misses its
  true ratio is at most ``1 - family`` (Bonferroni's inequality; no independence needed). A
  regression claim (the whole interval above ``1 + threshold``) is one-sided, so the chance of a
  false regression anywhere in the comparison is at most half of that.
- **Side by side** (:func:`paired_ratio_interval`): when run *i* of the baseline and run *i* of
  the new version were measured at the same time (two functions of one emulator under one load
  run, their requests interleaved), the host's changes of speed during a run hit both alike. The
  interval is then Student's paired t-interval on the per-run log ratios (``n - 1`` degrees of
  freedom): the spread that matters is that of the ratio between runs, not of each side. This is
  "duet benchmarking" (Bulej, Horký, Tůma, Farquet, Prokopec: "Duet Benchmarking: Improving
  Measurement Accuracy in the Cloud", Empirical Software Engineering 25, 2020), which runs the
  two versions in parallel on one cloud machine for exactly this reason.
- Fewer than :data:`MIN_RUNS` runs on either side: the ratio without an interval (two runs
  give 2 degrees of freedom and intervals too wide to mean anything).
- Identical per-run values within each side (pooled variance 0; likely when every run's figure
  is the same HdrHistogram bucket): the interval would be a point, and any ratio but 1, however
  small, would read significant; the ratio is given without an interval, saying why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t

MIN_RUNS = 3
FAMILY_CONFIDENCE = 0.95


@dataclass(frozen=True)
class RatioInterval:
    """``ratio`` = new / baseline (geometric means of the runs); ``low``/``high`` the interval at
    ``confidence`` (None when there is none: ``reason`` says why)."""

    ratio: float
    low: float | None
    high: float | None
    confidence: float | None
    degrees_of_freedom: int | None
    reason: str = ""

    @property
    def significant(self) -> bool | None:
        """True when the interval excludes 1; None when there is no interval."""
        if self.low is None or self.high is None:
            return None
        return self.low > 1.0 or self.high < 1.0

    def regression(self, threshold: float) -> bool:
        """The whole interval lies above ``1 + threshold`` (``threshold`` 0.10 for 10 %)."""
        return self.low is not None and self.low > 1.0 + threshold


def geometric_mean(values: Sequence[float]) -> float:
    if not values or any(value <= 0 for value in values):
        raise ValueError(f"a geometric mean needs positive values, got {list(values)}")
    return math.exp(sum(math.log(value) for value in values) / len(values))


def per_interval_confidence(family: float, intervals: int) -> float:
    """Bonferroni: each of ``intervals`` intervals at this confidence covers all of them at
    ``family`` at least."""
    if not 0.0 < family < 1.0:
        raise ValueError(f"a confidence is in (0, 1), not {family}")
    return 1.0 - (1.0 - family) / max(intervals, 1)


def ratio_interval(baseline: Sequence[float], new: Sequence[float], confidence: float) -> RatioInterval:
    """The ratio of geometric means new/baseline and its two-sided Student t-interval (pooled
    variance on log values) at ``confidence``; no interval with fewer than :data:`MIN_RUNS`
    runs on a side."""
    ratio = geometric_mean(new) / geometric_mean(baseline)
    n_base, n_new = len(baseline), len(new)
    if min(n_base, n_new) < MIN_RUNS:
        reason = (
            f"{n_base} baseline and {n_new} new run(s): a significance claim needs at least "
            f"{MIN_RUNS} runs per side"
        )
        return RatioInterval(ratio, None, None, None, None, reason)
    if len(set(baseline)) == 1 and len(set(new)) == 1:  # pooled variance 0: a point, no interval
        reason = (
            "the runs of each side gave identical values (pooled variance 0, as when every run's "
            "figure falls in the same histogram bucket): no spread between runs to judge a "
            "difference by, so no significance claim"
        )
        return RatioInterval(ratio, None, None, None, n_base + n_new - 2, reason)
    log_base = [math.log(value) for value in baseline]
    log_new = [math.log(value) for value in new]
    mean_base, mean_new = sum(log_base) / n_base, sum(log_new) / n_new
    squares = sum((x - mean_base) ** 2 for x in log_base) + sum((x - mean_new) ** 2 for x in log_new)
    degrees = n_base + n_new - 2
    pooled_variance = squares / degrees
    standard_error = math.sqrt(pooled_variance * (1.0 / n_base + 1.0 / n_new))
    quantile = float(student_t.ppf(1.0 - (1.0 - confidence) / 2.0, degrees))
    difference = mean_new - mean_base  # log(ratio)
    half_width = quantile * standard_error
    return RatioInterval(
        ratio, math.exp(difference - half_width), math.exp(difference + half_width), confidence, degrees
    )


def words(ratio: float, significant: bool | None, up: str = "slower", down: str = "faster") -> str:
    """``1.21x slower (significant)``, ``1.02x faster (not significant)``, ``1.00x, no change
    (...)``; without an interval the parenthesis says ``no interval``. ``up``/``down`` name the
    directions for figures that are not durations (memory: ``larger``/``smaller``)."""
    claim = "no interval" if significant is None else ("significant" if significant else "not significant")
    if f"{ratio:.2f}" == "1.00":
        return f"1.00x, no change ({claim})"
    if ratio > 1.0:
        return f"{ratio:.2f}x {up} ({claim})"
    return f"{1.0 / ratio:.2f}x {down} ({claim})"


def paired_ratio_interval(
    baseline: Sequence[float], new: Sequence[float], confidence: float
) -> RatioInterval:
    """Runs measured side by side, ``baseline[i]`` with ``new[i]``: the ratio of geometric means
    (the geometric mean of the per-run ratios) and Student's paired t-interval on the per-run log
    ratios at ``confidence`` (``n - 1`` degrees of freedom); no interval with fewer than
    :data:`MIN_RUNS` pairs of runs, or when every run gave the same ratio."""
    if len(baseline) != len(new):
        raise ValueError(f"side by side needs as many baseline runs as new ({len(baseline)}, {len(new)})")
    ratio = geometric_mean(new) / geometric_mean(baseline)
    runs = len(baseline)
    if runs < MIN_RUNS:
        reason = f"{runs} run(s) side by side: a significance claim needs at least {MIN_RUNS} runs per side"
        return RatioInterval(ratio, None, None, None, None, reason)
    logs = [math.log(n) - math.log(b) for b, n in zip(baseline, new, strict=True)]
    mean = sum(logs) / runs
    variance = sum((x - mean) ** 2 for x in logs) / (runs - 1)
    if max(logs) - min(logs) < 1e-12:  # the same ratio every run, but for rounding
        reason = (
            "every run gave the same ratio (no spread between runs to judge a difference by), so "
            "no significance claim"
        )
        return RatioInterval(ratio, None, None, None, runs - 1, reason)
    quantile = float(student_t.ppf(1.0 - (1.0 - confidence) / 2.0, runs - 1))
    half_width = quantile * math.sqrt(variance / runs)
    low, high = math.exp(mean - half_width), math.exp(mean + half_width)
    return RatioInterval(ratio, low, high, confidence, runs - 1)
