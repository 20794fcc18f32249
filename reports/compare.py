"""The ``compare`` kind in the report: per pair of alike runs, each figure's two values, the
ratio, its interval over the runs and the verdict in words, then what did not pair and why.

Every figure and verdict is the document's own (``python -m bench.compare`` computed them).
"""

from __future__ import annotations

from bench.results import CompareRun
from bench.results.compare import FigureComparison
from reports.runs import Run, of_kind

HEADERS = ["figure", "baseline", "new", "ratio", "interval", "verdict", "gate"]


def _value(amount: float, unit: str) -> str:
    from reports.page import _us

    if unit == "µs":
        return f"{_us(amount)} µs"
    if unit == "USD":
        return f"${amount:,.4f}"
    return f"{amount:,.1f} {unit}"


def _row(figure: FigureComparison) -> list[str]:
    from reports.page import _e, _status

    interval = (
        "no interval"
        if figure.interval_low is None or figure.interval_high is None
        else f"{figure.interval_low:.3f}×–{figure.interval_high:.3f}×"
    )
    gate = _status(figure.gate.status) if figure.gate is not None else "–"
    return [
        _e(figure.figure),
        _e(_value(figure.baseline, figure.unit)),
        _e(_value(figure.new, figure.unit)),
        f"{figure.ratio:.3f}×",
        _e(interval),
        _e(figure.words) + (f'<br><span class="note">{_e(figure.note)}</span>' if figure.note else ""),
        gate,
    ]


def compare_section(runs: list[Run]) -> str:
    from reports.page import _e, _status, _table

    parts = []
    for run in of_kind(runs, "compare"):
        document: CompareRun = run.document  # type: ignore[assignment]
        if document.intervals:
            over = (
                "paired run by run (side by side)" if document.side_by_side else "over the runs of each side"
            )
            claim = (
                f"intervals {over}, {document.family_confidence:.0%} for all "
                f"{document.intervals} together (Bonferroni: each at {document.figure_confidence():.2%})"
            )
        else:
            claim = f"ratios only: a significance claim needs at least {document.min_runs} runs per side"
        gate = (
            f"; regression gate &gt; {document.fail_on_regression:.0%}: {_status(document.status)}"
            if document.fail_on_regression is not None
            else ""
        )
        parts.append(f'<h3>{_e(run.label)}</h3><p class="note">{_e(claim)}{gate}. {_e(document.method)}.</p>')
        for pair in document.pairs:
            title = (
                f"{pair.kind} {pair.function} ({pair.scenario}; {pair.load}; "
                f"{len(pair.baseline_files)} vs {len(pair.new_files)} runs)"
            )
            parts.append(f"<h4>{_e(title)}</h4>" + _table(HEADERS, [_row(f) for f in pair.figures], 1))
            parts += [f'<p class="note">{_e(note)}</p>' for note in pair.notes]
        if document.unpaired:
            items = "".join(
                f"<li>{_e(item.side)}: {_e(item.kind)} {_e(item.function)} {_e(item.scenario)}: "
                f"{_e(item.reason)}</li>"
                for item in document.unpaired
            )
            parts.append(f"<p>Not paired:</p><ul>{items}</ul>")
        if document.warnings:
            parts.append(
                "<p>Warnings:</p><ul>" + "".join(f"<li>{_e(w)}</li>" for w in document.warnings) + "</ul>"
            )
    return "<h2>Is the new version slower? (bench.compare)</h2>" + "".join(parts) if parts else ""
