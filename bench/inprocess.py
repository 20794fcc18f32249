"""``python -m bench.inprocess``: warm latency of each variant's handler, called in-process.

What is timed: (1) the whole ``lambda_handler(event, None)`` call, from just before the call
to just after it returns (``perf_counter_ns``), and (2) the predict step alone, as the handler
reports it in ``Server-Timing: predict;dur=`` (building the model input + the model call).
Not timed: the Lambda runtime, HTTP, JSON (de)serialization of the event by the runtime, or
init (see ``bench.coldstart``). Each variant runs in a fresh process, after ``--warmup`` calls;
the tutorial's ``print`` of each event goes to /dev/null, which is cheaper than CloudWatch.
The parent only aggregates: each child returns HdrHistograms (ns) on one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.cli import positive_int
from bench.latency import LatencyRecorder
from bench.machine import collect_metadata
from bench.results import InprocessRun, utc_stamp, write_json_atomic
from bench.results.kinds import InprocessVariant
from bench.servertiming import duration_ns, parse_server_timing
from bench.target import IN_PROCESS
from handler.features import TUTORIAL_QUERY
from handler.variants import VARIANTS, select

KIND = "inprocess"


@dataclass(frozen=True)
class InprocessConfig:
    variants: tuple[str, ...]
    calls: int
    warmup: int
    models_dir: Path
    results: Path


def run_child(variant_name: str, calls: int, warmup: int, models_dir: str) -> dict:
    """In the child process: import the variant, warm it up, time ``calls`` calls."""
    variant = VARIANTS[variant_name]
    os.environ.update(variant.environment(models_dir))
    module_name, function_name = variant.handler.rsplit(".", 1)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        handler = getattr(importlib.import_module(module_name), function_name)
        event = model_event(Path(models_dir)) or {"queryStringParameters": dict(TUTORIAL_QUERY)}
        for _ in range(warmup):
            handler(event, None)
        durations = [0] * calls
        timings: list[str | None] = [None] * calls
        clock = time.perf_counter_ns
        for index in range(calls):
            started = clock()
            response = handler(event, None)
            durations[index] = clock() - started
            timings[index] = response.get("headers", {}).get("Server-Timing")
    whole = LatencyRecorder("ns")
    predict = LatencyRecorder("ns")
    for duration, header in zip(durations, timings, strict=True):
        whole.record_ns(duration)
        predict_ns = duration_ns(parse_server_timing(header), "predict")
        if predict_ns is not None:
            predict.record_ns(predict_ns)
    return {
        "variant": variant_name,
        "calls": calls,
        "response": response,
        "handler_ns": whole.encode(),
        "predict_ns": predict.encode() if predict.count else None,
    }


def model_event(models_dir: Path) -> dict | None:
    """A user's model: the first line of its ``requests.jsonl`` as the event every call gets
    (the tutorial's query is not its input); None for the tutorial's model."""
    from bench.coldstart.profiler import model_requests

    requests = model_requests(models_dir)
    if requests is None:
        return None
    from bench.requests import invoke_payload, read_requests

    return json.loads(invoke_payload(read_requests(requests).lines[0], "function"))


def _spawn(variant: str, config: InprocessConfig) -> dict:
    command = [
        sys.executable, "-m", "bench.inprocess", "--child", variant,
        "--calls", str(config.calls), "--warmup", str(config.warmup),
        "--models", str(config.models_dir),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"variant {variant} failed: {tail[0]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure(config: InprocessConfig) -> InprocessRun:
    rows = []
    for name in config.variants:
        child = _spawn(name, config)
        whole = LatencyRecorder.decode(child["handler_ns"], "ns")
        predict = LatencyRecorder.decode(child["predict_ns"], "ns") if child["predict_ns"] else None
        rows.append(
            InprocessVariant(
                name=name,
                handler=VARIANTS[name].handler,
                calls=child["calls"],
                handler_us=whole.series(),
                predict_us=predict.series() if predict else None,
                response_body=child["response"].get("body"),
            )
        )
    tutorial = next((row for row in rows if row.name == "tutorial"), None)
    if tutorial is not None:
        rows = [
            replace(row, speedup_vs_tutorial=round(tutorial.handler_us.p50 / row.handler_us.p50, 1))
            for row in rows
        ]
    options = {"calls": config.calls, "warmup": config.warmup, "variants": list(config.variants)}
    return InprocessRun(metadata=collect_metadata(options, resource_model=IN_PROCESS), variants=rows)


def format_table(document: InprocessRun) -> str:
    lines = [
        f"{'variant':<14} {'handler p50':>12} {'p99':>10} {'predict p50':>12} {'p99':>10} "
        f"{'x tutorial':>10}   (µs, {document.metadata.options['calls']} warm calls)"
    ]
    nan = float("nan")
    for row in document.variants:
        predict, speedup, whole = row.predict_us, row.speedup_vs_tutorial, row.handler_us
        lines.append(
            f"{row.name:<14} {whole.p50:>12.2f} {whole.p99:>10.2f} "
            f"{predict.p50 if predict else nan:>12.2f} {predict.p99 if predict else nan:>10.2f} "
            f"{'' if speedup is None else f'{speedup:.1f}x':>10}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--variants", default="all", help="'all' or names, comma-separated")
    parser.add_argument("--calls", type=positive_int, default=10_000)
    parser.add_argument("--warmup", type=positive_int, default=1_000)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.calls, args.warmup, str(args.models))))
        return 0
    try:  # the names first (they need no models), then the models, then "all" in them
        variants = tuple(variant.name for variant in select(args.variants))
        if not (args.models / "manifest.json").is_file():
            parser.error(f"--models {str(args.models)!r}: no manifest.json; run python -m training")
        variants = tuple(variant.name for variant in select(args.variants, args.models))
    except ValueError as exc:
        parser.error(f"--variants {args.variants!r}: {exc}")
    results = args.results or Path("results") / f"inprocess-{utc_stamp()}.json"
    config = InprocessConfig(variants, args.calls, args.warmup, args.models.resolve(), results)
    try:
        document = measure(config)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_json_atomic(config.results, document)
    print(format_table(document))
    print(f"results: {config.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
