"""``python -m bench.coldstart.cloudwatch --function NAME [--since 1h]``: what AWS itself measured.

Reads the function's REPORT lines from CloudWatch Logs (``filter_log_events`` on
``/aws/lambda/NAME``, every page, in the window ``--since`` ago → now) and summarises them
into a ``coldstart-cloudwatch`` results document (:class:`bench.results.coldstart.ColdstartCloudwatchRun`)
that ``reports`` charts: a cold invocation is one whose line has an Init Duration; Init
Duration and Init + Duration of the cold ones (µs, median/MAD over them; None when there was
none), warm Duration (µs, HdrHistogram), the Billed Duration total, Max Memory Used, the cold
share, and the cost per million at that observed share. Every line is kept, as Lambda wrote
it. Measured by AWS inside the sandbox: no client or network time, nothing about requests API
Gateway refused before the function ran, and only the lines CloudWatch still holds. No gates:
this reads what happened, it checks no target.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from bench.lambdacost import cost_per_million
from bench.latency import LatencyRecorder
from bench.machine import collect_metadata
from bench.reportline import parse_report
from bench.results import Metadata, utc_stamp, write_json_atomic
from bench.results.coldstart import ColdstartCloudwatchRun, LoggedReport
from bench.stats import summarize
from bench.target import AWS

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``2d`` → seconds."""
    match = _SINCE.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 15m, 1h or 2d, not {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def fetch_reports(logs, function: str, start_ms: int, end_ms: int) -> list[LoggedReport]:
    """Every REPORT line of ``/aws/lambda/{function}`` in the window, every page."""
    reports = []
    paginator = logs.get_paginator("filter_log_events")
    pages = paginator.paginate(
        logGroupName=f"/aws/lambda/{function}", startTime=start_ms, endTime=end_ms, filterPattern="REPORT"
    )
    for page in pages:
        for event in page.get("events", []):
            report = parse_report(event.get("message", ""))
            if report is not None:
                reports.append(LoggedReport(timestamp_ms=event.get("timestamp"), report=report))
    return reports


def summarize_reports(
    function: str, logged: list[LoggedReport], start_ms: int, end_ms: int, metadata: Metadata
) -> ColdstartCloudwatchRun:
    """Cold (with an Init Duration) and warm invocations apart; durations in µs."""
    reports = [entry.report for entry in logged]
    cold = [report for report in reports if report.init_duration_ms is not None]
    warm = LatencyRecorder("us")
    for report in reports:
        if report.init_duration_ms is None:
            warm.record_ns(round(report.duration_ms * 1_000_000))
    cold_share = len(cold) / len(reports)
    warm_series = warm.series()
    init = cold_total = None
    billed_cold_ms = 0.0
    if cold:
        init = summarize([r.init_duration_ms * 1_000 for r in cold], f"{function} init duration")
        cold_total = summarize(
            [(r.init_duration_ms + r.duration_ms) * 1_000 for r in cold], f"{function} cold start"
        )
        billed_cold_ms = summarize([r.billed_duration_ms for r in cold]).p50
    memory = reports[0].memory_size_mb
    cost = cost_per_million(warm_series.p50 / 1_000, billed_cold_ms, memory, cold_share)
    return ColdstartCloudwatchRun(
        metadata=metadata,
        function=function,
        start_ms=start_ms,
        end_ms=end_ms,
        invocations=len(reports),
        cold_invocations=len(cold),
        cold_share=round(cold_share, 6),
        init_duration_us=init,
        cold_start_us=cold_total,
        warm_us=warm_series,
        billed_ms_total=sum(report.billed_duration_ms for report in reports),
        peak_rss_mb=max(report.max_memory_used_mb for report in reports),
        memory_mb=memory,
        cost_per_million_usd=round(cost, 4),
        reports=logged,
    )


def format_line(document: ColdstartCloudwatchRun) -> str:
    """The console summary (ms where Lambda reports ms)."""
    init = (
        f"Init Duration p50 {document.init_duration_us.p50 / 1_000:.1f} ms"
        if document.init_duration_us is not None
        else "no Init Duration (no cold start in this window)"
    )
    warm = document.warm_us
    return (
        f"{document.function}: {document.invocations} invocations, {document.cold_invocations} cold "
        f"({document.cold_share:.2%}); {init}; "
        f"warm Duration p50 {warm.p50:.0f} µs p99 {warm.p99:.0f} µs; "
        f"max memory {document.peak_rss_mb} MB; ${document.cost_per_million_usd:.4f} per million"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.coldstart.cloudwatch", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--function", required=True, help="Lambda function name")
    parser.add_argument("--since", type=parse_since, default=3_600.0, help="window: 15m, 1h, 2d (default 1h)")
    parser.add_argument("--region", help="default: the AWS configuration's")
    parser.add_argument("--endpoint-url", help="an AWS-compatible server (moto)")
    parser.add_argument("--results", type=Path, help="default results/cloudwatch-<function>-<UTC>.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from handler.aws.clients import client

    end_ms = int(time.time() * 1_000)
    start_ms = end_ms - int(args.since * 1_000)
    try:
        logs = client("logs", args.endpoint_url, args.region)
        reports = fetch_reports(logs, args.function, start_ms, end_ms)
    except (ClientError, BotoCoreError) as exc:
        print(f"error: /aws/lambda/{args.function}: {exc}", file=sys.stderr)
        return 1
    if not reports:
        print(
            f"error: no REPORT lines in /aws/lambda/{args.function} in the last {args.since:g} s",
            file=sys.stderr,
        )
        return 1
    options = {"function": args.function, "since_s": args.since, "start_ms": start_ms, "end_ms": end_ms}
    document = summarize_reports(
        args.function, reports, start_ms, end_ms, collect_metadata(options, resource_model=AWS)
    )
    results = args.results or Path("results") / f"cloudwatch-{args.function}-{utc_stamp()}.json"
    write_json_atomic(results, document)
    print(format_line(document))
    print(f"results: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
