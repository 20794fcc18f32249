"""The published AWS measurements the emulator is held against, and the tolerances, fixed in code.

Every figure here is copied from its source (named with its date); none is derived from the
emulator's own formula. The tolerances were fixed before anything was measured against them. One
source was added later: cebert's (``MODERN``), on 2026-12-07, after runs had shown the pwrdrvr
rows at 128 MB failing; its rows reuse the stability and scaling tolerances above, and the
choice of its python3.11 x86_64 series (this harness's runtime and architecture) was made with
the spread of its other series in view (below, and docs/fidelity.md).

- **Throttling** (``THROTTLING``): pwrdrvr/lambda-throttling, ``docs/index.html`` (the report of
  its run on AWS, commit e5ec41e, 2025-03-01). A Node.js loop of iterations costing 3.5937 ms
  unthrottled (mean, at 3,000 MB) runs 5 s at each size; the page's data: iterations 86, 184,
  370, 764, 1,347 and CPU time 361.58, 662.54, 1,449.53, 2,902.43, 4,838.23 ms at 128, 256,
  512, 1,024 and 1,769 MB. Derived here, as the figures the emulator is judged on: the mean
  iteration wall time over the unthrottled one (5,000 / iterations / 3.5937) and the CPU share
  (CPU time / 5,000 ms). Its timelines put the 128 and 256 MB iterations at 20, 40, 60 and
  80 ms (75 of 86 and 179 of 184 iterations within 3 ms of one).
- **lambda-perf** (``LAMBDA_PERF``): maxday/lambda-perf, ``data/2026-08-22.json``, entries
  ``lambda-perf-python312-zip-128-x86_64`` and ``lambda-perf-python313-zip-128-x86_64``: ten
  forced cold starts of a hello-world function a day; ``i`` the Init Durations, ``ad`` the mean
  Duration of those cold invocations, ``acd`` the mean Init Duration.
- **Scaling** (``SCALING``): epsagon/lambda-memory-performance-benchmark, README "Fibonacci's
  Last Result (February 9th, 2018)": a recursive Python Fibonacci (python2.7, one thread),
  REPORT Duration, mean of 5 warm invocations after one warm-up, at each memory size. Measured
  before Lambda's 2020 change to 10 GB and 6 vCPUs; a single thread could not use more than one
  vCPU then either (2,048-3,008 MB: 25.21, 25.36, 25.15 ms).
- **Scaling today** (``MODERN``): cebert/aws-lambda-performance-benchmarks,
  ``published-results/december-2025/tables/cpu-intensive/warm.md`` (run of 2025-11-30,
  us-east-2, 300 warm invocations a configuration): its CPU-intensive function (a chained
  SHA-256 loop, one thread), python3.11 on x86_64 (this harness's Python and architecture),
  mean warm Duration at each size. Its 128/1,769 MB quotient is 13.1, the lowest of its x86_64
  series: python3.12, 3.13, 3.14 give 14.0, 14.0, 13.6, nodejs20 and 22 14.5 and 13.5, Rust 13.5;
  on arm64 they range from 11.4 to 16.0. pwrdrvr's loop (nodejs20; x86_64, its
  CDK stack naming no architecture; one 5 s run a size)
  gives 15.7. AWS's own figure for this quotient thus varies more than the stability tolerance
  between runtimes and architectures; the table holds the rounds against both pwrdrvr's and
  cebert's python3.11 figure (docs/fidelity.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# -- tolerances (fractions of the AWS figure), fixed before measuring -------------------------
THROTTLE_RATIO_TOLERANCE = 0.15  # mean iteration wall / unthrottled, every size
CPU_SHARE_TOLERANCE = 0.15  # CPU time / wall time, every size
MODE_FRACTION_MIN = 0.80  # at 128 and 256 MB: iterations within MODE_WINDOW_MS of k x 20 ms
MODE_WINDOW_MS = 3.0
MODE_PERIOD_MS = 20.0
STABILITY_TOLERANCE = 0.10  # the 128/1,769 MB Duration ratio of one job, each round
COLD_DURATION_TOLERANCE = 0.30  # cold invocation Duration vs lambda-perf's x the host factor
SCALING_TOLERANCE = 0.15  # warm Duration at a size over at 3,008 MB
# Not a fidelity tolerance: a validity check. The unthrottled iteration is measured just before
# and just after each size's loop and each stability round; when the two differ by more than
# this, the host's own speed changed during the measurement (this VM's CPU ran the same loop
# 1.6x slower in spells of seconds to minutes: docs/benchmarks.md, "Is the new version
# slower?"), and the rows that depend on CPU speed read INVALID rather than PASS or FAIL.
REFERENCE_DRIFT_LIMIT = 0.10


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    date: str  # when AWS was measured


@dataclass(frozen=True)
class ThrottleSize:
    memory_mb: int
    iterations: int  # in RUN_SECONDS
    cpu_ms: float

    @property
    def wall_ratio(self) -> float:
        """Mean iteration wall time over the unthrottled iteration.

        On AWS this holds more than the CPU share: AWS gave the formula's CPU (``cpu_ms`` is
        0.999, 0.916, 1.002, 1.003 of memory / 1,769 at 128-1,024 MB) but an iteration cost more
        CPU at small sizes (``cpu_ms / iterations``: 4.20 ms at 128 MB against 3.59 at 1,769),
        which the emulator does not model; the row judged on this ratio compares without
        accounting for that (docs/fidelity.md).
        """
        return THROTTLING_RUN_MS / self.iterations / THROTTLING_UNTHROTTLED_MS

    @property
    def cpu_share(self) -> float:
        return self.cpu_ms / THROTTLING_RUN_MS

    @property
    def cpu_per_iteration_ratio(self) -> float:
        """CPU time per iteration over the unthrottled iteration: 1.17 at 128 MB, 1.00, 1.09,
        1.06 and 1.00 at 256-1,769 MB. The mean-wall ratio is this over the CPU share."""
        return self.cpu_ms / self.iterations / THROTTLING_UNTHROTTLED_MS


THROTTLING_SOURCE = Source(
    "pwrdrvr/lambda-throttling",
    "https://github.com/pwrdrvr/lambda-throttling/blob/e5ec41e/docs/index.html",
    "2025-03-01",
)
THROTTLING_RUN_MS = 5_000.0
THROTTLING_UNTHROTTLED_MS = 3.593654618001543  # "calibrationBaseline", 3,000 MB
THROTTLING = (
    ThrottleSize(128, 86, 361.58),
    ThrottleSize(256, 184, 662.54),
    ThrottleSize(512, 370, 1449.53),
    ThrottleSize(1024, 764, 2902.43),
    ThrottleSize(1769, 1347, 4838.23),
)
MODE_SIZES = (128, 256)  # where the page's timelines show iterations at multiples of 20 ms
# The page's timelines ("Delay" of each throttled iteration) within MODE_WINDOW_MS of k x 20 ms,
# over all iterations: 75 of 86 at 128 MB, 179 of 184 at 256 MB.
MODE_FRACTION_AWS = {128: 75 / 86, 256: 179 / 184}
STABILITY_SIZES = (128, 1769)


def stability_ratio() -> float:
    """AWS's 128/1,769 MB ratio of a CPU-bound job's wall time: the two mean-wall ratios."""
    by_size = {size.memory_mb: size for size in THROTTLING}
    return by_size[128].wall_ratio / by_size[1769].wall_ratio


@dataclass(frozen=True)
class ColdStart:
    runtime: str  # lambda-perf's "d"
    entry: str  # lambda-perf's "r"
    init_durations_ms: tuple[float, ...]  # "i"
    duration_mean_ms: float  # "ad"
    init_mean_ms: float  # "acd"


LAMBDA_PERF_SOURCE = Source(
    "maxday/lambda-perf",
    "https://github.com/maxday/lambda-perf/blob/main/data/2026-08-22.json",
    "2026-08-22",
)
LAMBDA_PERF = (
    ColdStart(
        "python3.12",
        "lambda-perf-python312-zip-128-x86_64",
        (84.7, 88.02, 81.83, 81.07, 79.69, 95.81, 82.72, 93.28, 85.41, 79.73),
        1.847,
        85.226,
    ),
    ColdStart(
        "python3.13",
        "lambda-perf-python313-zip-128-x86_64",
        (100.61, 84.18, 88.12, 84.56, 81.19, 100.13, 84.03, 101.88, 82.77, 103.25),
        2.055,
        91.072,
    ),
)
LAMBDA_PERF_MEMORY_MB = 128

SCALING_SOURCE = Source(
    "epsagon/lambda-memory-performance-benchmark",
    "https://github.com/epsagon/lambda-memory-performance-benchmark/blob/b1e48c6/README.rst",
    "2018-02-09",
)
SCALING_BASE_MB = 3008
SCALING_DURATION_MS = {  # REPORT Duration, mean of 5 warm invocations
    128: 376.05,
    256: 198.56,
    512: 98.36,
    1024: 45.31,
    1536: 30.53,
    2048: 25.21,
    3008: 25.15,
}
SCALING_WARM_INVOCATIONS = 5  # as epsagon's benchmark.py (INVOCATIONS_COUNT), after one warm-up


def scaling_ratio(memory_mb: int) -> float:
    return SCALING_DURATION_MS[memory_mb] / SCALING_DURATION_MS[SCALING_BASE_MB]


MODERN_SOURCE = Source(
    "cebert/aws-lambda-performance-benchmarks, python3.11 x86_64",
    "https://github.com/cebert/aws-lambda-performance-benchmarks/blob/c8c9c66/"
    "published-results/december-2025/tables/cpu-intensive/warm.md",
    "2025-11-30",
)
MODERN_BASE_MB = 1769
MODERN_DURATION_MS = {  # mean warm REPORT Duration, 300 invocations a size
    128: 4428.99,
    256: 2412.45,
    512: 1209.33,
    1024: 596.54,
    1769: 336.93,
}


def modern_ratio(memory_mb: int) -> float:
    return MODERN_DURATION_MS[memory_mb] / MODERN_DURATION_MS[MODERN_BASE_MB]


def reference_drift(before: float, after: float | None) -> float:
    """How far apart the references before and after are (0.0 when there is no second one)."""
    if after is None or before <= 0 or after <= 0:
        return 0.0
    return max(before, after) / min(before, after) - 1.0


def unthrottled(before: float, after: float | None) -> float:
    """The unthrottled iteration a throttled run is held against: the geometric mean of the
    references measured just before and just after it (the one before alone, without an after)."""
    return math.sqrt(before * after) if after else before
