"""``python -m bench.coldstart.cloudwatch --function NAME [--since 1h]``: what AWS itself measured.

Reads the function's REPORT lines from CloudWatch Logs (``filter_log_events`` on
``/aws/lambda/NAME``, every page) and summarises them into a ``coldstart`` results document
(``mode: "cloudwatch"``), the same form the profiler's endpoint mode writes, so ``reports``
charts it: Init Duration and cold Duration + Init of cold invocations (ms, median/MAD), warm
Duration (µs, HdrHistogram), Billed Duration, Max Memory Used, the cold share, and the cost
per million at that observed share. Measured by AWS inside the sandbox: no client or network
time, and nothing about requests API Gateway refused before the function ran.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from bench.lambdacost import cost_per_million
from bench.latency import LatencyRecorder
from bench.results import SCHEMA_VERSIONS, Metadata, utc_stamp, write_json_atomic
from bench.stats import summarize
from handler.local.reportline import ReportLine

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``2d`` → seconds."""
    match = _SINCE.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 15m, 1h or 2d, not {text!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def fetch_reports(logs, function: str, start_ms: int, end_ms: int) -> list[dict]:
    reports = []
    paginator = logs.get_paginator("filter_log_events")
    pages = paginator.paginate(
        logGroupName=f"/aws/lambda/{function}", startTime=start_ms, endTime=end_ms, filterPattern="REPORT"
    )
    for page in pages:
        for event in page.get("events", []):
            report = ReportLine.parse(event.get("message", ""))
            if report is not None:
                reports.append({**report.to_dict(), "timestamp_ms": event.get("timestamp")})
    return reports


def summarize_reports(function: str, reports: list[dict], options: dict) -> dict:
    cold = [r for r in reports if r["init_duration_ms"] is not None]
    warm = LatencyRecorder("us")
    for report in reports:
        if report["init_duration_ms"] is None:
            warm.record_ns(int(report["duration_ms"] * 1_000_000))
    cold_share = len(cold) / len(reports)
    warm_summary = warm.summary()
    cold_total = (
        summarize([r["init_duration_ms"] + r["duration_ms"] for r in cold], f"{function} cold")
        if cold
        else None
    )
    init = summarize([r["init_duration_ms"] for r in cold], f"{function} init duration") if cold else None
    memory = reports[0]["memory_size_mb"]
    billed_cold = summarize([r["billed_duration_ms"] for r in cold]).p50 if cold else 0.0
    cost = cost_per_million(warm_summary.p50 / 1_000, billed_cold, memory, cold_share)
    empty = {"samples": 0, "p50": 0.0, "min": 0.0, "max": 0.0, "mad": 0.0, "spread": 0.0}
    empty["warnings"] = ["no cold start in this window"]
    return {
        "kind": "coldstart",
        "schema_version": SCHEMA_VERSIONS["coldstart"],
        "mode": "cloudwatch",
        "metadata": Metadata.collect(options).to_dict(),
        "variants": [
            {
                "name": function,
                "invocations": len(reports),
                "cold_share": round(cold_share, 6),
                "cold_start_ms": cold_total.to_dict() if cold_total else empty,
                "init_duration_ms": init.to_dict() if init else empty,
                "trials_with_init_duration": len(cold),
                "warm_us": warm_summary.to_dict(),
                "billed_ms_total": sum(r["billed_duration_ms"] for r in reports),
                "peak_rss_mb": max(r["max_memory_used_mb"] for r in reports),
                "memory_mb": memory,
                "cost_per_million_usd": round(cost, 4),
            }
        ],
        "trials": {function: reports},
    }


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
    document = summarize_reports(args.function, reports, options)
    results = args.results or Path("results") / f"cloudwatch-{args.function}-{utc_stamp()}.json"
    write_json_atomic(results, document)
    row = document["variants"][0]
    print(
        f"{args.function}: {row['invocations']} invocations, {row['trials_with_init_duration']} cold "
        f"({row['cold_share']:.2%}); Init Duration p50 {row['init_duration_ms']['p50']:.1f} ms; "
        f"warm Duration p50 {row['warm_us']['p50']:.0f} µs p99 {row['warm_us']['p99']:.0f} µs; "
        f"max memory {row['peak_rss_mb']} MB; ${row['cost_per_million_usd']:.4f} per million"
    )
    print(f"results: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
