"""Pairing and judging: the runs of each side grouped by :class:`~bench.compare.figures.PairKey`,
alike groups paired, each figure compared over the runs (``bench.compare.stats``), the result a
``compare`` document. No I/O beyond reading the inputs (:func:`read_side`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.compare.figures import COMPARABLE_KINDS, Figure, PairKey, subjects
from bench.compare.stats import (
    FAMILY_CONFIDENCE,
    MIN_RUNS,
    RatioInterval,
    geometric_mean,
    paired_ratio_interval,
    per_interval_confidence,
    ratio_interval,
    words,
)
from bench.results import Document, Gate, Metadata, ResultsError, cpu_idle_phrase, read_document
from bench.results.compare import CompareRun, FigureComparison, PairComparison, Unpaired
from bench.results.gate import FAIL, INVALID, PASS
from bench.results.metadata import resource_model_phrase

METHOD = (
    "ratio of the geometric means of per-run values (new / baseline); interval: Student's "
    "two-sample t-interval with pooled variance on log per-run values (as pyperf's compare_to), "
    "Bonferroni-corrected so that all intervals of the comparison hold together at the family "
    "confidence"
)
METHOD_SIDE_BY_SIDE = (
    "ratio of the geometric means of per-run values (new / baseline); runs measured side by side "
    "(the two functions under the same load run, run i of each side together); interval: "
    "Student's paired t-interval on the per-run log ratios (duet benchmarking), "
    "Bonferroni-corrected so that all intervals of the comparison hold together at the family "
    "confidence"
)
DIRECTIONS = {"MB": ("larger", "smaller"), "USD": ("dearer", "cheaper")}


@dataclass(frozen=True)
class Loaded:
    """One results file of one side."""

    path: Path
    document: Document


def read_side(inputs: list[Path]) -> list[Loaded]:
    """Every results file named, and every ``*.json`` directly in each run folder named; a
    :class:`ResultsError` names the first one that cannot be read."""
    loaded: list[Loaded] = []
    seen: set[Path] = set()
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
            if not files:
                raise ResultsError(f"{path}: a folder with no results files (*.json)")
        else:
            files = [path]
        for file in files:  # a file named twice (a folder and a glob) is one run, not two
            if file.resolve() not in seen:
                seen.add(file.resolve())
                loaded.append(Loaded(file, read_document(file)))
    return loaded


def _group(
    side: list[Loaded], function: str | None = None, label: str = ""
) -> tuple[dict[PairKey, list[tuple[Path, list[Figure]]]], list[Loaded]]:
    """The side's runs by pair key; with ``function``, only that function's, keyed as ``label``
    (side by side: both functions of each run file, under one name so that they pair)."""
    groups: dict[PairKey, list[tuple[Path, list[Figure]]]] = defaultdict(list)
    ignored = []
    for loaded in side:
        found = subjects(loaded.document)
        if not found:
            ignored.append(loaded)
        for key, figures in found:
            if function is not None:
                if key.function != function:
                    continue
                key = PairKey(key.kind, label, key.scenario, key.load)
            groups[key].append((loaded.path, figures))
    return dict(groups), ignored


def side_by_side_label(baseline_function: str, new_function: str) -> str:
    return f"{baseline_function} → {new_function}"


def _same_runs(base_runs: list, new_runs: list, notes: list[str]) -> tuple[list, list]:
    """Side by side: the runs (files) that hold both functions, in the same order on each side."""
    new_by_path = {path: figures for path, figures in new_runs}
    common = [(path, figures) for path, figures in base_runs if path in new_by_path]
    left_out = len(base_runs) + len(new_runs) - 2 * len(common)
    if left_out:
        notes.append(f"{left_out} run(s) held only one of the two functions; not compared")
    return common, [(path, new_by_path[path]) for path, _ in common]


def _why_unpaired(key: PairKey, others: list[PairKey], other_side: str) -> str:
    same_kind = [other for other in others if other.kind == key.kind]
    same_function = [other for other in same_kind if other.function == key.function]
    if not same_kind:
        return f"no {key.kind} run on the {other_side} side"
    if not same_function:
        return f"no {key.kind} run of {key.function} on the {other_side} side"
    differences = []
    for other in same_function:
        if other.scenario != key.scenario:
            differences.append(f"scenario {other.scenario}")
        elif other.load != key.load:
            differences.append(f"load {other.load}")
    return f"the {other_side} side's {key.function} runs differ: " + "; ".join(sorted(set(differences)))


def _machine(metadata: Metadata) -> dict[str, str]:
    return {
        "machine": f"{metadata.host} ({metadata.cpu_count} CPUs, {metadata.memory_gib:g} GiB)",
        "CPU": metadata.cpu_model,
        "resource model": resource_model_phrase(metadata.resource_model),
        "CPU idle regime": cpu_idle_phrase(metadata.cpu_idle),
    }


def metadata_warnings(baseline: list[Loaded], new: list[Loaded]) -> list[str]:
    """One line per aspect of the machine that differs between the sides (or within one)."""
    warnings = []
    seen = {side: [_machine(item.document.metadata) for item in items]  # type: ignore[attr-defined]
            for side, items in (("baseline", baseline), ("new", new))}  # fmt: skip
    for aspect in ("machine", "CPU", "resource model", "CPU idle regime"):
        base = sorted({entry[aspect] for entry in seen["baseline"]})
        other = sorted({entry[aspect] for entry in seen["new"]})
        if base != other:
            warnings.append(
                f"{aspect} differs between the sides: baseline {' | '.join(base)}; new {' | '.join(other)}"
            )
    return warnings


def _values(runs: list[tuple[Path, list[Figure]]]) -> dict[str, list[Figure]]:
    by_name: dict[str, list[Figure]] = defaultdict(list)
    for _path, figures in runs:
        for figure in figures:
            by_name[figure.name].append(figure)
    return by_name


def _figure_names(base_runs, new_runs, notes: list[str]) -> list[str]:
    """Figures present in every run of both sides, in the order the runs list them."""
    base, new = _values(base_runs), _values(new_runs)
    names = list(dict.fromkeys([*base, *new]))
    kept = []
    for name in names:
        missing = (len(base_runs) - len(base.get(name, []))) + (len(new_runs) - len(new.get(name, [])))
        if missing:
            notes.append(
                f"{name}: absent from {missing} of {len(base_runs) + len(new_runs)} runs; not compared"
            )
        else:
            kept.append(name)
    return kept


def _interval_count(pairs: list[tuple[PairKey, list, list, list[str]]]) -> int:
    count = 0
    for _key, base_runs, new_runs, names in pairs:
        if min(len(base_runs), len(new_runs)) < MIN_RUNS:
            continue
        values = _values(base_runs)
        count += sum(1 for name in names if values[name][0].interval)
    return count


def _compare_figure(
    name: str,
    base: list[Figure],
    new: list[Figure],
    confidence: float,
    threshold: float | None,
    subject: str,
    paired: bool = False,
) -> FigureComparison:
    unit = base[0].unit
    base_values, new_values = [f.value for f in base], [f.value for f in new]
    up, down = DIRECTIONS.get(unit, ("slower", "faster"))
    gate_name = f"{subject} {name}"
    if any(value <= 0 for value in [*base_values, *new_values]):
        note = "a run has no positive value: no ratio"
        gate = None
        if threshold is not None and base[0].interval:
            message = f"INVALID: {gate_name}: {note}"
            gate = Gate(gate_name, INVALID, None, 1.0 + threshold, "x", len(base) + len(new), message,
                        check="regression")  # fmt: skip
        return FigureComparison(name, unit, base_values, new_values, 0.0, 0.0, 0.0, None, None, None,
                                None, "no ratio", note, gate)  # fmt: skip
    base_mean, new_mean = geometric_mean(base_values), geometric_mean(new_values)
    if base[0].interval:
        estimate = paired_ratio_interval if paired else ratio_interval
        interval = estimate(base_values, new_values, confidence)
        note = interval.reason
    else:
        interval = RatioInterval(new_mean / base_mean, None, None, None, None)
        note = f"no interval: {name} is one value per run, not a distribution"
    gate = None
    if threshold is not None and base[0].interval:
        gate = _gate(gate_name, interval, threshold, base_mean, new_mean, unit, len(base), len(new))
    return FigureComparison(
        figure=name,
        unit=unit,
        baseline_runs=base_values,
        new_runs=new_values,
        baseline=base_mean,
        new=new_mean,
        ratio=interval.ratio,
        interval_low=interval.low,
        interval_high=interval.high,
        interval_confidence=interval.confidence,
        significant=interval.significant,
        words=words(interval.ratio, interval.significant, up, down),
        note=note,
        gate=gate,
    )


def _gate(name, interval, threshold, base, new, unit, n_base, n_new) -> Gate:
    values = f"baseline {base:,.1f} {unit} ({n_base} runs), new {new:,.1f} {unit} ({n_new} runs)"
    limit = 1.0 + threshold
    if interval.low is None:
        message = f"INVALID: {name}: {values}, ratio {interval.ratio:.3f}x; {interval.reason}"
        return Gate(name, INVALID, None, limit, "x", n_base + n_new, message, check="regression")
    span = f"{interval.confidence:.2%} interval {interval.low:.3f}x-{interval.high:.3f}x"
    if interval.regression(threshold):
        message = f"FAIL: {name} regressed: {values}, ratio {interval.ratio:.3f}x, {span} > {limit:.3f}x"
        status = FAIL
    else:
        message = f"PASS: {name}: {values}, ratio {interval.ratio:.3f}x, {span} not wholly > {limit:.3f}x"
        status = PASS
    details = {
        "ratio": interval.ratio,
        "low": interval.low,
        "high": interval.high,
        "baseline": base,
        "new": new,
    }
    return Gate(name, status, interval.low, limit, "x", n_base + n_new, message, details, check="regression")


def judge(gates: list[Gate]) -> str:
    """FAIL when a figure regressed; else PASS when at least one figure could be judged (the
    ones that could not, say a cold-start profile run once per side, are listed as not judged
    and skipped in the JUnit XML); INVALID when none could."""
    statuses = [gate.status for gate in gates]
    if FAIL in statuses:
        return FAIL
    return PASS if PASS in statuses else INVALID


def compare(
    baseline: list[Loaded],
    new: list[Loaded],
    metadata: Metadata,
    inputs: tuple[list[str], list[str]],
    threshold: float | None = None,
    family_confidence: float = FAMILY_CONFIDENCE,
    side_by_side: tuple[str, str] | None = None,
    only: tuple[str, ...] = (),
) -> CompareRun:
    """The ``compare`` document of two sides. Raises ``ResultsError`` when nothing pairs.

    ``side_by_side`` (baseline function, new function): both sides are the same run files, each
    holding both functions measured together; run i of one is paired with run i of the other.
    ``only``: compare only these figures (``in-handler p50``, …), so that the Bonferroni family
    is the figures a CI job gates on; the others are named in each pair's notes."""
    if side_by_side is None:
        base_groups, base_ignored = _group(baseline)
        new_groups, new_ignored = _group(new)
    else:
        label = side_by_side_label(*side_by_side)
        base_groups, base_ignored = _group(baseline, side_by_side[0], label)
        new_groups, new_ignored = _group(new, side_by_side[1], label)
    unpaired = []
    for side, ignored in (("baseline", base_ignored), ("new", new_ignored)):
        for loaded in ignored:
            kind = loaded.document.KIND
            reason = f"kind {kind} is not compared (only {', '.join(COMPARABLE_KINDS)})"
            unpaired.append(Unpaired(side, kind, "", "", "", [str(loaded.path)], reason))
    for side, groups, others, other_side in (
        ("baseline", base_groups, new_groups, "new"),
        ("new", new_groups, base_groups, "baseline"),
    ):
        for key in sorted(set(groups) - set(others)):
            files = [str(path) for path, _ in groups[key]]
            reason = _why_unpaired(key, list(others), other_side)
            unpaired.append(Unpaired(side, key.kind, key.function, key.scenario, key.load, files, reason))
    planned = []
    seen: set[str] = set()  # every figure the pairs have, to check --figure's names against
    for key in sorted(set(base_groups) & set(new_groups)):
        notes: list[str] = []
        base_runs, new_runs = base_groups[key], new_groups[key]
        if side_by_side is not None:
            base_runs, new_runs = _same_runs(base_runs, new_runs, notes)
            if not base_runs:
                continue
        names = _figure_names(base_runs, new_runs, notes)
        if only:
            seen.update(names)
            if left_out := [name for name in names if name not in only]:
                notes.append(f"not compared (not named by --figure): {', '.join(left_out)}")
            names = [name for name in names if name in only]
            if not names:
                files = [str(path) for path, _ in base_runs]
                reason = f"none of the figures named by --figure ({', '.join(only)})"
                unpaired.append(
                    Unpaired("baseline", key.kind, key.function, key.scenario, key.load, files, reason)
                )
                continue
        planned.append((key, base_runs, new_runs, names, notes))
    if only and (unknown := [name for name in only if name not in seen]):
        known = ", ".join(sorted(seen)) or "none"
        raise ResultsError(
            f"--figure names no figure of these runs: {', '.join(unknown)} (they have: {known})"
        )
    if not planned:
        if side_by_side is not None:
            raise ResultsError(
                f"no run holds both {side_by_side[0]} and {side_by_side[1]} (side by side: each run "
                "file must hold both functions, as one load run against both does)"
            )
        reasons = "; ".join(f"{u.side} {u.kind} {u.function}: {u.reason}" for u in unpaired[:3])
        raise ResultsError(f"nothing to pair between the two sides ({reasons or 'no runs'})")
    k = _interval_count([(key, b, n, names) for key, b, n, names, _ in planned])
    confidence = per_interval_confidence(family_confidence, k)
    pairs = []
    for key, base_runs, new_runs, names, notes in planned:
        base_values, new_values = _values(base_runs), _values(new_runs)
        subject = f"{key.function} ({key.scenario})"
        paired = side_by_side is not None
        figures = [
            _compare_figure(name, base_values[name], new_values[name], confidence, threshold, subject, paired)
            for name in names
        ]
        pairs.append(
            PairComparison(key.kind, key.function, key.scenario, key.load,
                           [str(p) for p, _ in base_runs], [str(p) for p, _ in new_runs], figures, notes)
        )  # fmt: skip
    gates = [figure.gate for pair in pairs for figure in pair.figures if figure.gate is not None]
    status = PASS if threshold is None else judge(gates)
    return CompareRun(
        metadata=metadata,
        baseline_inputs=inputs[0],
        new_inputs=inputs[1],
        method=METHOD if side_by_side is None else METHOD_SIDE_BY_SIDE,
        family_confidence=family_confidence,
        intervals=k,
        min_runs=MIN_RUNS,
        fail_on_regression=threshold,
        pairs=pairs,
        unpaired=unpaired,
        warnings=metadata_warnings(baseline, new),
        status=status,
        side_by_side=side_by_side is not None,
    )
