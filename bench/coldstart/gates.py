"""The cold-start gates: warm p99 against ``--target-ms``, cold p50 against ``--cold-target-ms``.

*Warm*: the claim "p99 of the warm calls <= target" with MLPerf LoadGen's early-stopping bound
(:func:`bench.verdict.evaluate`), on the HdrHistogram of the warm calls (samples over the
target from ``count_over_us``, a bucket straddling it counted as over). At p99 and 99%
confidence it needs 459 warm calls with none over the target, so a short run is ``INVALID``
rather than ``PASS``. There is no ``--percentile`` flag: always p99.

*Cold*: the median over the trials against the target (:func:`bench.results.gate.check`).
A median over the target is ``FAIL`` whatever the number of trials (as ``evaluate`` fails an
observed percentile over its target); a median at or under it is ``INVALID`` with fewer than
:data:`bench.stats.MIN_SAMPLES` trials: too few to claim it.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses

from bench.latency import LatencyRecorder
from bench.results.gate import Gate, check
from bench.stats import MIN_SAMPLES, TrialStats
from bench.verdict import Threshold, evaluate

WARM_PERCENTILE = 99.0


def warm_gate(name: str, warm: LatencyRecorder, target_ms: float) -> Gate:
    """``{name} warm_us p99`` against ``target_ms``, early-stopping bound included."""
    threshold = Threshold(target_us=target_ms * 1_000, percentile=WARM_PERCENTILE)
    return evaluate(
        threshold,
        samples=warm.count,
        over_target=warm.count_over_us(threshold.target_us),
        observed_us=warm.percentile_us(threshold.percentile) if warm.count else 0.0,
        field=f"{name} warm_us p{threshold.percentile:g}",
    )


def cold_gate(field: str, cold: TrialStats, target_ms: float) -> Gate:
    """``{field} p50`` (e.g. ``lean cold_start_us``, a median over trials in µs) against ``target_ms``."""
    target_us = target_ms * 1_000
    too_few = cold.samples < MIN_SAMPLES and cold.p50 <= target_us
    what = f"only {cold.samples} trials, {MIN_SAMPLES} needed to claim it: more --trials" if too_few else ""
    gate = check(f"{field} p50", cold.p50, target_us, "µs", cold.samples, invalid=too_few, what=what)
    return dataclasses.replace(gate, check="latency")


def gates_for(
    name: str, cold_field: str, cold: TrialStats | None, warm: LatencyRecorder, target_ms: float,
    cold_target_ms: float | None, warm_calls: int,
) -> list[Gate]:  # fmt: skip
    """The warm gate (none when no warm calls were asked for: ``--warm 0``) and the cold gate
    (none when there is no cold target)."""
    gates = [warm_gate(name, warm, target_ms)] if warm_calls > 0 else []
    if cold_target_ms is not None and cold is not None:
        gates.append(cold_gate(f"{name} {cold_field}", cold, cold_target_ms))
    return gates
