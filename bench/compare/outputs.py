"""A ``compare`` document as the console reads it, as JUnit XML for CI, as a Markdown table for a
pull-request comment. Formatting only: every figure and verdict is already in the document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bench.results.compare import CompareRun, FigureComparison, PairComparison


def value(amount: float, unit: str) -> str:
    """A figure in its unit: µs below 1 ms, else ms; MB; USD."""
    if unit == "µs":
        if amount < 1_000:
            return f"{amount:,.0f} µs"
        return f"{amount / 1_000:,.{2 if amount < 10_000 else 1 if amount < 100_000 else 0}f} ms"
    if unit == "USD":
        return f"${amount:,.4f}"
    return f"{amount:,.1f} {unit}"


def interval(figure: FigureComparison) -> str:
    if figure.interval_low is None or figure.interval_high is None:
        return "no interval"
    return f"{figure.interval_low:.3f}x–{figure.interval_high:.3f}x"


def pair_title(pair: PairComparison) -> str:
    runs = f"{len(pair.baseline_files)} vs {len(pair.new_files)} runs"
    return f"{pair.kind} {pair.function} ({pair.scenario}; {pair.load}; {runs})"


def header(document: CompareRun) -> str:
    if document.intervals:
        each = document.figure_confidence()
        return (
            f"intervals: {document.family_confidence:.0%} for all {document.intervals} together "
            f"(Bonferroni: each at {each:.2%}), "
            + ("paired run by run (side by side)" if document.side_by_side else "over the runs of each side")
        )
    return f"no intervals: a significance claim needs at least {document.min_runs} runs per side"


def console(document: CompareRun) -> str:
    lines = [header(document)]
    for pair in document.pairs:
        lines.append("")
        lines.append(pair_title(pair))
        if few := next((f.note for f in pair.figures if "runs per side" in f.note), None):
            lines.append(f"  ratios only: {few}")
        width = max(len(f.figure) for f in pair.figures) if pair.figures else 10
        for figure in pair.figures:
            if not figure.ratio:
                lines.append(f"  {figure.figure:<{width}}  {figure.note}")
                continue
            lines.append(
                f"  {figure.figure:<{width}}  {value(figure.baseline, figure.unit):>10} → "
                f"{value(figure.new, figure.unit):>10}  {figure.ratio:6.3f}x  [{interval(figure)}]  "
                f"{figure.words}"
            )
        lines += [f"  note: {note}" for note in pair.notes]
    if document.unpaired:
        lines += ["", "not paired:"]
        for item in document.unpaired:
            what = (
                f"{item.kind} {item.function} ({item.scenario}; {item.load})" if item.function else item.kind
            )
            lines.append(f"  {item.side}: {what}: {item.reason} [{', '.join(item.files)}]")
    if document.warnings:
        lines += ["", "warnings:"] + [f"  {warning}" for warning in document.warnings]
    if document.fail_on_regression is not None:
        gates = [f.gate for p in document.pairs for f in p.figures if f.gate is not None]
        failed = [gate.message for gate in gates if gate.status == "FAIL"]
        limit = 1 + document.fail_on_regression
        lines += ["", f"regression gate (new/baseline interval wholly above {limit:.3f}x): {document.status}"]
        lines += [f"  {message}" for message in failed]
        unjudged = [g for g in gates if g.status == "INVALID"]
        if unjudged:
            label = "cannot judge" if document.status == "INVALID" else "not judged"
            reasons = sorted({gate.message.split("; ", 1)[-1] for gate in unjudged})
            lines.append(f"  {label}: {len(unjudged)} figure(s): " + "; ".join(reasons))
        elif not gates:
            lines.append("  cannot judge: no figure with an interval")
    return "\n".join(lines)


def junit(document: CompareRun) -> bytes:
    """A test case per pair and figure: a regression is a ``<failure>`` whose message names the
    figure, both values and the interval; a figure that cannot be judged is ``<skipped>``."""
    suite = ET.Element("testsuite", name="bench.compare")
    tests = failures = skipped = 0
    for pair in document.pairs:
        for figure in pair.figures:
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=pair_title(pair), name=figure.figure)
            gate = figure.gate
            summary = (
                f"{figure.figure}: baseline {value(figure.baseline, figure.unit)}, new "
                f"{value(figure.new, figure.unit)}, ratio {figure.ratio:.3f}x, interval {interval(figure)}: "
                f"{figure.words}"
            )
            if gate is not None and gate.status == "FAIL":
                failures += 1
                ET.SubElement(case, "failure", message=gate.message, type="regression").text = summary
            elif (gate is None and figure.interval_low is None) or (
                gate is not None and gate.status == "INVALID"
            ):
                skipped += 1
                ET.SubElement(case, "skipped", message=figure.note or "no interval")
            ET.SubElement(case, "system-out").text = summary
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(document: CompareRun) -> str:
    """A table for a pull-request comment, then what did not pair and the warnings."""
    lines = [f"**bench.compare**: {_cell(header(document))}", ""]
    lines += [
        "| pair | figure | baseline | new | ratio | interval | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for pair in document.pairs:
        for figure in pair.figures:
            mark = " ❌" if figure.gate is not None and figure.gate.status == "FAIL" else ""
            cells = [
                _cell(pair_title(pair)),
                _cell(figure.figure),
                value(figure.baseline, figure.unit),
                value(figure.new, figure.unit),
                f"{figure.ratio:.3f}x",
                interval(figure),
                _cell(figure.words) + mark,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    if document.unpaired:
        lines += ["", "Not paired:", ""]
        lines += [f"- {item.side}: {_cell(item.kind)} {_cell(item.function)}: {_cell(item.reason)}"
                  for item in document.unpaired]  # fmt: skip
    if document.warnings:
        lines += ["", "Warnings:", ""] + [f"- {_cell(warning)}" for warning in document.warnings]
    if document.fail_on_regression is not None:
        lines += ["", f"Regression gate (> {document.fail_on_regression:.0%}): **{document.status}**"]
    return "\n".join(lines) + "\n"
