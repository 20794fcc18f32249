"""The run's gates beside the latency claim, and the limits they are judged by: failed requests
(with the throttles the host's slow inits made, :mod:`bench.hostmade`), the load generator's
schedule, and the host's contention as the emulator's resource model flags it. Pure, no I/O;
re-exported by :mod:`bench.verdict`, with the early-stopping rule and the floor's gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.hostmade import REMEDY, HostMade
from bench.results.gate import FAIL, INVALID, PASS, Gate


@dataclass(frozen=True)
class Limits:
    """What a run may get wrong before its verdict changes (command-line options, documented there).

    ``max_error_rate``: the share of requests that may fail (every answer but 2xx — 4xx, 5xx, a
    429 unless ``throttling_expected`` —, connection errors, wrong predictions) before the run
    FAILs; 0 allows none. ``max_late_share``: the share of open-loop sends that may go out later
    than ``--miss-us`` after their intended instant, and ``max_lag_us``: the p99 schedule lag
    allowed (None: a tenth of the latency target), before the run is INVALID.
    ``max_contended_share``: the share of invocations (or of cold starts) that the emulator's
    resource model flagged as contended (slowed by the host, not by the function's own CPU
    share) before the run is INVALID.
    """

    max_error_rate: float = 0.001
    throttling_expected: bool = False
    max_late_share: float = 0.001
    max_lag_us: float | None = None
    max_contended_share: float = 0.05

    def __post_init__(self) -> None:
        for name in ("max_error_rate", "max_late_share", "max_contended_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {getattr(self, name)}")
        if self.max_lag_us is not None and not self.max_lag_us > 0:
            raise ValueError(f"max_lag_us must be > 0, not {self.max_lag_us}")

    def lag_us(self, target_us: float) -> float:
        return self.max_lag_us if self.max_lag_us is not None else target_us / 10


FAILED_OUTCOMES = ("function_error", "4xx", "429", "5xx", "other", "connection_error")


def error_gate(
    name: str,
    outcomes: dict[str, int],
    limits: Limits,
    wrong_predictions: int = 0,
    lambda_throttles: int = 0,
    lambda_throttles_429: int = 0,
    host_made: HostMade | None = None,
    inits_finished: int | None = None,
) -> Gate:
    """The share of failed requests against ``limits.max_error_rate``; cancelled requests (cut
    off by the end of the run) are neither answers nor failures. ``lambda_throttles``: how many
    answers the emulator marked as a Lambda concurrency throttle (``X-Emulator-Throttled``; API
    Gateway answers one with a 500), ``lambda_throttles_429`` of them answered 429. The message
    names those among the failures; they count as failures all the same (a 429 not, under
    ``throttling_expected``).

    ``host_made``: how many of those throttles Lambda would have answered, had each init run on
    its own CPU (:mod:`bench.hostmade`). The gate is judged on both counts: a run that fails
    as measured and passes with the estimate is INVALID (the host made the failures), with the
    reason and the remedy; one that fails either way FAILs, naming the estimate.
    ``inits_finished``: the cold starts the client saw finish. A run in which none finished and
    none succeeded, every failure a throttle, saw only environments starting: INVALID (nothing
    tells the host's slowness from the function's), with the remedy."""
    counted = [outcome for outcome in FAILED_OUTCOMES if outcome != "429" or not limits.throttling_expected]
    by_outcome = {outcome: outcomes.get(outcome, 0) for outcome in counted if outcomes.get(outcome, 0)}
    if wrong_predictions:
        by_outcome["wrong prediction"] = wrong_predictions
    answered = sum(count for outcome, count in outcomes.items() if outcome != "cancelled")
    if limits.throttling_expected:
        answered -= outcomes.get("429", 0)
    failed = sum(by_outcome.values())
    if limits.throttling_expected:  # its 429s are neither answers nor failures
        lambda_throttles -= lambda_throttles_429
    share = failed / answered if answered else 0.0
    # A wrong prediction fails the run whatever the rate: it is not an availability blip.
    status = FAIL if (failed and share > limits.max_error_rate) or wrong_predictions else PASS
    parts = ", ".join(f"{outcome} {count:,}" for outcome, count in by_outcome.items())
    message = (
        f"{status}: {name}: {failed:,} of {answered:,} requests failed"
        + (f" ({parts})" if parts else "")
        + (f"; {lambda_throttles:,} of them Lambda concurrency throttles" if lambda_throttles else "")
        + f"; {share:.2%} vs at most {limits.max_error_rate:.2%}"
    )
    extra: dict = {}
    starting_only = (
        inits_finished == 0
        and not outcomes.get("2xx", 0)
        and failed == lambda_throttles
        and not wrong_predictions
    )
    if status == FAIL and lambda_throttles and starting_only:
        status = INVALID
        message = (
            f"{INVALID}: {name}: {failed:,} of {answered:,} requests failed, every one a Lambda concurrency "
            "throttle, and no init finished and no request succeeded within the run: it saw only "
            f"environments starting, and cannot tell the host's slowness from the function's: {REMEDY}"
        )
    elif status == FAIL and host_made is not None and lambda_throttles and not wrong_predictions:
        # the throttles counted here (a 429 under --throttling-expected is not one of them)
        counted_throttles = min(lambda_throttles, host_made.throttles)
        answered_there = host_made.answered_on_lambda * counted_throttles / host_made.throttles
        lambda_share = (failed - answered_there) / answered if answered else 0.0
        extra = {"host_made": asdict(host_made), "share_on_lambda": lambda_share}
        if lambda_share <= limits.max_error_rate:
            status = INVALID
            message = (
                f"{INVALID}: {name}: {failed:,} of {answered:,} requests failed ({share:.2%}), "
                f"{lambda_throttles:,} of them Lambda concurrency throttles, but {host_made.describe()}: "
                f"{lambda_share:.2%} vs at most {limits.max_error_rate:.2%}; the host's slow inits, not the "
                f"function, made these failures: {REMEDY}"
            )
        else:
            message += (
                f"; {host_made.describe()}: {lambda_share:.2%} of the requests, still over (not the host's "
                "slow inits alone)"
            )
    return Gate(
        name=f"{name} error rate",
        status=status,
        observed=share,
        threshold=limits.max_error_rate,
        unit="share",
        samples=answered,
        message=message,
        details={"failed": failed, "by_outcome": by_outcome}
        | ({"lambda_throttles": lambda_throttles} if lambda_throttles else {})
        | extra,
        check="errors",
    )


def schedule_gate(
    name: str,
    sent: int,
    late: int,
    lag_p99_us: float,
    target_us: float,
    limits: Limits,
    *,
    from_sent: Gate | None = None,
    from_intended: Gate | None = None,
    interval_us: float | None = None,
) -> Gate:
    """Open loop: did the generator send on schedule, and if not, could that have decided the
    verdict? Kept: ``late / sent <= max_late_share`` and lag p99 ``<= max_lag_us``. Missed, the
    run is INVALID (not FAIL: fewer users per process, ``--processes``, a lower rate or a quieter
    machine) when the miss could have decided the verdict:

    - the latency verdict measured from each request's intended instant (lag included:
      ``from_intended``) differs from the one measured from its actual send (``from_sent``), or
      either is unknown;
    - or the lag p99 exceeds the mean interval between sends (``interval_us``, 1 / rate): the
      load offered was not the load planned.

    Otherwise the gate passes and says what was missed: a p99 of 40 ms that FAILs a 1 ms target
    from either instant is the function's figure, whatever a 1 ms lag added. A send late by lag
    L adds exactly L to its intended-instant latency, so a verdict that is the same without the
    lag cannot have been made by it. (The floor of this machine: docs/benchmarks.md, "The
    generator's schedule".)"""
    late_share = late / sent if sent else 0.0
    max_lag = limits.lag_us(target_us)
    kept = late_share <= limits.max_late_share and lag_p99_us <= max_lag
    gross = interval_us is not None and lag_p99_us > interval_us
    same = from_sent is not None and from_intended is not None and from_sent.status == from_intended.status
    decisive = not kept and (gross or not same)
    status = INVALID if decisive else PASS
    message = (
        f"{status}: {name}: schedule lag p99 {lag_p99_us:,.0f} µs (at most {max_lag:,.0f}), "
        f"{late:,} of {sent:,} sends late ({late_share:.2%}, at most {limits.max_late_share:.2%})"
    )
    if decisive:
        why = (
            f"its lag p99 is over the {interval_us:,.0f} µs between sends: the load was not the one planned"
            if gross
            else "the verdict could be the generator's"
        )
        message += (
            f"; the load generator fell behind its schedule and {why}: use fewer users per process "
            "(or --processes), a lower rate, or a quieter machine"
        )
    elif not kept and from_sent is not None and from_intended is not None:
        message += (
            f"; missed, but it does not decide the verdict: {from_intended.status} from the intended "
            f"instants (p{from_intended.details.get('percentile', 99):g} {from_intended.observed:,.0f} µs) "
            f"and from the actual sends ({from_sent.observed:,.0f} µs)"
        )
    return Gate(
        name=f"{name} schedule",
        status=status,
        observed=lag_p99_us,
        threshold=max_lag,
        unit="µs",
        samples=sent,
        message=message,
        details={
            "late_sends": late,
            "late_share": late_share,
            "max_late_share": limits.max_late_share,
            "kept": kept,
            "decisive": decisive,
            "interval_us": interval_us,
        },
        check="schedule",
    )


def contention_gate(name: str, measured: int, contended_invokes: int, inits: int, contended_inits: int,
                    limits: Limits, latency: Gate | None = None) -> Gate:  # fmt: skip
    """The emulator's resource model flags a phase whose wall time its CPU time at its allowed
    share does not explain while the host was saturated: its figure is the host's, not the
    function's. Over ``max_contended_share`` of the invocations or of the inits, the run is
    INVALID where that could decide the verdict. Contention only slows a request down, so a
    PASS stands, and so does a FAIL whose percentile would still be over the target were every
    contended request within it (the requests over target, less the contended ones, still more
    than the percentile allows). Without the ``latency`` gate: INVALID."""
    invoke_share = contended_invokes / measured if measured else 0.0
    init_share = contended_inits / inits if inits else 0.0
    ok = invoke_share <= limits.max_contended_share and init_share <= limits.max_contended_share
    contended = contended_invokes + contended_inits
    still = None
    if not ok and latency is not None and latency.samples:
        percentile = float(latency.details.get("percentile", 99.0))
        over = int(latency.details.get("over_target", 0))
        allowed = latency.samples * (1 - percentile / 100)
        if latency.status == PASS or (latency.status == FAIL and over - contended > allowed):
            still = (
                f"not decisive: {latency.status} even were all {contended:,} contended requests within the "
                f"target ({over:,} of {latency.samples:,} over it; p{percentile:g} allows {allowed:,.0f})"
            )
    status = PASS if ok or still else INVALID
    phases = [
        f"{contended_invokes:,} of {measured:,} invocations ({invoke_share:.1%})",
        f"{contended_inits:,} of {inits:,} inits ({init_share:.1%})",
    ]
    message = f"{status}: {name}: contended {', '.join(phases)}, at most {limits.max_contended_share:.1%}"
    if still:
        message += f"; {still}"
    elif not ok:
        message += "; the host, not the function, set these figures: a quieter machine or a lower rate"
    return Gate(
        name=f"{name} contention",
        status=status,
        observed=max(invoke_share, init_share),
        threshold=limits.max_contended_share,
        unit="share",
        samples=measured,
        message=message,
        details={
            "contended_invokes": contended_invokes,
            "contended_inits": contended_inits,
            "inits": inits,
            "decisive": status == INVALID,
        },
        check="contention",
    )
