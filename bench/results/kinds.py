"""The warm-latency kinds: ``inprocess``, ``endpoint`` and ``locust`` (the Locust harness).

Every duration is in µs; a :class:`~bench.latency.Series` carries its HdrHistogram encoding.

Format history of ``locust``: 2 has verdicts as :class:`~bench.results.gate.Gate` records; 3
records a cold start's two init figures apart (``ColdStarts.handler_init_us``: the handler's
``Server-Timing: init``; ``init_duration_us``: the emulator's Init Duration, its
``X-Emulator-Init-Duration-Ms``). Version 2's ``init_us`` was the first, or the second when the
first was absent, in one series: it cannot be split again, so version 2 is not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from bench.latency import LatencySummary, Series
from bench.results.core import Document, Record
from bench.results.gate import Gate
from bench.results.metadata import Metadata
from bench.stats import TrialStats


# -- inprocess: python -m bench.inprocess ---------------------------------------------------
@dataclass(frozen=True)
class InprocessVariant(Record):
    name: str
    handler: str
    calls: int
    handler_us: Series  # the whole lambda_handler call, recorded in ns
    predict_us: Series | None  # the handler's own Server-Timing "predict" step
    response_body: str | None
    speedup_vs_tutorial: float | None = None


@dataclass(frozen=True)
class InprocessRun(Document):
    KIND: ClassVar[str] = "inprocess"
    SCHEMA_VERSION: ClassVar[int] = 1

    metadata: Metadata
    variants: list[InprocessVariant]


# -- endpoint: python -m bench.endpoint ------------------------------------------------------
@dataclass(frozen=True)
class EndpointWarmRun(Record):
    e2e_p50_us: float
    e2e_p99_us: float
    count: int


@dataclass(frozen=True)
class EndpointWarm(Record):
    statuses: dict[str, int]
    e2e_us: Series
    in_handler_us: Series
    overhead_us: Series
    runs: list[EndpointWarmRun]
    run_e2e_p50_us: TrialStats


@dataclass(frozen=True)
class EndpointCold(Record):
    first_request_us: Series


@dataclass(frozen=True)
class EndpointRun(Document):
    KIND: ClassVar[str] = "endpoint"
    SCHEMA_VERSION: ClassVar[int] = 1

    metadata: Metadata
    warm: EndpointWarm
    cold: EndpointCold | None = None


# -- locust: the Locust harness (bench.load) -------------------------------------------------
@dataclass(frozen=True)
class SecondRow(Record):
    """One wall-clock second (``t``, Unix seconds) of one endpoint, or of the whole run."""

    t: int
    requests: int
    p50_us: float | None
    p99_us: float | None
    errors: int
    cold_starts: int
    ok: int  # the 2xx answers
    ok_p50_us: float | None
    ok_p99_us: float | None
    throttled: int  # the 429 answers


@dataclass(frozen=True)
class StageRow(Record):
    """One scenario stage; its percentiles come from the seconds wholly inside it."""

    name: str
    users: int
    start_unix: float
    end_unix: float
    achieved_rps: float
    full_seconds: int
    requests: int
    p50_us: float | None
    p99_us: float | None
    errors: int
    cold_starts: int
    ok: int
    ok_p50_us: float | None
    ok_p99_us: float | None
    throttled: int


@dataclass(frozen=True)
class ColdStarts(Record):
    """The requests that met a cold start: those with either init figure (or both)."""

    count: int
    e2e_us: Series
    handler_init_us: Series  # the handler's own Server-Timing "init" (module import to ready)
    init_duration_us: Series  # X-Emulator-Init-Duration-Ms: the emulator's Init Duration (REPORT's)


@dataclass(frozen=True)
class LocustEndpoint(Record):
    requests: int
    sent: int
    outcomes: dict[str, int]  # 2xx 4xx 429 5xx other connection_error cancelled
    verify_failures: int
    missed_sends: int
    e2e_us: Series  # from the actual send; open loop: e2e_intended_us from the intended instant
    handler_us: Series
    throttled_us: Series
    cold_starts: ColdStarts
    timeline: list[SecondRow]
    stages: list[StageRow]
    verdict: Gate  # the latency gate
    status: str  # from every gate (bench.results.gate.judge)
    gates: list[Gate]  # errors first, then the schedule (open loop), then latency
    e2e_intended_us: Series | None = None
    schedule_lag_us: Series | None = None


@dataclass(frozen=True)
class Schedule(Record):
    """Open loop: did the generator send each request at its intended instant?"""

    kept: bool
    lag_p99_us: float
    lag_goal_us: float
    missed_sends: int
    warning: str | None


@dataclass(frozen=True)
class LocustVerdict(Record):
    status: str
    series: str
    target_us: float
    percentile: float
    confidence: float
    reasons: list[str]
    gates: list[Gate] = field(default_factory=list)


@dataclass(frozen=True)
class LocustRun(Document):
    KIND: ClassVar[str] = "locust"
    SCHEMA_VERSION: ClassVar[int] = 3

    metadata: Metadata
    partial: bool
    endpoints: dict[str, LocustEndpoint]
    timeline: list[SecondRow]
    stages: list[StageRow]
    schedule: Schedule | None
    locust_totals: dict[str, int]
    distributed: dict | None
    verdict: LocustVerdict
    options: dict = field(default_factory=dict)

    def headline(self, name: str) -> str:
        """The one line that answers "does this endpoint meet its target?", from its gates:
        e.g. ``logitModel FAIL p99 112.8 ms > 1 ms; 564/2,006 failed (28.1%); 8 cold starts``."""
        endpoint = self.endpoints[name]
        by_check = {gate.check: gate for gate in endpoint.gates}
        latency, errors, schedule = by_check.get("latency"), by_check.get("errors"), by_check.get("schedule")
        parts = [f"{name.rsplit('/', 1)[-1]} {endpoint.status}"]
        if latency is not None and latency.samples:
            percentile = latency.details.get("percentile", self.verdict.percentile)
            sign = "≤" if latency.observed <= latency.threshold else ">"
            parts[0] += f" p{percentile:g} {_ms(latency.observed)} {sign} {_ms(latency.threshold)}"
        if errors is not None:
            failed = errors.details.get("failed", 0)
            parts.append(f"{failed:,}/{errors.samples:,} failed ({errors.observed:.1%})")
            if throttles := errors.details.get("lambda_throttles", 0):
                parts[-1] += f", {throttles:,} of them Lambda concurrency throttles (see the emulator's log)"
        cold = endpoint.cold_starts.count
        parts.append(f"{cold:,} cold start{'' if cold == 1 else 's'}")
        if schedule is not None and (schedule.status != "PASS" or schedule.details.get("kept") is False):
            late = schedule.details.get("late_sends", 0)
            lag = _ms(schedule.observed)
            if schedule.status != "PASS":
                parts.append(f"INVALID: the load generator fell behind (lag p99 {lag}, {late:,} sends late)")
            else:
                parts.append(f"generator lag p99 {lag}, {late:,} sends late: not decisive")
        return "; ".join(parts)


def _ms(us: float | None) -> str:
    """µs as a short duration for a headline (µs below 1 ms, else ms)."""
    if us is None:
        return "–"
    return f"{us:,.0f} µs" if us < 1_000 else f"{us / 1_000:,.3g} ms"


__all__ = ["EndpointRun", "InprocessRun", "LatencySummary", "LocustRun"]
