"""Finer response-time buckets for Locust's own statistics: three significant figures, in ms.

Locust counts each request's response time (a float, in ms) under a rounded key: its default
``locust.stats.bucket_response_time`` keeps about two significant figures and whole
milliseconds below 100 ms, so its table, charts and CSV show a 1.13 ms median as "1" and a
0.49 ms one as "0". Since Locust 2.43.4 the function is replaceable (locustio/locust#3373,
"Extract response time bucketing into an overridable function"; Locust's docs, "Customizing
response time bucketing"). :func:`install` puts :func:`bucket_ms` in its place: three
significant figures, down to 1 µs, so a key is within half a unit of the third figure
(≤ 0.5 %) of what was measured: 0.487, 1.13, 12.3, 123, 1230 ms.

Each Locust process buckets the requests it sends itself, and a worker ships its counts to
the master by key (the master merges keys, it does not re-bucket), so the plugin installs it
in every process at ``init``: standalone, master and each worker (``--processes N`` forks,
``--worker``). The cost: at most 900 keys per decade of latency instead of about 90 in each
worker's periodic report; a run spread from 0.3 ms to 30 ms holds at most ~1,800.

These buckets only feed Locust's own screens. The harness's figures (the results JSON, the
"Latency (microseconds)" tab, the µs table) come from its HdrHistograms (``bench.latency``), recorded
from the exact float Locust carries, never from these keys.
"""

from __future__ import annotations

import logging
import math

SIGNIFICANT_FIGURES = 3
FINEST_DECIMALS = 3  # 0.001 ms = 1 µs: no key finer than the harness's own unit


def bucket_ms(response_time: int | float) -> int | float:
    """``response_time`` (ms) rounded to three significant figures, and to no finer than 1 µs;
    a whole number of ms from 100 ms up (an ``int``, as Locust's own keys are)."""
    if response_time <= 0:
        return 0
    decimals = SIGNIFICANT_FIGURES - 1 - math.floor(math.log10(response_time))
    rounded = round(response_time, min(decimals, FINEST_DECIMALS))
    return int(rounded) if decimals <= 0 else rounded


def install() -> bool:
    """Replace Locust's bucketing with :func:`bucket_ms` in this process. False (and a warning)
    on a Locust older than 2.43.4, whose rounding cannot be replaced."""
    import locust.stats

    if not hasattr(locust.stats, "bucket_response_time"):
        logging.warning("Locust < 2.43.4: its own table, charts and CSV keep whole-millisecond buckets")
        return False
    locust.stats.bucket_response_time = bucket_ms
    return True
