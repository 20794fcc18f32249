"""The ``emulator-cost`` kind in the report: CPU and wall time per request, emulator, floor and bare.

Every figure is one the results already hold (``bench.emulator_cost`` computed the per-request
CPU and the ratios; the percentiles come from its HdrHistograms).
"""

from __future__ import annotations

from bench.results import EmulatorCostRun
from bench.results.emulatorcost import TargetCost
from reports.runs import Run, of_kind

HEADERS = ["target", "requests", "server CPU µs", "environment CPU µs", "client CPU µs", "p50 µs", "p99 µs"]


def _row(cost: TargetCost) -> list[str]:
    from reports.page import _e, _us

    return [
        _e(cost.target),
        f"{cost.requests:,}",
        _us(cost.server_cpu_us_per_request),
        _us(cost.environment_cpu_us_per_request),
        _us(cost.client_cpu_us_per_request),
        _us(cost.e2e_us.p50),
        _us(cost.e2e_us.p99),
    ]


def emulator_cost_section(runs: list[Run]) -> str:
    """Per run: the three targets per request, the ratios against the goals and the floor's."""
    from reports.page import _e, _table

    parts = []
    for run in of_kind(runs, "emulator-cost"):
        document: EmulatorCostRun = run.document
        parts.append(
            f"<h3>{_e(run.label)}: {_e(document.function)} at {document.memory_mb:,} MB, "
            f"{document.rounds} rounds of {document.requests_per_round:,} per target</h3>"
            + _table(
                HEADERS, [_row(document.emulator), _row(document.floor), _row(document.bare)], text_columns=1
            )
            + f'<p class="note">gateway CPU / bare server CPU {document.gateway_cpu_ratio:.2f}× '
            f"(goal ≤ {document.gateway_cpu_ratio_goal:g}×); e2e p50 / bare p50 "
            f"{document.e2e_p50_ratio:.2f}× (goal ≤ {document.e2e_p50_ratio_goal:g}×)</p>"
            + f'<p class="note">floor CPU / bare server CPU {document.floor_cpu_ratio:.2f}× '
            "(bench.truth.proxy: the least three aiohttp exchanges cost here); "
            f"floor e2e p50 / bare p50 {document.floor_e2e_p50_ratio:.2f}×; emulator / floor: "
            f"CPU {document.over_floor_cpu:.2f}×, e2e p50 {document.over_floor_e2e_p50:.2f}× "
            "(the emulator's own work above the three exchanges)</p>"
        )
    return "<h2>The emulator's own cost</h2>" + "".join(parts) if parts else ""
