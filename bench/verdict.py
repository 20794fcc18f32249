"""SLO verdicts with MLPerf LoadGen's early-stopping rule: is "p99 <= target" statistically valid?

A run of ``n`` requests of which ``t`` took longer than the target supports the claim "the
``p``-th percentile is at most the target" with confidence ``c`` when, were the true share of
slow requests exactly ``1 - p``, seeing ``t`` or fewer of them in ``n`` would be unlikely:

    BinomialCDF(t; n, 1 - p) <= 1 - c

This is the bound MLPerf LoadGen's early stopping uses (``loadgen/early_stopping.cc``; the
MLPerf Inference rules, "Early stopping"). At p99 and 99% confidence it gives 459 samples
with none over the target, 662 with one, and so on; nothing here is tabulated, every figure
comes from the binomial CDF. Pure arithmetic, no I/O.

Statuses: ``PASS`` (the claim holds at the confidence), ``FAIL`` (the observed percentile is
over the target), ``INVALID`` (the observed percentile meets the target but there are too few
samples to claim it: ``samples_needed`` more, assuming none of them is slow).

The run's other gates are judged elsewhere and re-exported here, where every tool imports its
gates from: failed requests, the generator's schedule and the host's contention with their
``Limits`` (:mod:`bench.rungates`), the floor beside a Duration (:mod:`bench.floorgate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.floorgate import floor_gate
from bench.results.gate import EXIT_CODES, FAIL, INVALID, PASS, Gate, combine, judge
from bench.rungates import FAILED_OUTCOMES, Limits, contention_gate, error_gate, schedule_gate

__all__ = [
    "EXIT_CODES",
    "FAIL",
    "FAILED_OUTCOMES",
    "INVALID",
    "PASS",
    "Gate",
    "Limits",
    "Threshold",
    "combine",
    "contention_gate",
    "error_gate",
    "evaluate",
    "floor_gate",
    "judge",
    "schedule_gate",
]


def binomial_cdf(successes: int, trials: int, probability: float) -> float:
    """P(X <= successes) for X ~ Binomial(trials, probability), summed in log space."""
    if successes < 0:
        return 0.0
    if successes >= trials:
        return 1.0
    if probability <= 0.0:
        return 1.0
    if probability >= 1.0:
        return 0.0
    log_p, log_q = math.log(probability), math.log1p(-probability)
    log_n_factorial = math.lgamma(trials + 1)
    total = 0.0
    for k in range(successes + 1):
        log_term = (
            log_n_factorial
            - math.lgamma(k + 1)
            - math.lgamma(trials - k + 1)
            + k * log_p
            + (trials - k) * log_q
        )
        total += math.exp(log_term)
    return min(total, 1.0)


def min_samples(over_target: int, percentile: float, confidence: float) -> int:
    """The fewest samples for which ``over_target`` slow ones still support the claim."""
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"percentile must be in (0, 100), not {percentile}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    tail = 1.0 - percentile / 100.0
    alpha = 1.0 - confidence

    def supported(samples: int) -> bool:
        return binomial_cdf(over_target, samples, tail) <= alpha

    high = max(over_target + 1, 1)
    while not supported(high):
        high *= 2
    low = max(over_target, 0)  # not supported: with samples == over_target the CDF is 1
    while high - low > 1:
        middle = (low + high) // 2
        if supported(middle):
            high = middle
        else:
            low = middle
    return high


def too_few(samples: int, over_target: int, required: int, percentile: float) -> str:
    """Why a percentile cannot be judged, in the words a user reads: ``200 samples; p99 needs ≥
    459 (none over)`` (``662 (one over)``, ``1,001 (4 over)``)."""
    over = "none over" if over_target == 0 else "one over" if over_target == 1 else f"{over_target:,} over"
    return f"{samples:,} samples; p{percentile:g} needs ≥ {required:,} ({over})"


@dataclass(frozen=True)
class Threshold:
    """ "The ``percentile``-th latency is at most ``target_us``, at ``confidence``"."""

    target_us: float
    percentile: float = 99.0
    confidence: float = 0.99

    def __post_init__(self) -> None:
        if not self.target_us > 0:
            raise ValueError(f"target must be positive, not {self.target_us}")
        min_samples(0, self.percentile, self.confidence)  # validates both


def evaluate(threshold: Threshold, samples: int, over_target: int, observed_us: float, field: str) -> Gate:
    """The latency gate for one series; ``field`` names it (e.g. ``staging/logit-lean e2e_us p99``)."""
    required = min_samples(over_target, threshold.percentile, threshold.confidence)
    claim = (
        f"{field} = {observed_us:,.0f} µs vs target {threshold.target_us:,.0f} µs "
        f"({samples} samples, {over_target} over target)"
    )
    if samples > 0 and samples >= required:
        status, needed = PASS, 0
        message = f"PASS: {claim}; valid at {threshold.confidence:.0%} confidence"
    elif samples > 0 and observed_us > threshold.target_us:
        status, needed = FAIL, 0
        message = f"FAIL: {claim}"
    else:
        status, needed = INVALID, required - samples
        message = (
            f"INVALID: {too_few(samples, over_target, required, threshold.percentile)} for a claim at "
            f"{threshold.confidence:.0%} confidence: {field} = {observed_us:,.0f} µs vs target "
            f"{threshold.target_us:,.0f} µs; {needed} more samples with none over target are needed"
        )
    return Gate(
        name=field,
        status=status,
        observed=observed_us,
        threshold=threshold.target_us,
        unit="µs",
        samples=samples,
        message=message,
        check="latency",
        details={
            "over_target": over_target,
            "percentile": threshold.percentile,
            "confidence": threshold.confidence,
            "samples_needed": needed,
        },
    )
