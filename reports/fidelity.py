"""The ``fidelity`` kind in the report: each AWS figure beside the emulator's, with its verdict.

Every figure is one the results hold (``bench.fidelity`` computed the ratios and verdicts);
here they are only formatted, with each row's source and the date AWS was measured.
"""

from __future__ import annotations

from bench.results.fidelity import FidelityRow, FidelityRun
from reports.runs import Run, of_kind

HEADERS = ["figure", "AWS", "here", "here / AWS", "tolerance", "verdict", "AWS source (measured)", "note"]


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return text + ("×" if unit == "x" else f" {unit}")


def _row(row: FidelityRow) -> list[str]:
    from reports.page import _e, _status

    tolerance = f"±{row.tolerance:.0%}" if row.tolerance is not None else "–"
    ratio = f"{row.ratio:.2f}" if row.ratio is not None else "–"
    return [
        _e(row.figure),
        _number(row.aws, row.unit),
        _number(row.local, row.unit),
        ratio,
        tolerance,
        _status(row.verdict),
        f'<span class="text">{_e(row.aws_source)} ({_e(row.aws_date)})</span>',
        f'<span class="text">{_e(row.note)}</span>',
    ]


def fidelity_section(runs: list[Run]) -> str:
    """Per run: the table, its summary line and the load the host was under."""
    from reports.page import _e, _table

    parts = []
    for run in of_kind(runs, "fidelity"):
        document: FidelityRun = run.document
        options = document.metadata.options
        load = f"load average {options.get('loadavg_start', '?')} → {options.get('loadavg_end', '?')}"
        parts.append(
            f"<h3>{_e(run.label)}{' (--quick)' if document.quick else ''}: "
            f"{_e(document.summary)}</h3>"
            + _table(HEADERS, [_row(row) for row in document.rows], text_columns=1)
            + f'<p class="note">Python {_e(document.python_version)} here; {_e(load)}; '
            "INVALID: the emulator flagged the measurement as slowed by the host's other work. "
            "What each row predicts about AWS: docs/fidelity.md.</p>"
        )
    return (
        "<h2>Fidelity: the emulator against published AWS measurements</h2>" + "".join(parts) if parts else ""
    )
