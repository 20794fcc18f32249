"""Results files as runs: read (with the schema check of :mod:`bench.results`), labelled, grouped.

Pure reading and arithmetic on figures the benchmark already computed: no percentile is
computed here (those come from the documents or from their HdrHistograms), only ratios of
one run's figure to another's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.results import (
    ColdstartEndpointRun,
    ColdstartRun,
    CompareRun,
    Document,
    EmulatorCostRun,
    EndpointRun,
    Gate,
    InprocessRun,
    LocustRun,
    Metadata,
    PowertuneRun,
    read_document,
)
from bench.results.compare import run_conditions


@dataclass(frozen=True)
class Run:
    """One results file: its label in the report, its kind and the typed document itself."""

    label: str
    path: Path
    document: Document

    @property
    def kind(self) -> str:
        return self.document.KIND

    @property
    def metadata(self) -> Metadata:
        return self.document.metadata  # type: ignore[attr-defined]

    @property
    def options(self) -> dict:
        return self.metadata.options


@dataclass(frozen=True)
class Ratio:
    """``after`` / ``before`` for one figure; below 1 is faster (or cheaper)."""

    subject: str
    figure: str
    before_label: str
    after_label: str
    before: float
    after: float

    @property
    def value(self) -> float | None:
        return self.after / self.before if self.before else None


def load_runs(paths: list[Path]) -> list[Run]:
    """Read every file; a :class:`bench.results.ResultsError` names the first bad one."""
    documents = [(Path(path), read_document(Path(path))) for path in paths]
    stems = Counter(path.stem for path, _ in documents)
    runs = []
    for path, document in documents:
        label = path.stem if stems[path.stem] == 1 else f"{path.parent.name}/{path.stem}"
        runs.append(Run(label=label, path=path, document=document))
    labels = Counter(run.label for run in runs)
    if any(count > 1 for count in labels.values()):  # the same file given twice
        runs = [Run(f"{run.label} #{index + 1}", run.path, run.document) for index, run in enumerate(runs)]
    return runs


def of_kind(runs: list[Run], kind: str) -> list[Run]:
    return [run for run in runs if run.kind == kind]


def locust_series(document: LocustRun) -> str:
    """The end-to-end series the run was judged on: from the intended send time under open loop."""
    return document.verdict.series


def locust_e2e(document: LocustRun, name: str):
    """The end-to-end Series of one endpoint that the run was judged on."""
    endpoint = document.endpoints[name]
    if locust_series(document) == "e2e_intended_us" and endpoint.e2e_intended_us is not None:
        return endpoint.e2e_intended_us
    return endpoint.e2e_us


def _figures(run: Run) -> dict[str, dict[str, float]]:
    """Per subject (function or variant), the figures worth comparing between runs."""
    document = run.document
    figures: dict[str, dict[str, float]] = {}
    if isinstance(document, LocustRun):
        for name, endpoint in document.endpoints.items():
            e2e = locust_e2e(document, name)
            if e2e.count:
                figures[name] = {"e2e p50 µs": e2e.p50, "e2e p99 µs": e2e.p99}
                if endpoint.handler_us.count:
                    figures[name]["handler p50 µs"] = endpoint.handler_us.p50
    elif isinstance(document, ColdstartRun):
        for variant in document.variants:
            figures[variant.name] = {
                "spawn to first call p50 µs": variant.cold_start_us.p50,
                "start to ready µs": variant.start_to_ready_us,
                "warm p50 µs": variant.warm_us.p50,
                "warm p99 µs": variant.warm_us.p99,
            }
    elif isinstance(document, ColdstartEndpointRun):
        figures[document.function] = {
            "first request p50 µs": document.first_request_us.p50,
            "warm p50 µs": document.warm_us.p50,
        }
        if document.init_duration_us is not None:
            figures[document.function]["Init Duration p50 µs"] = document.init_duration_us.p50
    elif isinstance(document, InprocessRun):
        for variant in document.variants:
            figures[variant.name] = {
                "handler p50 µs": variant.handler_us.p50,
                "handler p99 µs": variant.handler_us.p99,
            }
    elif isinstance(document, EndpointRun):
        warm = document.warm
        figures["endpoint"] = {"e2e p50 µs": warm.e2e_us.p50, "e2e p99 µs": warm.e2e_us.p99}
    elif isinstance(document, EmulatorCostRun):
        for cost in (document.emulator, document.floor, document.bare):
            figures[cost.target] = {
                "server CPU µs": cost.server_cpu_us_per_request,
                "e2e p50 µs": cost.e2e_us.p50,
            }
    elif isinstance(document, PowertuneRun):
        for sweep in document.functions:
            for size in (size for size in sweep.sizes if size.warm_duration_us.count):
                warm = size.warm_duration_us
                subject = f"{sweep.function} {size.memory_mb} MB"
                figures[subject] = {"warm p50 µs": warm.p50, "warm p99 µs": warm.p99}
    return figures


def ratios(runs: list[Run]) -> list[Ratio]:
    """Each later run against the first run given that is alike: same kind, function (subject),
    scenario and load (:func:`bench.results.compare.run_conditions`). A step run is never the
    "after" of a steady one; runs with no alike earlier run are not compared."""
    found: list[Ratio] = []
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.kind, *run_conditions(run.document)), []).append(run)
    for group in groups.values():
        if len(group) < 2:
            continue
        baseline = group[0]
        base_figures = _figures(baseline)
        for other in group[1:]:
            for subject, figures in _figures(other).items():
                for figure, after in figures.items():
                    before = base_figures.get(subject, {}).get(figure)
                    if before is not None:
                        found.append(Ratio(subject, figure, baseline.label, other.label, before, after))
    return found


def run_gates(document: Document) -> list[Gate]:
    """Every gate a document carries, in the order it judged them."""
    if isinstance(document, LocustRun):
        return list(document.verdict.gates)
    if isinstance(document, CompareRun):
        return [figure.gate for pair in document.pairs for figure in pair.figures if figure.gate is not None]
    if isinstance(document, ColdstartRun):
        return [gate for variant in document.variants for gate in variant.gates]
    if isinstance(document, PowertuneRun):  # the gates of the size each function's strategy picked
        gates = []
        for sweep in document.functions:
            chosen = next(r.memory_mb for r in sweep.recommendations if r.strategy == document.strategy)
            gates += [gate for size in sweep.sizes if size.memory_mb == chosen for gate in size.gates]
        return gates
    return list(getattr(document, "gates", []))


def verdicts(runs: list[Run]) -> list[tuple[str, str, str, list[str]]]:
    """(run label, kind, status, reasons) for every run that carries a verdict: the status the
    run recorded, and its gates' messages, the ones that did not pass first."""
    rows = []
    for run in runs:
        document = run.document
        if isinstance(document, LocustRun):
            status = document.verdict.status
        elif isinstance(document, PowertuneRun) and not document.functions:
            continue  # a calibration alone: nothing judged
        elif hasattr(document, "status"):
            status = document.status
        else:
            continue
        gates = run_gates(document)
        reasons = [gate.message for gate in gates if not gate.passed] + [
            gate.message for gate in gates if gate.passed
        ]
        if isinstance(document, PowertuneRun):  # the pick first (with its reason when none passes)
            reasons = [
                f"{sweep.function}: {pick.message}"
                for sweep in document.functions
                for pick in sweep.recommendations
                if pick.strategy == document.strategy
            ] + reasons
        rows.append((run.label, run.kind, status, reasons))
    return rows
