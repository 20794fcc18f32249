"""``index.html``: verdicts, summary tables, comparisons, charts and metadata in one file.

Self-contained: the charts are embedded as data URIs and the style is inline, so the page
opens from ``file://`` with no network. The one script marks, once the page has loaded, how
many of its images decoded (``data-images-loaded`` / ``data-images-total`` on ``<body>``),
which the headless-browser check reads.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from pathlib import Path

from bench.results import cpu_idle_phrase as describe_phrase
from bench.results.metadata import resource_model_phrase
from reports.compare import compare_section
from reports.emulatorcost import emulator_cost_section
from reports.fidelity import fidelity_section
from reports.powertune import powertune_section
from reports.runs import Ratio, Run, locust_e2e, locust_series, of_kind, verdicts

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1280px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.86em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.55em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
.PASS { color: #1a7f37; font-weight: bold; } .FAIL { color: #cf222e; font-weight: bold; }
.INVALID { color: #9a6700; font-weight: bold; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } .note { color: #555; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
"""
CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-total", String(images.length));
  document.body.setAttribute("data-images-loaded", String(loaded));
});
"""


QUANTILES = ("p50", "p90", "p99", "p999", "max")
PHASES = ("interpreter", "imports", "handler_code", "load", "first_invoke")


def _e(value: object) -> str:
    return html.escape(str(value))


def _us(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _table(headers: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    head = "".join(
        f'<th class="text">{_e(h)}</th>' if i < text_columns else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="text">{cell}</td>' if i < text_columns else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(status: str) -> str:
    return f'<span class="{_e(status)}">{_e(status)}</span>'


def headline_section(runs: list[Run]) -> str:
    """First thing on the page: one line per function and load run, from its gates."""
    lines = [
        f"<li><code>{_e(run.label)}</code>: {_e(run.document.headline(name))}</li>"
        for run in of_kind(runs, "locust")
        for name in run.document.endpoints
    ]
    return f'<ul class="headlines">{"".join(lines)}</ul>' if lines else ""


def verdict_section(runs: list[Run]) -> str:
    rows = [
        [_e(label), _e(kind), _status(status), "<br>".join(_e(r) for r in reasons) or "–"]
        for label, kind, status, reasons in verdicts(runs)
    ]
    if not rows:
        return ""
    return "<h2>Verdicts</h2>" + _table(["run", "kind", "verdict", "reasons"], rows, text_columns=4)


def locust_section(runs: list[Run]) -> str:
    rows = []
    for run in of_kind(runs, "locust"):
        document = run.document
        for name, endpoint in document.endpoints.items():
            e2e = locust_e2e(document, name)
            handler = endpoint.handler_us
            outcomes = endpoint.outcomes
            rows.append(
                [
                    _e(run.label),
                    _e(name),
                    f"{endpoint.sent:,}",
                    f"{outcomes['2xx']:,}",
                    f"{outcomes['4xx']:,}",
                    f"{outcomes['429']:,}",
                    f"{outcomes['5xx'] + outcomes['other']:,}",
                    f"{outcomes['connection_error']:,}",
                    f"{endpoint.cold_starts.count:,}",
                    *(
                        _ms_of_us(series.p50) if series.count else "–"
                        for series in (
                            endpoint.cold_starts.handler_init_us,
                            endpoint.cold_starts.init_duration_us,
                        )
                    ),
                    *(
                        _us(getattr(e2e, q)) if e2e.count else "–"
                        for q in ("p50", "p90", "p99", "p999", "max")
                    ),
                    *(_us(getattr(handler, q)) if handler.count else "–" for q in ("p50", "p99")),
                    _status(endpoint.status),
                ]
            )
    if not rows:
        return ""
    notes = []
    for run in of_kind(runs, "locust"):
        options = run.options
        series = locust_series(run.document)
        notes.append(
            f"{_e(run.label)}: {_e(options.get('scenario', '?'))} scenario, "
            f"{_e(options.get('users', '?'))} users, "
            + (
                f"open loop at {options.get('rate', 0):g} req/s, "
                if options.get("open_loop")
                else "closed loop, "
            )
            + f"{_e(options.get('host', ''))}, "
            f"end-to-end series <code>{_e(series)}</code>"
            + (" (from each request's intended send time)" if series == "e2e_intended_us" else "")
            + (" — <b>partial run</b>" if run.document.partial else "")
        )
        schedule = run.document.schedule
        if schedule is not None and schedule.warning:
            notes.append(f"{_e(run.label)}: WARNING: {_e(schedule.warning)}")
    headers = ["run", "function", "sent", "2xx", "4xx", "429 throttled", "5xx", "conn. errors", "cold starts"]
    headers += [
        "handler init p50 ms",
        "Init Duration p50 ms",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "handler p50 µs",
        "handler p99 µs",
        "verdict",
    ]
    return (
        "<h2>Load runs (Locust)</h2>"
        + _table(headers, rows, text_columns=2)
        + "".join(f'<p class="note">{note}</p>' for note in notes)
    )


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def _ms_of_us(value: float | None) -> str:
    return _ms(None if value is None else value / 1_000)


def _skipped(document) -> str:
    """The variants that apply (the table's rows) and, for each of the others, why not."""
    if not document.skipped:
        return ""
    applied = ", ".join(variant.name for variant in document.variants)
    rows = [[_e(item.variant), _e(item.reason)] for item in document.skipped]
    return f"<p>Variants that apply to this model: {_e(applied)}. The others do not apply:</p>" + _table(
        ["variant", "why it does not apply"], rows, text_columns=2
    )


def coldstart_section(runs: list[Run]) -> str:
    parts = []
    for run in of_kind(runs, "coldstart"):
        options, variants = run.options, run.document.variants
        rows = [
            [
                _e(variant.name),
                _e(f"{variant.model_format} + {variant.input_path}"),
                _ms_of_us(variant.cold_start_us.p50),
                f"{_ms_of_us(variant.cold_start_us.min)}–{_ms_of_us(variant.cold_start_us.max)}",
                _ms_of_us(variant.cold_start_us.mad),
                _ms_of_us(variant.start_to_ready_us),
                *(_ms_of_us(getattr(variant.phases_us, phase)) for phase in PHASES),
                _us(variant.warm_us.p50),
                _us(variant.warm_us.p99),
                _e(variant.peak_rss_mb),
                f"{variant.cost_per_million_usd:.4f}",
                "–"
                if variant.cold_speedup_vs_tutorial is None
                else f"{variant.cold_speedup_vs_tutorial:.1f}×",
                _status(variant.status),
            ]
            for variant in variants
        ]
        headers = ["variant", "format + input", "cold p50 ms", "min–max ms", "MAD ms", "start to ready ms"]
        headers += [f"{phase.replace('_', ' ')} ms" for phase in PHASES]
        headers += ["warm p50 µs", "warm p99 µs", "peak RSS MB", "$ per million", "cold vs tutorial"]
        headers += ["verdict"]
        warnings = [w for variant in variants for w in variant.cold_start_us.warnings]
        parts.append(
            f"<h3>{_e(run.label)} (fresh processes, {options.get('trials', '?')} trials, "
            f"{options.get('memory_mb', '?')} MB, cold target {options.get('cold_target_ms', '?')} ms, "
            f"warm target {options.get('target_ms', '?')} ms)</h3>"
            + _table(headers, rows, text_columns=2)
            + "".join(f'<p class="note">{_e(w)}</p>' for w in warnings)
            + _skipped(run.document)
        )
    for run in of_kind(runs, "coldstart-endpoint"):
        document = run.document
        init = document.init_duration_us
        rows = [
            [
                _e(document.function),
                _ms_of_us(document.first_request_us.p50),
                _ms_of_us(init.p50 if init else None),
                f"{document.trials_with_init_duration}/{document.first_request_us.samples}",
                _us(document.warm_us.p50),
                _us(document.warm_us.p99),
                _e(document.peak_rss_mb),
                f"{document.cost_per_million_usd:.4f}",
                _status(document.status),
            ]
        ]
        headers = ["function", "cold p50 ms", "Init Duration p50 ms", "trials with Init", "warm p50 µs"]
        headers += ["warm p99 µs", "max memory MB", "$ per million", "verdict"]
        parts.append(
            f"<h3>{_e(run.label)} (through {_e(document.lambda_endpoint or 'AWS')}, "
            f"{document.memory_mb} MB)</h3>" + _table(headers, rows)
        )
    for run in of_kind(runs, "coldstart-cloudwatch"):
        document = run.document
        rows = [
            [
                _e(document.function),
                f"{document.invocations:,}",
                f"{document.cold_invocations:,} ({document.cold_share:.1%})",
                _ms_of_us(document.init_duration_us.p50 if document.init_duration_us else None),
                _ms_of_us(document.cold_start_us.p50 if document.cold_start_us else None),
                _us(document.warm_us.p50),
                _us(document.warm_us.p99),
                _e(document.peak_rss_mb),
                f"{document.cost_per_million_usd:.4f}",
            ]
        ]
        headers = ["function", "invocations", "cold", "Init Duration p50 ms", "cold (init + first) p50 ms"]
        headers += ["warm Duration p50 µs", "warm p99 µs", "max memory MB", "$ per million"]
        parts.append(
            f"<h3>{_e(run.label)} (CloudWatch Logs, {document.memory_mb} MB)</h3>" + _table(headers, rows)
        )
    return "<h2>Cold starts</h2>" + "".join(parts) if parts else ""


def inprocess_section(runs: list[Run]) -> str:
    parts = []
    for run in of_kind(runs, "inprocess"):
        rows = [
            [
                _e(variant.name),
                f"{variant.handler_us.count:,}",
                *(_us(getattr(variant.handler_us, q)) for q in ("p50", "p90", "p99", "max")),
                _us(variant.predict_us.p50 if variant.predict_us else None),
                _ratio(variant.speedup_vs_tutorial),
            ]
            for variant in run.document.variants
        ]
        headers = [
            "variant",
            "calls",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "max µs",
            "predict p50 µs",
            "vs tutorial",
        ]
        parts.append(f"<h3>{_e(run.label)}</h3>" + _table(headers, rows))
    return "<h2>Warm handler, in-process</h2>" + "".join(parts) if parts else ""


def endpoint_section(runs: list[Run]) -> str:
    rows = []
    for run in of_kind(runs, "endpoint"):
        warm = run.document.warm
        for name in ("e2e_us", "in_handler_us", "overhead_us"):
            series = getattr(warm, name)
            if series.count:
                rows.append(
                    [_e(run.label), _e(name), f"{series.count:,}"]
                    + [_us(getattr(series, q)) for q in ("p50", "p99", "max")]
                )
    if not rows:
        return ""
    return "<h2>Endpoint (one client)</h2>" + _table(
        ["run", "series", "requests", "p50 µs", "p99 µs", "max µs"], rows, 2
    )


def harness_section(runs: list[Run]) -> str:
    parts = []
    for run in of_kind(runs, "harness"):
        summary = {key: value for key, value in run.document.to_dict().items() if key != "metadata"}
        parts.append(f"<h3>{_e(run.label)}</h3><pre>{_e(json.dumps(summary, indent=2))}</pre>")
    return "<h2>Harness self-check</h2>" + "".join(parts) if parts else ""


def ratio_section(found: list[Ratio]) -> str:
    if not found:
        return ""
    rows = [
        [
            _e(ratio.subject),
            _e(ratio.figure),
            _e(f"{ratio.after_label} / {ratio.before_label}"),
            f"{ratio.before:,.1f}",
            f"{ratio.after:,.1f}",
            "–" if ratio.value is None else f"{ratio.value:.2f}×",
        ]
        for ratio in found
    ]
    return (
        '<h2>Comparison</h2><p class="note">Each later run against the first one given of the same '
        "kind, function, scenario and load (unlike runs are not compared); below 1× is faster. One "
        "run each: no significance (<code>python -m bench.compare</code> judges several runs).</p>"
        + _table(["subject", "figure", "runs", "before", "after", "ratio"], rows, 3)
    )


def charts_section(charts: list[tuple[str, Path]]) -> str:
    figures = []
    for title, path in charts:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append(
            f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(title)}">'
            f"<figcaption>{_e(title)} ({_e(path.name)})</figcaption></figure>"
        )
    return "<h2>Charts</h2>" + "".join(figures) if figures else ""


def metadata_section(runs: list[Run]) -> str:
    parts = []
    for run in runs:
        meta = run.metadata
        versions = ", ".join(f"{k} {v}" for k, v in meta.versions.items())
        machine = (
            f"host {_e(meta.host)}: {_e(meta.cpu_model)}, {_e(meta.cpu_count)} CPUs, "
            f"{_e(meta.memory_gib)} GiB; {_e(meta.platform)}; {_e(describe_phrase(meta.cpu_idle))}; "
            f"<b>{_e(resource_model_phrase(meta.resource_model))}</b>"
        )
        parts.append(
            f"<details><summary>{_e(run.label)} — {_e(run.kind)}, {_e(meta.utc_time)}</summary>"
            f"<p>file: <code>{_e(run.path)}</code><br>"
            f"command: <code>{_e(meta.command)}</code><br>"
            f"git: <code>{_e(meta.git_sha)}</code>; {machine}<br>"
            f"versions: {_e(versions)}</p>"
            f"<pre>{_e(json.dumps(meta.options, indent=1))}</pre></details>"
        )
    return "<h2>Metadata</h2>" + "".join(parts)


def render(runs: list[Run], charts: list[tuple[str, Path]], found: list[Ratio]) -> str:
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    sections = [
        headline_section(runs),
        verdict_section(runs),
        locust_section(runs),
        coldstart_section(runs),
        powertune_section(runs),
        inprocess_section(runs),
        endpoint_section(runs),
        emulator_cost_section(runs),
        fidelity_section(runs),
        harness_section(runs),
        ratio_section(found),
        compare_section(runs),
        charts_section(charts),
        metadata_section(runs),
    ]
    files = ", ".join(f"<code>{_e(run.path.name)}</code>" for run in runs)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Lambda latency report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Lambda latency report</h1>"
        f'<p class="note">Generated {generated} by <code>python -m reports</code> from {files}. '
        "Latencies in µs (HdrHistogram), cold starts in ms.</p>"
        + "".join(sections)
        + f"<script>{CHECK_SCRIPT}</script></body></html>\n"
    )
