"""Open-loop arrivals: when each request is *meant* to be sent, and a wait that keeps to it.

A schedule yields intended send instants (``perf_counter_ns``) at a fixed interval or with
exponential gaps (Poisson arrivals), independent of when replies come back: a stalled server
no longer slows the load down (coordinated omission). gevent's timers wake 0.4-0.6 ms late
on this machine, too coarse for a 1 ms interval, so :func:`wait_until` sleeps coarsely until
``spin_ns`` before the instant, then yields to the event loop (``gevent.sleep(0)``: replies
keep being read) until the clock reaches it. The cost is one busy core while spinning.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

ARRIVAL_DISTRIBUTIONS = ("fixed", "poisson")
DEFAULT_SPIN_NS = 1_500_000


def intended_instants(
    rate_per_s: float,
    distribution: str,
    start_ns: int,
    rng: random.Random,
) -> Iterator[int]:
    """Intended send instants from ``start_ns`` on: every 1/rate s, or Poisson at ``rate``."""
    if rate_per_s <= 0:
        raise ValueError(f"rate must be positive, not {rate_per_s}")
    if distribution not in ARRIVAL_DISTRIBUTIONS:
        raise ValueError(f"arrival distribution must be one of {ARRIVAL_DISTRIBUTIONS}")
    interval_ns = 1e9 / rate_per_s
    instant = float(start_ns)
    while True:
        yield round(instant)
        instant += interval_ns if distribution == "fixed" else rng.expovariate(1.0) * interval_ns


def wait_until(
    instant_ns: int,
    *,
    spin_ns: int = DEFAULT_SPIN_NS,
    clock: Callable[[], int] = time.perf_counter_ns,
    sleep: Callable[[float], None] | None = None,
) -> int:
    """Block this greenlet until ``clock() >= instant_ns``; returns the clock at wake-up."""
    if sleep is None:
        import gevent

        sleep = gevent.sleep
    while True:
        now = clock()
        remaining = instant_ns - now
        if remaining <= 0:
            return now
        if remaining > spin_ns:
            sleep((remaining - spin_ns) / 1e9)
        else:
            sleep(0)
