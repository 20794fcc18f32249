"""Results files as runs: read (with the schema check of :mod:`bench.results`), labelled, grouped.

Pure reading and arithmetic on figures the benchmark already computed: no percentile is
computed here (those come from the documents or from their HdrHistograms), only ratios of
one run's figure to another's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.results import read_results


@dataclass(frozen=True)
class Run:
    """One results file: its label in the report, its kind and the document itself."""

    label: str
    path: Path
    document: dict

    @property
    def kind(self) -> str:
        return self.document["kind"]

    @property
    def metadata(self) -> dict:
        return self.document.get("metadata") or {}


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
    documents = [(Path(path), read_results(Path(path))) for path in paths]
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


def locust_series(document: dict) -> str:
    """The end-to-end series the run was judged on: from the intended send time under open loop."""
    return document.get("verdict", {}).get("series", "e2e_us")


def _figures(run: Run) -> dict[str, dict[str, float]]:
    """Per subject (function or variant), the figures worth comparing between runs."""
    document = run.document
    figures: dict[str, dict[str, float]] = {}
    if run.kind == "locust":
        series = locust_series(document)
        for name, endpoint in document["endpoints"].items():
            e2e = endpoint.get(series) or endpoint["e2e_us"]
            if e2e["count"]:
                figures[name] = {"e2e p50 µs": e2e["p50"], "e2e p99 µs": e2e["p99"]}
                if endpoint["handler_us"]["count"]:
                    figures[name]["handler p50 µs"] = endpoint["handler_us"]["p50"]
    elif run.kind == "coldstart":
        for row in document["variants"]:
            figures[row["name"]] = {
                "cold start p50 ms": row["cold_start_ms"]["p50"],
                "warm p50 µs": row["warm_us"]["p50"],
                "warm p99 µs": row["warm_us"]["p99"],
            }
    elif run.kind == "inprocess":
        for row in document["variants"]:
            figures[row["name"]] = {
                "handler p50 µs": row["handler_us"]["p50"],
                "handler p99 µs": row["handler_us"]["p99"],
            }
    elif run.kind == "endpoint":
        warm = document["warm"]
        figures["endpoint"] = {"e2e p50 µs": warm["e2e_us"]["p50"], "e2e p99 µs": warm["e2e_us"]["p99"]}
    return figures


def ratios(runs: list[Run]) -> list[Ratio]:
    """Each later run of a kind against the first run of that kind, subject by subject."""
    found: list[Ratio] = []
    for kind in dict.fromkeys(run.kind for run in runs):
        group = of_kind(runs, kind)
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


def verdicts(runs: list[Run]) -> list[tuple[str, str, str, list[str]]]:
    """(run label, kind, status, reasons) for every run that carries a verdict."""
    rows = []
    for run in runs:
        verdict = run.document.get("verdict")
        if isinstance(verdict, dict):
            rows.append((run.label, run.kind, verdict["status"], list(verdict.get("reasons", []))))
        elif isinstance(verdict, str):
            misses = [
                f"{row['name']}: {miss}"
                for row in run.document.get("variants", [])
                for miss in row.get("misses", [])
            ]
            rows.append((run.label, run.kind, verdict, misses))
    return rows
