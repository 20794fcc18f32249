"""The report's charts: matplotlib figures (Agg, no pyplot state) written as PNG files.

Each function takes runs and an output path, draws what those runs hold, and returns the path,
or None when no run has the data for that chart. Distributions are drawn from the runs'
HdrHistograms (their own iteration and percentiles); nothing is re-measured or re-estimated.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from bench.results import LocustRun, Series, write_atomic
from bench.results.kinds import StageRow
from reports.powertune import powertune_chart
from reports.runs import Run, locust_e2e, of_kind

PHASE_LABELS = {
    "interpreter": "interpreter",
    "imports": "library imports",
    "handler_code": "handler code",
    "load": "model load",
    "first_invoke": "first invoke",
}
INPUT_COLOURS = {"pandas": "#c44e52", "numpy": "#4c72b0", "python": "#55a868"}
DPI = 110


class _PlainLogFormatter(LogFormatter):
    """Matplotlib's choice of which log ticks to label, with plain numbers: 2,000 not 2×10³."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return f"{x:,.0f}" if x >= 1 else f"{x:g}"


def _us_axis(axis) -> None:
    axis.set_major_formatter(_PlainLogFormatter())
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, dpi=DPI, format="png")
    write_atomic(path, png.getvalue())
    return path


def _recorder(series: Series | None):
    if series is None or not series.count or not series.histogram:
        return None
    return series.decode()


def cdf_points(series: Series | None) -> tuple[list[float], list[float]]:
    """(value in µs, fraction of samples at or below it), one point per recorded bucket."""
    recorder = _recorder(series)
    if recorder is None:
        return [], []
    scale = 1_000 if recorder.unit == "us" else 1
    total = recorder.count
    values, fractions = [], []
    for item in recorder.histogram.get_recorded_iterator():
        values.append(item.value_iterated_to * scale / 1_000)
        fractions.append(item.total_count_to_this_value / total)
    return values, fractions


def box_stats(series: Series | None, label: str) -> dict | None:
    """matplotlib ``bxp`` statistics from a histogram: box p25–p75, whiskers p1–p99."""
    recorder = _recorder(series)
    if recorder is None:
        return None
    return {
        "label": label,
        "whislo": recorder.percentile_us(1),
        "q1": recorder.percentile_us(25),
        "med": recorder.percentile_us(50),
        "q3": recorder.percentile_us(75),
        "whishi": recorder.percentile_us(99),
        "fliers": [],
    }


def _target_us(runs: Iterable[Run]) -> float | None:
    for run in runs:
        if isinstance(run.document, LocustRun):
            return run.document.verdict.target_us
    return None


# -- latency CDFs ----------------------------------------------------------------------------
def latency_cdf(runs: list[Run], path: Path) -> Path | None:
    """End-to-end CDF per function beside the in-handler CDF: the gap is gateway + runtime + network."""
    curves: list[tuple[str, Series, Series]] = []
    for run in of_kind(runs, "locust"):
        for name, endpoint in run.document.endpoints.items():
            curves.append((f"{run.label}: {name}", locust_e2e(run.document, name), endpoint.handler_us))
    for run in of_kind(runs, "endpoint"):
        warm = run.document.warm
        curves.append((f"{run.label}: endpoint", warm.e2e_us, warm.in_handler_us))
    curves = [curve for curve in curves if curve[1].count]
    if not curves:
        return None
    figure = Figure(figsize=(12, 4.8))
    e2e_axes, handler_axes = figure.subplots(1, 2, sharex=True)
    target = _target_us(of_kind(runs, "locust"))
    for axes, index, title in ((e2e_axes, 1, "end to end"), (handler_axes, 2, "in handler (Server-Timing)")):
        for colour, curve in enumerate(curves):
            series = curve[index]
            values, fractions = cdf_points(series)
            if not values:
                continue
            line = axes.step(values, fractions, where="post", label=curve[0], color=f"C{colour % 10}")[0]
            for quantile, marker in (("p50", "o"), ("p99", "s")):
                axes.plot(
                    getattr(series, quantile),
                    0.5 if quantile == "p50" else 0.99,
                    marker,
                    color=line.get_color(),
                )
        if target is not None:
            axes.axvline(target, color="black", linestyle="--", linewidth=1, label=f"target {target:,.0f} µs")
        axes.set_xscale("log")
        _us_axis(axes.xaxis)
        axes.set_xlabel("latency (µs, log scale)")
        axes.set_ylabel("fraction of requests")
        axes.set_ylim(0, 1.02)
        axes.set_title(f"{title} — ● p50  ■ p99")
        axes.grid(True, which="both", alpha=0.3)
    e2e_axes.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


# -- percentile timeline ---------------------------------------------------------------------
def timeline(runs: list[Run], path: Path) -> Path | None:
    panels = [
        (f"{run.label}: {name}", endpoint.timeline)
        for run in of_kind(runs, "locust")
        for name, endpoint in run.document.endpoints.items()
        if endpoint.timeline
    ]
    if not panels:
        return None
    figure = Figure(figsize=(12, 3.2 * len(panels)))
    axes_list = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axes, (title, rows) in zip(axes_list, panels, strict=True):
        start = rows[0].t
        seconds = [row.t - start for row in rows]
        for quantile, style in (("p50_us", "-"), ("p99_us", "--")):
            points = [
                (s, getattr(row, quantile))
                for s, row in zip(seconds, rows, strict=True)
                if getattr(row, quantile)
            ]
            if points:
                axes.plot(*zip(*points, strict=True), style, marker=".", label=quantile.replace("_us", ""))
        axes.set_yscale("log")
        _us_axis(axes.yaxis)
        axes.set_ylabel("latency (µs)")
        axes.set_xlabel("seconds since start")
        rate = axes.twinx()
        rate.bar(seconds, [row.requests for row in rows], width=0.9, alpha=0.18, color="grey", label="req/s")
        rate.set_ylabel("requests/s")
        colds = [(s, row.cold_starts) for s, row in zip(seconds, rows, strict=True) if row.cold_starts]
        for second, count in colds:
            axes.axvline(second, color="#dd8452", alpha=0.6)
            axes.annotate(
                f"{count} cold",
                (second, 1),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                rotation=90,
                va="top",
                ha="right",
                color="#dd8452",
            )
        axes.set_title(title + (f" — {sum(c for _, c in colds)} cold starts (orange)" if colds else ""))
        lines, labels = axes.get_legend_handles_labels()
        bars, bar_labels = rate.get_legend_handles_labels()
        axes.legend(lines + bars, labels + bar_labels, fontsize=8, loc="upper right")
        axes.grid(True, alpha=0.3)
    return _save(figure, path)


# -- cold-start phases -----------------------------------------------------------------------
def coldstart_phases(runs: list[Run], path: Path) -> Path | None:
    bars: list[tuple[str, dict[str, float]]] = []
    target = None
    kinds = ("coldstart", "coldstart-endpoint", "coldstart-cloudwatch")
    many = sum(len(of_kind(runs, kind)) for kind in kinds) > 1
    for run in (run for kind in kinds for run in of_kind(runs, kind)):
        prefix = f"{run.label}: " if many else ""
        target = target or run.options.get("cold_target_ms")
        document = run.document
        if run.kind == "coldstart":
            for variant in document.variants:
                phases = {PHASE_LABELS[k]: v / 1_000 for k, v in variant.phases_us.to_dict().items()}
                bars.append((f"{prefix}{variant.name}", phases))
            continue
        if run.kind == "coldstart-endpoint":
            total, rest_label, mode = document.first_request_us.p50, "invoke + transport", "endpoint"
        elif document.cold_start_us is not None:
            total, rest_label, mode = document.cold_start_us.p50, "first Duration", "cloudwatch"
        else:
            continue
        init = document.init_duration_us.p50 if document.init_duration_us is not None else 0.0
        label = f"{prefix}{document.function} ({mode})"
        bars.append((label, {"Init Duration": init / 1_000, rest_label: max(total - init, 0.0) / 1_000}))
    if not bars:
        return None
    figure = Figure(figsize=(12, 1.2 + 0.42 * len(bars)))
    axes = figure.subplots()
    labels = [label for label, _ in bars]
    phase_names = list(dict.fromkeys(name for _, phases in bars for name in phases))
    positions = range(len(bars))
    left = [0.0] * len(bars)
    for colour, phase in enumerate(phase_names):
        widths = [phases.get(phase, 0.0) for _, phases in bars]
        axes.barh(positions, widths, left=left, label=phase, color=f"C{colour}")
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for position, total in zip(positions, left, strict=True):
        axes.annotate(f" {total:,.1f} ms", (total, position), va="center", fontsize=8)
    if target:
        axes.axvline(
            float(target), color="black", linestyle="--", linewidth=1, label=f"cold target {target:g} ms"
        )
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    axes.set_xlabel("cold start to first prediction, p50 of each phase (ms)")
    axes.set_xlim(0, max(left) * 1.15)
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(True, axis="x", alpha=0.3)
    return _save(figure, path)


# -- warm latency per variant ----------------------------------------------------------------
def _warm_boxes(run: Run) -> list[tuple[dict, str]]:
    """(box stats, input path) per variant of a process-mode cold-start run or an in-process run."""
    boxes = []
    if run.kind == "coldstart":
        for variant in run.document.variants:
            stats = box_stats(variant.warm_us, f"{variant.name}\n{variant.model_format}+{variant.input_path}")
            if stats:
                boxes.append((stats, variant.input_path))
    elif run.kind == "inprocess":
        for variant in run.document.variants:
            stats = box_stats(variant.handler_us, variant.name)
            if stats:
                boxes.append((stats, ""))
    return boxes


def warm_variants(runs: list[Run], path: Path) -> Path | None:
    panels = [(run, boxes) for run in runs if (boxes := _warm_boxes(run))]
    if not panels:
        return None
    figure = Figure(figsize=(12, 4.2 * len(panels)))
    axes_list = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for axes, (run, boxes) in zip(axes_list, panels, strict=True):
        artists = axes.bxp([stats for stats, _ in boxes], showfliers=False, patch_artist=True)
        for patch, (_, input_path) in zip(artists["boxes"], boxes, strict=True):
            patch.set_facecolor(INPUT_COLOURS.get(input_path, "#bbbbbb"))
            patch.set_alpha(0.6)
        axes.set_yscale("log")
        _us_axis(axes.yaxis)
        axes.set_ylabel("warm in-handler latency (µs)")
        where = (
            "handler call in a fresh process"
            if run.kind == "coldstart"
            else "lambda_handler call, in-process"
        )
        axes.set_title(f"{run.label}: {where} — box p25–p75, line p50, whiskers p1–p99")
        axes.tick_params(axis="x", labelsize=8)
        axes.grid(True, axis="y", which="both", alpha=0.3)
        if run.kind == "coldstart":
            from matplotlib.patches import Patch

            axes.legend(
                handles=[
                    Patch(color=colour, alpha=0.6, label=name) for name, colour in INPUT_COLOURS.items()
                ],
                fontsize=8,
                title="input path",
            )
    return _save(figure, path)


# -- throughput against latency ----------------------------------------------------------------
def knee(stages: list[StageRow]) -> int | None:
    """Index of the last stage whose p99 is within 2× the lightest stage's p99 while the
    achieved rate still rises; None when there are fewer than two stages."""
    usable = [stage for stage in stages if stage.p99_us]
    if len(usable) < 2:
        return None
    base = usable[0].p99_us
    best = 0
    for index, stage in enumerate(usable):
        if stage.p99_us > 2 * base:
            break
        if stage.achieved_rps >= usable[best].achieved_rps:
            best = index
    return stages.index(usable[best])


def throughput(runs: list[Run], path: Path) -> Path | None:
    curves = [
        (f"{run.label}: {name}", endpoint.stages)
        for run in of_kind(runs, "locust")
        if run.options.get("scenario") == "step"
        for name, endpoint in run.document.endpoints.items()
        if len([stage for stage in endpoint.stages if stage.p99_us]) >= 2
    ]
    if not curves:
        return None
    figure = Figure(figsize=(12, 5))
    axes = figure.subplots()
    for colour, (label, stages) in enumerate(curves):
        usable = [stage for stage in stages if stage.p99_us]
        rates = [stage.achieved_rps for stage in usable]
        axes.plot(rates, [s.p50_us for s in usable], "-o", color=f"C{colour}", label=f"{label} p50")
        axes.plot(rates, [s.p99_us for s in usable], "--s", color=f"C{colour}", label=f"{label} p99")
        found = knee(usable)
        if found is not None:
            stage = usable[found]
            axes.annotate(
                f"knee: {stage.achieved_rps:,.0f} req/s\n({stage.users} users)",
                (stage.achieved_rps, stage.p99_us),
                xytext=(10, 18),
                textcoords="offset points",
                fontsize=8,
                arrowprops={"arrowstyle": "->", "color": f"C{colour}"},
            )
    target = _target_us(of_kind(runs, "locust"))
    if target is not None:
        axes.axhline(target, color="black", linestyle=":", linewidth=1, label=f"target {target:,.0f} µs")
    axes.set_yscale("log")
    _us_axis(axes.yaxis)
    axes.set_xlabel("achieved requests/s (per step)")
    axes.set_ylabel("latency (µs)")
    axes.set_title(
        "step scenario: latency against throughput (knee: last step with p99 ≤ 2× the first step's)"
    )
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    return _save(figure, path)


CHARTS = (
    ("latency_cdf.png", "Latency CDF", latency_cdf),
    ("timeline.png", "Percentiles over time", timeline),
    ("coldstart_phases.png", "Cold-start phases", coldstart_phases),
    ("warm_variants.png", "Warm latency per variant", warm_variants),
    ("throughput.png", "Throughput against latency", throughput),
    ("powertune.png", "Power tuning: time and cost against memory size", powertune_chart),
)
