"""The ``powertune`` kind in the report: Power Tuning's chart, the table and the recommendation.

Power Tuning's visualisation draws, against the memory sizes it tried, its average time on one
axis and its cost on a second. Here the time axis (log, µs) holds the warm Duration as a band
from p50 to p99 (its p50 and p99 as lines) and the cold start (Init Duration + the first
Duration) as its p50 with the p90 above it, the target as a line; the second axis holds the
cost per million predictions at the run's cold fraction. A size that ran out of memory is
marked "does not fit". Everything drawn or listed is a figure the results already hold.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from bench.results import PowertuneRun
from bench.results.powertune import FunctionSweep, SizeResult
from reports.runs import Run, of_kind


def _panels(runs: list[Run]) -> list[tuple[str, PowertuneRun, FunctionSweep]]:
    many = len(of_kind(runs, "powertune")) > 1
    return [
        (f"{run.label}: {sweep.function}" if many else sweep.function, run.document, sweep)
        for run in of_kind(runs, "powertune")
        for sweep in run.document.functions
        if sweep.sizes
    ]


def _chosen(document: PowertuneRun, sweep: FunctionSweep) -> int | None:
    return next(r.memory_mb for r in sweep.recommendations if r.strategy == document.strategy)


def powertune_chart(runs: list[Run], path: Path) -> Path | None:
    """Time (warm p50–p99 band, cold p50/p90) and cost against memory size, one panel per function."""
    from reports.charts import _save, _us_axis

    panels = _panels(runs)
    if not panels:
        return None
    figure = Figure(figsize=(12, 0.6 + 4.2 * len(panels)))
    for axes, (title, document, sweep) in zip(figure.subplots(len(panels), 1, squeeze=False)[:, 0], panels,
                                                strict=True):  # fmt: skip
        positions = list(range(len(sweep.sizes)))
        pairs = list(zip(positions, sweep.sizes, strict=True))
        fits = [(x, size) for x, size in pairs if size.warm_duration_us.count]
        xs = [x for x, _ in fits]
        p50 = [size.warm_duration_us.p50 for _, size in fits]
        p99 = [size.warm_duration_us.p99 for _, size in fits]
        axes.fill_between(xs, p50, p99, color="C0", alpha=0.25, label="warm Duration p50–p99")
        axes.plot(xs, p50, "o-", color="C0", label="warm p50")
        axes.plot(xs, p99, "s--", color="C0", label="warm p99")
        cold = [(x, size.cold_start_us) for x, size in zip(positions, sweep.sizes, strict=True)]
        cold = [(x, series) for x, series in cold if series is not None and series.count]
        if cold:
            axes.errorbar(
                [x for x, _ in cold],
                [series.p50 for _, series in cold],
                yerr=[[0] * len(cold), [series.p90 - series.p50 for _, series in cold]],
                fmt="D",
                color="C3",
                capsize=4,
                label="cold start p50 (bar: p90)",
            )
        axes.axhline(document.target_us, color="black", linestyle=":", linewidth=1,
                     label=f"target p{document.percentile:g} {document.target_us:,.0f} µs")  # fmt: skip
        for x, size in zip(positions, sweep.sizes, strict=True):
            if not size.fits:
                axes.annotate("does not fit\n(out of memory)", (x, 0.05), xycoords=("data", "axes fraction"),
                              ha="center", fontsize=8, color="C3")  # fmt: skip
        chosen = _chosen(document, sweep)
        if chosen is not None:
            x = next(x for x, size in zip(positions, sweep.sizes, strict=True) if size.memory_mb == chosen)
            axes.axvline(x, color="C2", linewidth=6, alpha=0.2, label=f"{document.strategy}: {chosen} MB")
        axes.set_yscale("log")
        _us_axis(axes.yaxis)
        axes.set_ylabel("time (µs, log scale)")
        axes.set_xticks(positions, [_size_label(size) for size in sweep.sizes])
        axes.set_xlim(-0.5, len(positions) - 0.5)
        axes.set_xlabel("memory size (MB, CPU share)")
        axes.grid(True, which="both", alpha=0.3)
        cost_axes = axes.twinx()
        priced = [(x, size) for x, size in fits if size.cost_per_million_usd]
        cost_axes.plot(
            [x for x, _ in priced],
            [size.cost_per_million_usd[sweep.architecture] for _, size in priced],
            "^-",
            color="C1",
            label=f"cost per million ({sweep.architecture}, {document.cold_fraction:.0%} cold)",
        )
        cost_axes.set_ylabel("USD per million predictions")
        cost_axes.set_ylim(bottom=0)
        handles, labels = axes.get_legend_handles_labels()
        more, more_labels = cost_axes.get_legend_handles_labels()
        axes.legend(handles + more, labels + more_labels, fontsize=7, loc="best")
        axes.set_title(f"{title}: time and cost against memory size")
    return _save(figure, path)


def _size_label(size: SizeResult) -> str:
    share = f"\n{size.cpu_share_vcpus:.2f} vCPU" if size.cpu_share_vcpus is not None else ""
    return f"{size.memory_mb:,}{share}"


def _ms(us: float | None) -> str:
    return "–" if us is None else f"{us / 1_000:,.1f}"


def _row(size: SizeResult, architecture: str) -> list[str]:
    from reports.page import _e, _status, _us

    warm, cold = size.warm_duration_us, size.cold_start_us
    measured = warm.count > 0
    costs = size.cost_per_million_usd
    return [
        _e(f"{size.memory_mb:,}"),
        "–" if size.cpu_share_vcpus is None else f"{size.cpu_share_vcpus:.3f}",
        "yes" if size.fits else f"<b>does not fit</b> ({_e(size.error_type)})",
        _ms(cold.p50 if cold else None),
        _ms(cold.p90 if cold else None),
        f"{len(size.cold_trials)} of {size.cold_trials_run or len(size.cold_trials)}",
        _ms(size.init_duration_us.p50 if size.init_duration_us else None),
        _ms(size.init_cpu_us.p50 if size.init_cpu_us else None),
        *(_us(getattr(warm, q)) if measured else "–" for q in ("p50", "p90", "p99")),
        *_floor(size),
        f"{warm.count:,}",
        "–" if size.warm_billed_ms_mean is None else f"{size.warm_billed_ms_mean:,.2f}",
        _e(size.max_memory_used_mb if size.max_memory_used_mb is not None else "–"),
        f"{costs[architecture]:.4f}" if costs else "–",
        f"{costs['arm64']:.4f}" if costs and architecture != "arm64" else "–",
        f"{size.contended_invocations:,}",
        _status(size.status),
    ]


def _floor(size: SizeResult) -> list[str]:
    """The floor beside the Duration: the no-op's p50 and percentile, and its rounds' spread."""
    from reports.page import _us

    floor = size.floor
    if floor is None:
        return ["–", "–", "–"]
    merged = floor.warm_duration_us
    rounds = f"{_us(min(floor.rounds_us))}–{_us(max(floor.rounds_us))}"
    return [_us(merged.p50), _us(merged.decode().percentile_us(floor.percentile)), rounds]


HEADERS = ["memory MB", "vCPU", "fits", "cold p50 ms", "cold p90 ms", "cold trials with Init Duration"]
HEADERS += [
    "Init Duration p50 ms",
    "init CPU p50 ms",
    "warm p50 µs",
    "warm p90 µs",
    "warm p99 µs",
    "floor p50 µs",
]
HEADERS += ["floor p-target µs", "floor rounds µs", "warm calls", "billed ms (mean)", "max memory MB"]
HEADERS += ["$ per million", "$ per million on arm64", "contended", "verdict"]
CALIBRATION_HEADERS = [
    "function",
    "memory MB",
    "cold starts",
    "Init Duration mean ms",
    "Init Duration p50 ms",
]
CALIBRATION_HEADERS += ["lambda-perf mean ms", "lambda-perf range ms", "reference", "ratio"]


def powertune_section(runs: list[Run]) -> str:
    """Per run and function: the recommendation, the table, Power Tuning's own pick; the calibration."""
    from reports.page import _e, _table

    parts = []
    for run in of_kind(runs, "powertune"):
        document: PowertuneRun = run.document
        where = document.lambda_endpoint or "AWS"
        parts.append(
            f'<p class="note">{_e(run.label)}: through {_e(where)}; target warm Duration '
            f"p{document.percentile:g} ≤ {document.target_us:,.0f} µs; {document.cold_fraction:.1%} "
            f"of invocations cold; strategy {_e(document.strategy)} (balanced weight "
            f"{document.balanced_weight:g})"
            + (" — <b>partial run</b>" if document.partial else "")
            + (
                f"; the floor beside each size: {_e(document.floor_function)} (a no-op), its warm Duration "
                "in the same run, p50, the target percentile over every round, and the range of that "
                "percentile over its rounds"
                if document.floor_function
                else "; no floor measured"
            )
            + "</p>"
        )
        for sweep in document.functions:
            chosen = next(r for r in sweep.recommendations if r.strategy == document.strategy)
            others = [r.message for r in sweep.recommendations if r is not chosen]
            theirs = [r.message for r in sweep.powertuning_recommendations]
            restored = "restored" if sweep.restored else "<b>NOT restored</b>"
            parts.append(
                f"<h3>{_e(sweep.function)} ({_e(sweep.architecture)}, {sweep.original_memory_mb:,} MB "
                f"originally, {restored})</h3>"
                f'<p class="recommendation"><b>{_e(chosen.message)}</b></p>'
                + _table(
                    [header.replace("p-target", f"p{document.percentile:g}") for header in HEADERS],
                    [_row(size, sweep.architecture) for size in sweep.sizes],
                    text_columns=1,
                )
                + "<ul>"
                + "".join(f"<li>{_e(message)}</li>" for message in others + theirs)
                + "</ul>"
            )
        calibration = document.calibration
        if calibration is not None:
            parts.append(
                f"<h3>Calibration against lambda-perf ({_e(run.label)})</h3>"
                + _table(
                    CALIBRATION_HEADERS,
                    [
                        [
                            _e(calibration.function),
                            f"{calibration.memory_mb}",
                            f"{calibration.trials}",
                            _ms(calibration.init_duration_mean_us),
                            _ms(calibration.init_duration_us.p50),
                            f"{calibration.reference_mean_ms:g}",
                            f"{calibration.reference_min_ms:g}–{calibration.reference_max_ms:g}",
                            _e(
                                f"{calibration.reference_runtime}, {calibration.reference_date}, "
                                f"{calibration.reference_source}"
                            ),
                            f"{calibration.ratio:.2f}×",
                        ]
                    ],
                    text_columns=1,
                )
            )
    return "<h2>Power tuning</h2>" + "".join(parts) if parts else ""
