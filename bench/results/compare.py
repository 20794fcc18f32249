"""The ``compare`` kind: ``python -m bench.compare BASELINE… -- NEW…``, is the new version slower?

One :class:`PairComparison` per pair of alike runs (same kind, function, scenario and load),
one :class:`FigureComparison` per figure: each side's per-run values (µs for durations, MB,
USD, as ``unit`` says), their geometric means, the ratio new/baseline and its confidence
interval over the runs (``bench.compare.stats``; ``None`` when there is none, ``note`` says
why), and a :class:`~bench.results.gate.Gate` against ``--fail-on-regression`` when one was
given. Format history: ``compare`` 1 is the first version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from bench.records import Record
from bench.results.core import Document
from bench.results.gate import Gate
from bench.results.metadata import Metadata

if TYPE_CHECKING:
    from bench.results.kinds import LocustRun


@dataclass(frozen=True)
class FigureComparison(Record):
    figure: str  # e.g. "in-handler p50"
    unit: str  # of the values: "µs", "MB", "USD"
    baseline_runs: list[float]  # one value per run, in the order given
    new_runs: list[float]
    baseline: float  # geometric mean of the runs
    new: float
    ratio: float  # new / baseline
    interval_low: float | None  # on the ratio, at interval_confidence; None: no interval
    interval_high: float | None
    interval_confidence: float | None  # per interval, after the Bonferroni correction
    significant: bool | None  # the interval excludes 1; None without an interval
    words: str  # "1.21x slower (significant)"
    note: str  # why there is no interval, or ""
    gate: Gate | None  # --fail-on-regression: FAIL when the whole interval is above 1 + threshold


@dataclass(frozen=True)
class PairComparison(Record):
    kind: str
    function: str
    scenario: str
    load: str
    baseline_files: list[str]
    new_files: list[str]
    figures: list[FigureComparison]
    notes: list[str]  # figures left out (absent from some runs) and why


@dataclass(frozen=True)
class Unpaired(Record):
    """Runs of one side that found no alike run on the other, and why."""

    side: str  # "baseline" or "new"
    kind: str
    function: str
    scenario: str
    load: str
    files: list[str]
    reason: str


@dataclass(frozen=True)
class CompareRun(Document):
    KIND: ClassVar[str] = "compare"
    SCHEMA_VERSION: ClassVar[int] = 2
    READS_OLDER: ClassVar[tuple[int, ...]] = (1,)  # version 1: no ``side_by_side`` (read as False)

    metadata: Metadata
    baseline_inputs: list[str]  # files and run folders as given
    new_inputs: list[str]
    method: str  # the interval's method and the multiple-comparison correction, in words
    family_confidence: float  # every interval of the comparison covers its ratio at least this often
    intervals: int  # how many intervals share it (Bonferroni's k)
    min_runs: int  # per side, for an interval
    fail_on_regression: float | None  # 0.10 for 10 %; None: no gate
    pairs: list[PairComparison]
    unpaired: list[Unpaired]
    warnings: list[str]  # the sides differ in machine, CPU, resource model or CPU idle regime
    status: str  # PASS, FAIL (a regression), INVALID (cannot judge); PASS without a gate
    side_by_side: bool = False  # True: run i of each side measured together, paired intervals

    def figure_confidence(self) -> float:
        """Each interval's own confidence: Bonferroni's ``1 - (1 - family) / k``."""
        return 1.0 - (1.0 - self.family_confidence) / max(self.intervals, 1)


def _locust_load(document: LocustRun) -> str:
    options = document.metadata.options
    run_time = options.get("run_time")
    if options.get("open_loop"):
        load = f"open loop {options.get('rate', 0):g} req/s {options.get('arrival_dist', '')}".rstrip()
    else:
        load = f"closed loop {options.get('users')} users"
    if options.get("scenario") not in (None, "steady") and document.stages:
        users = [stage.users for stage in document.stages]
        load += f", {len(users)} stages of {min(users)}-{max(users)} users"
    return load + (f", {run_time} s" if run_time else "")


def run_conditions(document: Document) -> tuple[str, str]:
    """(scenario, load) of a run: two runs of the same kind and function are alike, and may be
    compared as before/after, only when these agree too (``bench.compare`` and the report's
    comparison both pair by them). A step run is not a before/after of a steady one."""
    options = document.metadata.options  # type: ignore[attr-defined]
    kind = document.KIND
    if kind == "locust":
        return str(options.get("scenario") or "steady"), _locust_load(document)  # type: ignore[arg-type]
    if kind == "powertune":
        return (
            "power tuning",
            f"{options.get('warm', '?')} warm invocations, {options.get('cold_trials', '?')} cold",
        )
    if kind == "coldstart":
        return "fresh process", f"{options.get('memory_mb')} MB"
    if kind == "coldstart-endpoint":
        memory = getattr(document, "memory_mb", None)
        return "forced cold starts", f"{memory} MB" if memory else "memory size not reported"
    if kind == "endpoint":
        return "warm, one connection", "sequential requests"
    if kind == "inprocess":
        return "in process", "sequential calls"
    return kind, ""


__all__ = ["CompareRun", "FigureComparison", "PairComparison", "Unpaired", "run_conditions"]
