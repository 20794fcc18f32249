"""Throttles the host made: how many of a run's Lambda throttles would Lambda itself have answered?

A function hit from cold opens as many environments as its reserved concurrency allows, and a
request that arrives while every one of them is busy initialising is throttled (Lambda's
"Lambda function scaling": a request over the concurrency limit is throttled,
https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html). On Lambda each
environment initialises on its own CPU; here they share the host's, so each init takes longer
than it needs and the environments stay busy longer: more requests meet a full set of
initialising environments. The emulator's resource model knows what each init needs: its CPU
time at its allowed share (``handler.local.contention``), which is its wall time over the
contention factor it reports (``X-Emulator-Contended: init 12.1``); an init not contended
needed its wall time.

The estimate (pure, no I/O): the throttles answered while inits were running (those in the
wall-clock seconds up to the last second in which an init finished) are taken to arrive evenly
over the time the environments spent initialising, so Lambda would have seen them in
proportion ``Σ needed / Σ wall`` over the inits; throttles after the last init are the
function's own (too little concurrency for the load) and count in full. It assumes the inits
overlap (a cold burst), and it does not model requests that queued at the gateway here; it is
an estimate, named as one wherever it is printed.
"""

from __future__ import annotations

from dataclasses import dataclass

REMEDY = (
    "warm the function first (as the main job does), use fewer environments (reserved_concurrency), "
    "or a bigger machine"
)


@dataclass(frozen=True)
class InitNeeds:
    """The run's inits as the emulator measured them: ``inits`` with both figures, the sum of
    their wall times (Init Duration) and of what they needed at their share, ``contended`` of
    them slowed by the host."""

    inits: int
    wall_us: int
    needed_us: int
    contended: int

    @property
    def slowdown(self) -> float:
        """Σ wall / Σ needed: how much longer the inits took here than they needed."""
        return self.wall_us / self.needed_us if self.needed_us else 1.0


@dataclass(frozen=True)
class HostMade:
    """The estimate for one run: ``throttles`` marked by the emulator, ``during_inits`` of them
    while inits ran, and ``on_lambda`` of them that Lambda would have throttled too."""

    throttles: int
    during_inits: int
    needs: InitNeeds
    on_lambda: float

    @property
    def answered_on_lambda(self) -> float:
        return self.throttles - self.on_lambda

    def describe(self) -> str:
        needs = self.needs
        here, needed = _duration(needs.wall_us / needs.inits), _duration(needs.needed_us / needs.inits)
        after = self.throttles - self.during_inits
        text = (
            f"the host slowed {needs.contended:,} of {needs.inits:,} inits ({here} each on average "
            f"here, {needed} at their own CPU share): of the {self.during_inits:,} throttles while "
            f"inits ran, Lambda would have throttled about {self.on_lambda - after:,.0f} (an estimate)"
        )
        return text + (f"; the {after:,} after the last init count in full" if after else "")


def _duration(us: float) -> str:
    """1.2 s, 45 ms: an init's time in the unit that keeps its digits."""
    return f"{us / 1e6:,.1f} s" if us >= 1e6 else f"{us / 1e3:,.0f} ms"


def estimate(throttles: int, during_inits: int, needs: InitNeeds | None) -> HostMade | None:
    """The estimate, or None when it cannot change anything: no throttles, no init figures, or
    no init the host slowed."""
    if not throttles or needs is None or not needs.inits or not needs.contended or needs.needed_us <= 0:
        return None
    during = min(max(during_inits, 0), throttles)
    share = min(needs.needed_us / needs.wall_us, 1.0) if needs.wall_us else 1.0
    on_lambda = during * share + (throttles - during)
    return HostMade(throttles, during, needs, round(on_lambda, 1))


def during_inits(timeline: dict[int, tuple[int, int]], throttles: int) -> int:
    """Throttles answered while inits ran, from a per-second ``{second: (lambda_throttles,
    cold_starts)}``: the answers the emulator marked as Lambda throttles up to the last second in
    which an init finished, at most ``throttles``. Other failures (a 4xx, a 5xx of the function's
    own, a failed verify) are not throttles and do not count."""
    inits_end = max((second for second, (_throttles, colds) in timeline.items() if colds), default=None)
    if inits_end is None:
        return 0
    during = sum(count for second, (count, _colds) in timeline.items() if second <= inits_end)
    return min(during, throttles)
