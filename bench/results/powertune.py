"""The ``powertune`` kind: ``python -m bench.powertune``, one function × memory size per row.

Durations in µs (``*_us``; warm and cold series as :class:`~bench.latency.Series` with their
HdrHistograms), except where Lambda's own units are kept: REPORT lines
(:class:`~bench.results.reportline.ReportLine`, ms and MB), billed milliseconds
(``*_billed_ms_*``) and the lambda-perf reference (``reference_*_ms``). Memory in MB, money in
USD. Format history: ``powertune`` 1 is the first version; 2 adds the floor beside each size
(``SizeResult.floor``: a no-op function's warm Duration at the same size, in rounds),
``SizeResult.cold_trials_run`` (the cold figures come from the ``cold_trials`` that reported an
Init Duration, out of this many) and ``PowertuneRun.floor_function``; 3 names each init figure
by what it measures (docs/results.md, "Init figures"): ``SizeResult.init_us`` is
``init_duration_us``, ``Calibration.init_us`` and ``init_mean_us`` are ``init_duration_us`` and
``init_duration_mean_us``. Version 2 is read with those fields renamed (the same figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench.latency import Series
from bench.records import Record
from bench.results.core import Document, renamed
from bench.results.gate import Gate
from bench.results.metadata import Metadata
from bench.results.reportline import ReportLine


@dataclass(frozen=True)
class ColdTrial(Record):
    """One forced cold start: the client's time for the first Invoke and what the sandbox reported."""

    client_ns: int  # just before Invoke → the response payload read (boto3 and the network included)
    report: ReportLine
    init_cpu_ms: float | None  # the EMULATOR line's Init CPU; None on AWS
    contended: bool | None  # the emulator flagged a phase as slowed by the host; None: not known


@dataclass(frozen=True)
class PowerTuningFigures(Record):
    """What Power Tuning itself would compute at this size (``lambda/executor.js``
    ``computeStatistics``): the 20 % trimmed mean of Duration + Init Duration and of Billed
    Duration over every successful invocation here, cold and warm, and ``computePrice`` of the
    latter (no request charge)."""

    average_duration_us: float
    average_billed_ms: float
    average_price_usd: float


@dataclass(frozen=True)
class Floor(Record):
    """A no-op function's warm Duration at one size, measured in the same run in ``rounds``
    (``rounds_us``: each round's figure at the run's percentile; ``warm_duration_us``: every
    round together): what the emulator and the host add to any function's Duration."""

    function: str
    percentile: float
    rounds_us: list[float]
    warm_duration_us: Series


@dataclass(frozen=True)
class SizeResult(Record):
    """One function at one memory size. ``fits`` is False when it ran out of memory
    (``error_type`` ``Runtime.OutOfMemory``): a result, with no latency figures after it."""

    memory_mb: int
    fits: bool
    error_type: str | None
    cpu_share_vcpus: float | None  # the emulator's CPU share at this size; None on AWS
    outcomes: dict[str, int]  # every Invoke: 2xx, function_error, 4xx, 429, 5xx, connection_error
    cold_start_us: Series | None  # Init Duration + the first Duration, over the cold trials
    init_duration_us: Series | None  # REPORT Init Duration alone, over the cold trials
    init_cpu_us: Series | None  # the emulator's Init CPU time; None on AWS
    cold_trials: list[ColdTrial]
    warm_duration_us: Series  # REPORT Duration of the warm invocations (what is judged)
    warm_client_us: Series  # the client's time of the same invocations
    warm_billed_ms_mean: float | None
    cold_billed_ms_mean: float | None
    max_memory_used_mb: int | None
    contended_invocations: int  # warm invocations the emulator flagged as contended
    cost_per_million_usd: dict[str, float]  # by architecture (x86_64, arm64), at the cold fraction
    powertuning: PowerTuningFigures | None
    gates: list[Gate]
    status: str
    cold_trials_run: int = 0  # forced cold starts; cold_trials holds those with an Init Duration
    floor: Floor | None = None  # the no-op's warm Duration at this size; None: not measured


@dataclass(frozen=True)
class Recommendation(Record):
    """The size one strategy picks, or ``memory_mb`` None with the reason in ``message``."""

    strategy: str
    memory_mb: int | None
    duration_us: float | None  # the figure the strategy ranked by
    cost_per_million_usd: float | None
    meets_target: bool
    message: str


@dataclass(frozen=True)
class FunctionSweep(Record):
    function: str
    architecture: str  # from GetFunctionConfiguration (Power Tuning's default: x86_64)
    original_memory_mb: int
    restored: bool  # the original memory size and environment were put back
    sizes: list[SizeResult]
    recommendations: list[Recommendation]  # warm Duration percentile, cost at the cold fraction
    powertuning_recommendations: list[Recommendation]  # Power Tuning's own inputs, no target
    status: str  # the status of the size --strategy recommends (see bench.powertune.sweep)


@dataclass(frozen=True)
class Calibration(Record):
    """The emulator's Init Duration for lambda-perf's hello-world function beside lambda-perf's
    published figure: ``ratio`` > 1 means this machine's cold starts are slower than AWS's."""

    function: str
    memory_mb: int
    trials: int
    init_duration_us: Series  # REPORT Init Duration of the trials that had one
    init_duration_mean_us: float  # lambda-perf's statistic: the plain mean
    reference_mean_ms: float
    reference_min_ms: float
    reference_max_ms: float
    reference_trials: int
    reference_runtime: str
    reference_date: str
    reference_source: str
    ratio: float  # init_duration_mean_us / 1000 / reference_mean_ms


@dataclass(frozen=True)
class PowertuneRun(Document):
    KIND: ClassVar[str] = "powertune"
    SCHEMA_VERSION: ClassVar[int] = 3
    READS_OLDER: ClassVar[tuple[int, ...]] = (2,)  # version 2: the init fields' older names

    metadata: Metadata
    partial: bool  # interrupted: the sizes measured before it
    lambda_endpoint: str | None  # None: AWS itself
    target_us: float
    percentile: float
    strategy: str
    balanced_weight: float
    cold_fraction: float
    functions: list[FunctionSweep]
    calibration: Calibration | None
    status: str
    floor_function: str | None = None  # the no-op measured beside every size; None: no floor

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        for sweep in data.get("functions") or []:
            if isinstance(sweep, dict) and isinstance(sweep.get("sizes"), list):
                sweep["sizes"] = [renamed(size, "init_us", "init_duration_us") for size in sweep["sizes"]]
        calibration = renamed(data.get("calibration"), "init_us", "init_duration_us")
        if "calibration" in data:
            data["calibration"] = renamed(calibration, "init_mean_us", "init_duration_mean_us")
        return data


__all__ = [
    "Calibration",
    "ColdTrial",
    "Floor",
    "FunctionSweep",
    "PowerTuningFigures",
    "PowertuneRun",
    "Recommendation",
    "SizeResult",
]
