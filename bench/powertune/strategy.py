"""Which memory size wins: AWS Lambda Power Tuning's rules, and its trimmed mean. Pure, no I/O.

Sources (alexcasalboni/aws-lambda-power-tuning, HEAD 262ecc2d, 2026-04-13;
docs/research/powertuning.md quotes them):

- ``lambda/analyzer.js``, ``findCheapest``: sort by cost, a tie goes to the faster;
  ``findFastest``: sort by duration, a tie goes to the cheaper; ``findBalanced``: the lowest
  ``weight × cost / maxCost + (1 − weight) × duration / maxDuration``, each figure divided by
  its largest over the sizes tried (not min-max scaled), ``weight`` clamped to [0, 1]
  (``getBalancedWeight``; 0 = fastest, 1 = cheapest, default 0.5). ``extractStatistics``
  drops a size without a duration first.
- ``lambda/utils.js``, ``computeAverageDuration``: sort, drop ``int(n × discard)`` values from
  each end (``discardTopBottom``, default 0.2, clamped to [0, 0.4] in ``executor.js``), the
  mean of the rest.

Where this tool differs, on purpose: the *cost* strategy takes the
cheapest size **whose percentile meets the target** (Power Tuning has no target), and the
duration fed to speed and balanced is that percentile of warm Duration rather than the trimmed
mean. :func:`pick` takes whichever figures it is given, so the report also shows what Power
Tuning's own inputs (trimmed means, no target) would have picked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

STRATEGIES = ("cost", "speed", "balanced")
DEFAULT_BALANCED_WEIGHT = 0.5  # analyzer.js, defaultBalancedWeight
DEFAULT_DISCARD = 0.2  # executor.js, discardTopBottom
MAX_DISCARD = 0.4


@dataclass(frozen=True)
class Candidate:
    """One memory size as a strategy sees it: its cost and duration (any consistent units),
    and whether it meets the target (only the cost strategy asks)."""

    memory_mb: int
    cost: float
    duration: float
    meets_target: bool = True


def trimmed_mean(values: Sequence[float], discard: float = DEFAULT_DISCARD) -> float:
    """Power Tuning's ``computeAverageDuration``: the mean after dropping ``int(n × discard)``
    of the smallest and as many of the largest values; 0 for no values (as it returns)."""
    if not values:
        return 0.0
    discard = min(max(discard, 0.0), MAX_DISCARD)
    dropped = int(len(values) * discard)
    kept = sorted(values)[dropped : len(values) - dropped]
    return math.fsum(kept) / len(kept)


def cheapest(candidates: Sequence[Candidate]) -> Candidate | None:
    """``findCheapest``: the lowest cost; on a tie the faster."""
    return min(candidates, key=lambda c: (c.cost, c.duration), default=None)


def fastest(candidates: Sequence[Candidate]) -> Candidate | None:
    """``findFastest``: the lowest duration; on a tie the cheaper."""
    return min(candidates, key=lambda c: (c.duration, c.cost), default=None)


def balanced(candidates: Sequence[Candidate], weight: float = DEFAULT_BALANCED_WEIGHT) -> Candidate | None:
    """``findBalanced``: the lowest ``w·cost/maxCost + (1−w)·duration/maxDuration``."""
    if not candidates:
        return None
    weight = min(max(weight, 0.0), 1.0)
    max_cost = max(c.cost for c in candidates) or 1.0
    max_duration = max(c.duration for c in candidates) or 1.0

    def score(c: Candidate) -> float:
        return weight * c.cost / max_cost + (1 - weight) * c.duration / max_duration

    # JavaScript's sort is stable: among equal scores the first in the list (smallest size) wins.
    return min(candidates, key=score)


def pick(
    strategy: str,
    candidates: Sequence[Candidate],
    weight: float = DEFAULT_BALANCED_WEIGHT,
    require_target: bool = True,
) -> Candidate | None:
    """The winner of ``strategy`` among ``candidates`` (in memory order), or None when there is
    none: no size was measured, or (``cost`` with ``require_target``) none meets the target."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
    measured = [c for c in sorted(candidates, key=lambda c: c.memory_mb) if c.duration]
    if strategy == "cost":
        return cheapest([c for c in measured if c.meets_target or not require_target])
    if strategy == "speed":
        return fastest(measured)
    return balanced(measured, weight)
