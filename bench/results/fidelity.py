"""The ``fidelity`` kind: ``python -m bench.fidelity``, the emulator held against published AWS data.

``rows`` is the table: each row one AWS figure (its source, the date AWS was measured), the
local figure measured in this run, their ratio and a verdict against a tolerance fixed in
``bench.fidelity.reference`` before measuring (one source, cebert's, added later: see there) (``REPORTED``: shown, not judged, such as the
host factor). The records beside it are what the rows were computed from. Durations in µs.
Format history: ``fidelity`` 1 is the first version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from bench.latency import Series
from bench.records import Record
from bench.results.core import Document
from bench.results.metadata import Metadata

PASS, FAIL, INVALID, REPORTED = "PASS", "FAIL", "INVALID", "REPORTED"
VERDICTS = (PASS, FAIL, INVALID, REPORTED)


@dataclass(frozen=True)
class FidelityRow(Record):
    group: str  # "throttling", "stability", "lambda-perf", "scaling"
    figure: str  # what is compared, e.g. "128 MB: mean iteration wall / unthrottled"
    unit: str  # "x", "%", "ms"
    aws: float
    aws_source: str  # name and url
    aws_date: str  # when AWS was measured
    local: float | None
    ratio: float | None  # local / aws
    tolerance: float | None  # the fraction the ratio may be off 1 (None: not judged)
    verdict: str  # PASS, FAIL, INVALID (with note), REPORTED
    note: str = ""

    @property
    def owner(self) -> str:
        """The source's short name: its GitHub owner (``aws_source`` is "owner/repo ... (url)")."""
        return self.aws_source.split("/")[0]

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")


@dataclass(frozen=True)
class ThrottleRun(Record):
    """One size of the throttling experiment: one invocation looping ``seconds``."""

    memory_mb: int
    seconds: float
    iterations: int
    iteration_us: Series  # each iteration's wall time
    mean_iteration_us: float
    cpu_share: float  # the runtime's CPU time over the loop's wall time
    near_20ms_fraction: float  # iterations within the window of k x 20 ms (k >= 1)
    unthrottled_us: float  # the iteration's CPU time without a quota, measured just before
    wall_ratio: float  # over the geometric mean of the references before and after
    contended: bool  # the emulator flagged the invocation: the host's other work slowed it
    unthrottled_after_us: float | None = None  # the same reference just after (version 1: none)


@dataclass(frozen=True)
class StabilityRound(Record):
    """One round: the same job at 128 and 1,769 MB, ``invocations`` each, interleaved."""

    emulator: int  # 0: the shared emulator's rounds; 1..N: one fresh emulator each
    round: int
    invocations: int
    duration_128_us: float  # mean REPORT Duration
    duration_1769_us: float
    ratio: float
    contended: int  # invocations the emulator flagged as slowed by the host's other work
    reference_us: list[float] = field(default_factory=list)  # the unthrottled iteration before, after


@dataclass(frozen=True)
class ColdStartTrial(Record):
    init_duration_us: float
    duration_us: float
    contended: bool


@dataclass(frozen=True)
class ScalingSize(Record):
    memory_mb: int
    durations_us: list[float]  # warm REPORT Durations, after one warm-up
    mean_us: float
    contended: int


@dataclass(frozen=True)
class FidelityRun(Document):
    KIND: ClassVar[str] = "fidelity"
    SCHEMA_VERSION: ClassVar[int] = 2
    READS_OLDER: ClassVar[tuple[int, ...]] = (1,)  # 1: one reference per size, none per round

    metadata: Metadata
    quick: bool
    python_version: str  # the runtimes' (the emulator's Python), beside lambda-perf's
    rows: list[FidelityRow]
    unthrottled_iteration_us: list[float]  # each baseline run's CPU time per iteration, no quota
    unthrottled_wall_p50_us: list[float]  # and its median iteration wall (other jobs' turns too)
    throttling: list[ThrottleRun]
    stability: list[StabilityRound]
    cold_starts: list[ColdStartTrial]
    scaling: list[ScalingSize]
    within: int  # judged rows that PASS
    judged: int  # rows with a tolerance

    def by_source(self) -> dict[str, tuple[int, int]]:
        """Each source's (rows within tolerance, rows judged), by its GitHub owner, in table order."""
        counts: dict[str, tuple[int, int]] = {}
        for row in self.rows:
            if row.verdict != REPORTED:
                within, judged = counts.get(row.owner, (0, 0))
                counts[row.owner] = (within + (row.verdict == PASS), judged + 1)
        return counts

    @property
    def summary(self) -> str:
        """``fidelity: 22/28 within tolerance (pwrdrvr 11/14, ...); ...`` (the pipeline's line,
        without the path): the count by source too, since the sources were added at different
        times and disagree in places (docs/fidelity.md)."""
        failed = [row.figure for row in self.rows if row.verdict == FAIL]
        invalid = [row.figure for row in self.rows if row.verdict == INVALID]
        sources = ", ".join(f"{owner} {within}/{judged}" for owner, (within, judged) in self.by_source().items())
        parts = [f"fidelity: {self.within}/{self.judged} within tolerance ({sources})"]
        if failed:
            more = f" and {len(failed) - 2} more" if len(failed) > 2 else ""
            parts.append(f"{len(failed)} outside ({'; '.join(failed[:2])}{more})")
        if invalid:
            parts.append(f"{len(invalid)} cannot be judged (the host's other work or speed changes)")
        return "; ".join(parts)
