"""The floor's verdict: is a Duration's FAIL the function's, or the no-op's beside it?

The floor is a no-op function's warm Duration at the same memory size in the same run
(``python -m bench.powertune``: docs/powertune.md): what the Runtime API path, the thaw and the
emulator's per-invocation reads add to any function's Duration there. Pure, no I/O; re-exported
by :mod:`bench.verdict`, where every tool imports its gates from.
"""

from __future__ import annotations

from bench.results.gate import FAIL, INVALID, PASS, Gate


def floor_gate(name: str, latency: Gate, floor_function: str, floor_rounds_us: list[float],
               floor_observed_us: float) -> Gate:  # fmt: skip
    """The floor beside a Duration: the same percentile of a no-op function's warm Duration,
    measured at the same size in the same run (``floor_rounds_us``: one figure per round,
    ``floor_observed_us``: over every round). The floor's reach is its highest round plus
    the spread between its rounds (where one more round of the no-op could land). A FAIL the
    floor alone decides is INVALID: the function's percentile is within that reach (it cannot be
    told from doing nothing), or the no-op itself misses the target (nothing deployed here could
    meet it) and the function's percentile is over the floor's reach by no more than the target
    (were the floor zero, it might have met it). A PASS stands (the floor only adds time), and so
    does a FAIL over the floor's reach by more than the target (38 ms against a 3 ms floor and a
    1 ms target is the function's), as does any FAIL over the floor's reach when the no-op meets
    the target. Without floor figures the gate is ``floor: not measured``: PASS only because a
    floor not measured cannot invalidate the run (a Gate is PASS, FAIL or INVALID), with
    ``details["measured"]`` False and no observed figure; its message claims no check passed.

    ``details`` say why, for readers that need the reason without parsing the message
    (:func:`bench.powertune.sweep.why_not_judged`): ``within_spread``, ``floor_misses_target``,
    ``floor_rounds_us`` (the reach follows from them), ``decisive``, ``measured``."""
    percentile = float(latency.details.get("percentile", 99.0))
    quantile, target, observed = f"p{percentile:g}", latency.threshold or 0.0, latency.observed or 0.0
    if not floor_rounds_us:
        return Gate(f"{name} floor", PASS, None, None, "µs", 0,
                    f"floor: not measured: {name} has no no-op round beside it; nothing judged against it",
                    details={"decisive": False, "measured": False}, check="floor")  # fmt: skip
    low, high = min(floor_rounds_us), max(floor_rounds_us)
    spread = f"{low:,.0f}–{high:,.0f} µs over {len(floor_rounds_us)} rounds"
    reach = high + (high - low)
    floor_misses = floor_observed_us > target
    within = observed <= reach
    decisive = latency.status == FAIL and (within or (floor_misses and observed - reach <= target))
    status = INVALID if decisive else PASS
    message = (
        f"{status}: {name}: warm Duration {quantile} {observed:,.0f} µs beside the floor's "
        f"({floor_function}, a no-op) {floor_observed_us:,.0f} µs ({spread})"
    )
    if decisive and floor_misses and not within:
        message += (
            f"; the no-op itself misses the {target:,.0f} µs target: the emulator and the host, not the "
            "function, decide this verdict"
        )
    elif decisive:
        message += (
            f"; within the floor's run-to-run spread (up to {reach:,.0f} µs): the function cannot be told "
            "from doing nothing"
        )
    elif latency.status == FAIL:
        over = f"over the floor's reach ({reach:,.0f} µs, its highest round plus its spread)"
        if floor_misses:
            over += f" by more than the {target:,.0f} µs target"
        else:
            over += f", and the no-op meets the {target:,.0f} µs target"
        message += f"; not decisive: {over}"
    return Gate(
        name=f"{name} floor",
        status=status,
        observed=floor_observed_us,
        threshold=target,
        unit="µs",
        samples=latency.samples,
        message=message,
        details={
            "floor_function": floor_function,
            "floor_rounds_us": list(floor_rounds_us),
            "floor_misses_target": floor_misses,
            "within_spread": within,
            "decisive": decisive,
            "measured": True,
        },
        check="floor",
    )
