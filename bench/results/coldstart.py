"""The cold-start kinds: ``coldstart`` (process mode), ``coldstart-endpoint``, ``coldstart-cloudwatch``.

Durations are in µs (``*_us``: medians and spreads over trials as :class:`~bench.stats.TrialStats`,
warm calls as a :class:`~bench.latency.Series` with its HdrHistogram); the raw per-trial
figures of process mode are integer ns (``*_ns``, ``perf_counter_ns``); REPORT lines keep
Lambda's own units (:class:`~bench.results.reportline.ReportLine`: ms, MB), as do sums of
them (``billed_ms_total``) and CloudWatch's timestamps (Unix ms). Memory in MB.

Format history: ``coldstart`` 1 was one loosely-typed kind with three shapes (``mode``:
process, endpoint, cloudwatch) in ms, with a ``verdict`` string and ``misses`` strings;
``coldstart`` 2 is process mode only, in µs, with :class:`~bench.results.gate.Gate` records;
``coldstart`` 3 adds ``skipped``: the variants that do not apply to the model, each with why;
``coldstart-endpoint`` 1 and ``coldstart-cloudwatch`` 1 are the other two modes.
``coldstart`` 4, ``coldstart-endpoint`` 2 and ``coldstart-cloudwatch`` 2 name each init figure by
what it measures (docs/results.md, "Init figures"): process mode's ``init_us`` is
``start_to_ready_us``, the other two kinds' ``init_us`` (the REPORT line's Init Duration) is
``init_duration_us``. The older versions are read with the field renamed: the same figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from bench.latency import Series
from bench.records import Record
from bench.results.core import Document, renamed
from bench.results.gate import Gate
from bench.results.metadata import Metadata
from bench.results.reportline import ReportLine
from bench.stats import TrialStats


# -- coldstart: python -m bench.coldstart (process mode) ------------------------------------
@dataclass(frozen=True)
class PhasesNs(Record):
    """One trial's phases, ns; their sum is at most the trial's ``cold_start_ns`` (the rest is
    the child's own bookkeeping between them)."""

    interpreter: int  # the parent's spawn instant → the child's first statement
    imports: int  # the variant's libraries, each imported apart (their sum)
    handler_code: int  # the handler's own support modules
    load: int  # the handler module's import: read + sha256 check + deserialize the model
    first_invoke: int  # the first handler call


@dataclass(frozen=True)
class PhasesUs(Record):
    """The median of each phase over the trials, µs (see :class:`PhasesNs`)."""

    interpreter: float
    imports: float
    handler_code: float
    load: float
    first_invoke: float


@dataclass(frozen=True)
class ProcessTrial(Record):
    """One fresh interpreter, raw: what the child reported, timed from the parent's spawn instant."""

    cold_start_ns: int  # spawn → the first handler call returned
    phases_ns: PhasesNs
    imports_ns: dict[str, int]  # per library, in import order
    warm_histogram_ns: str  # HdrHistogram encoding of the ``--warm`` calls (ns unit); "" for none
    peak_rss_kb: int  # getrusage ru_maxrss of the child


@dataclass(frozen=True)
class ProcessVariant(Record):
    """One variant over its trials; ``gates``: warm p99 against ``--target-ms`` (none with
    ``--warm 0``) and cold p50 against ``--cold-target-ms``."""

    name: str
    handler: str
    model_format: str
    input_path: str
    cold_start_us: TrialStats  # spawn → first prediction, over the trials
    phases_us: PhasesUs
    imports_us: dict[str, float]  # median per library
    # cold_start_us.p50 - phases_us.first_invoke, a difference of medians: from the spawn until
    # the handler is ready to serve (interpreter, imports, model load); not Lambda's Init Duration
    start_to_ready_us: float
    warm_us: Series  # every trial's warm calls merged (histogram unit ns)
    peak_rss_mb: float
    model_bytes: int | None  # the artifact's size from models/manifest.json
    cost_per_million_usd: float
    cold_speedup_vs_tutorial: float | None  # None when the tutorial variant was not run
    warm_speedup_vs_tutorial: float | None
    gates: list[Gate]
    status: str  # the variant's gates judged (bench.results.gate.judge)


@dataclass(frozen=True)
class SkippedVariant(Record):
    """A variant ``--variants all`` left out: it does not apply to the model (``handler.variants``)."""

    variant: str
    reason: str


@dataclass(frozen=True)
class ColdstartRun(Document):
    KIND: ClassVar[str] = "coldstart"
    SCHEMA_VERSION: ClassVar[int] = 4
    # version 3: ``init_us`` for ``start_to_ready_us``; version 2: that, and no ``skipped`` (none)
    READS_OLDER: ClassVar[tuple[int, ...]] = (2, 3)

    metadata: Metadata
    partial: bool  # interrupted: the complete rounds of trials only
    variants: list[ProcessVariant]
    trials: dict[str, list[ProcessTrial]]  # by variant name, in the order run
    status: str  # every variant's gates judged together: PASS, FAIL or INVALID
    skipped: list[SkippedVariant] = field(default_factory=list)  # in handler.variants.VARIANTS order

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        variants = data.get("variants")
        if isinstance(variants, list):
            data["variants"] = [renamed(variant, "init_us", "start_to_ready_us") for variant in variants]
        return data


# -- coldstart-endpoint: python -m bench.coldstart --function NAME ---------------------------
@dataclass(frozen=True)
class EndpointTrial(Record):
    """One forced cold start: the client's time for the first Invoke and its REPORT line."""

    first_request_ns: int  # just before Invoke → the response payload read (client side)
    report: ReportLine


@dataclass(frozen=True)
class ColdstartEndpointRun(Document):
    """``gates``: warm p99 against ``--target-ms`` (none with ``--warm 0``) and, when
    ``--cold-target-ms`` is given, the first request's p50 against it."""

    KIND: ClassVar[str] = "coldstart-endpoint"
    SCHEMA_VERSION: ClassVar[int] = 2
    READS_OLDER: ClassVar[tuple[int, ...]] = (1,)  # version 1: ``init_us`` for ``init_duration_us``

    metadata: Metadata
    function: str
    lambda_endpoint: str | None  # None: AWS itself
    outcomes: dict[str, int]  # every Invoke (cold and warm): 2xx, function_error, 4xx, 429, 5xx, ...
    first_request_us: TrialStats | None  # client time of the cold Invokes that succeeded
    init_duration_us: TrialStats | None  # REPORT Init Duration, trials that had one; None if none had
    trials_with_init_duration: int
    billed_cold_us: TrialStats | None  # REPORT Billed Duration of the cold Invoke (INIT included)
    warm_us: Series  # client time of the warm Invokes (boto3 included), every answer
    peak_rss_mb: int | None  # the largest REPORT Max Memory Used
    memory_mb: int | None  # REPORT Memory Size
    cost_per_million_usd: float | None
    trials: list[EndpointTrial]
    gates: list[Gate]
    status: str

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        return renamed(data, "init_us", "init_duration_us")


# -- coldstart-cloudwatch: python -m bench.coldstart.cloudwatch ------------------------------
@dataclass(frozen=True)
class LoggedReport(Record):
    """A REPORT line as CloudWatch Logs holds it, with the event's timestamp (Unix ms)."""

    timestamp_ms: int | None
    report: ReportLine


@dataclass(frozen=True)
class ColdstartCloudwatchRun(Document):
    """What AWS measured in a time window; cold = the invocations with an Init Duration."""

    KIND: ClassVar[str] = "coldstart-cloudwatch"
    SCHEMA_VERSION: ClassVar[int] = 2
    READS_OLDER: ClassVar[tuple[int, ...]] = (1,)  # version 1: ``init_us`` for ``init_duration_us``

    metadata: Metadata
    function: str
    start_ms: int  # the window, Unix ms
    end_ms: int
    invocations: int
    cold_invocations: int
    cold_share: float
    init_duration_us: TrialStats | None  # Init Duration of the cold invocations; None if none
    cold_start_us: TrialStats | None  # Init Duration + Duration of the cold invocations
    warm_us: Series  # Duration of the warm invocations (histogram unit µs)
    billed_ms_total: int  # the sum of every Billed Duration
    peak_rss_mb: int  # the largest Max Memory Used
    memory_mb: int
    cost_per_million_usd: float  # at the observed cold share
    reports: list[LoggedReport]

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        return renamed(data, "init_us", "init_duration_us")


__all__ = [
    "ColdstartCloudwatchRun",
    "ColdstartEndpointRun",
    "ColdstartRun",
    "EndpointTrial",
    "LoggedReport",
    "PhasesNs",
    "PhasesUs",
    "ProcessTrial",
    "ProcessVariant",
    "SkippedVariant",
]
