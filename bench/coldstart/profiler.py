"""``python -m bench.coldstart``: what a cold start costs, variant by variant, phase by phase.

**Process mode** (default). Each trial is a fresh interpreter (``bench/coldstart/child.py``),
as a new Lambda environment is; trials are interleaved across variants (A B C A B C …) so
drift hits all alike. From the parent's spawn instant (``perf_counter_ns`` just before
``Popen``; CLOCK_MONOTONIC is shared with the child): *interpreter* (to the child's first
statement), *imports* (each library apart, then the handler's own code), *load* (the handler
module's import: read + sha256 check + deserialize), *first invoke*; their sum is the cold
start to first prediction. Then ``--warm`` calls, p50/p99 in µs; peak RSS. Not measured:
Lambda's sandbox and runtime start-up (the endpoint mode has them), downloading the package.

**Endpoint mode** (``--function NAME --lambda-endpoint URL``: the local emulator or AWS).
Per trial, UpdateFunctionConfiguration changes an environment variable (how lambda-perf
forces a cold start), then ``Invoke`` with ``LogType=Tail``: the REPORT line's Init
Duration, Duration, Billed Duration and Max Memory Used, and the client-side time of that
first call and of ``--warm`` following ones.

Cost per million predictions: :mod:`bench.lambdacost` (Power Tuning's formula);
``--cold-fraction`` of invocations pay the billed INIT. Exit code 1 when a selected variant
misses ``--target-ms`` (warm p99) or ``--cold-target-ms`` (cold p50); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import site
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.cli import positive_int
from bench.lambdacost import cost_per_million
from bench.latency import LatencyRecorder
from bench.results import PROJECT_ROOT, SCHEMA_VERSIONS, Metadata, utc_stamp, write_json_atomic
from bench.stats import summarize
from handler.features import TUTORIAL_QUERY
from handler.local.reportline import ReportLine
from handler.variants import VARIANTS, select

CHILD = Path(__file__).with_name("child.py")
PHASES = ("interpreter", "imports", "handler_code", "load", "first_invoke")


@dataclass(frozen=True)
class ColdstartConfig:
    variants: tuple[str, ...]
    trials: int
    warm: int
    models_dir: Path
    memory_mb: int
    cold_fraction: float
    target_ms: float
    cold_target_ms: float
    results: Path
    progress: bool
    model_base: str | None = None  # e.g. s3://bucket/prefix: MODEL_URI there instead of models_dir


class Progress:
    """A one-line progress bar on stderr (only on a terminal, or when asked)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled

    def step(self, label: str) -> None:
        self.done += 1
        if self.enabled:
            filled = 30 * self.done // self.total
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {label:<16}")
            if self.done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def child_command(variant: str, models_dir: Path | str, warm: int, *python_flags: str) -> list[str]:
    """``python -S``: no .pth files run at start-up. Our editable install's finder alone costs
    ~10 ms per interpreter and has no counterpart on Lambda; the child puts the project and
    site-packages on ``sys.path`` itself, as Lambda's task root is."""
    paths = os.pathsep.join([str(PROJECT_ROOT), *site.getsitepackages()])
    chosen = VARIANTS[variant]
    environment = ";".join(f"{key}={value}" for key, value in chosen.environment(str(models_dir)).items())
    return [
        sys.executable, "-S", *python_flags, str(CHILD), paths, chosen.handler,
        chosen.model_format, chosen.input_path, environment, str(warm),
    ]  # fmt: skip


def run_trial(variant: str, config: ColdstartConfig) -> dict:
    command = child_command(variant, config.model_base or config.models_dir, config.warm)
    spawned = time.perf_counter_ns()
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"variant {variant}: the trial failed: {tail[0]}")
    child = json.loads(completed.stdout.strip().splitlines()[-1])
    instants = child["instants"]
    phases_ns = {
        "interpreter": instants["ready"] - spawned,
        "imports": sum(child["imports_ns"].values()),
        "handler_code": instants["handler_code_ns"],
        "load": instants["load_ns"],
        "first_invoke": instants["first_invoke_ns"],
    }
    return {
        "variant": variant,
        "cold_start_ns": instants["first_done"] - spawned,
        "phases_ns": phases_ns,
        "imports_ns": child["imports_ns"],
        "warm_ns": child["warm_ns"],
        "peak_rss_kb": child["peak_rss_kb"],
        "body": child["body"],
    }


def _model_bytes(config: ColdstartConfig, variant: str) -> int | None:
    try:
        manifest = json.loads((config.models_dir / "manifest.json").read_text(encoding="utf-8"))
        return int(manifest["artifacts"][VARIANTS[variant].artifact]["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summarize_variant(variant: str, trials: list[dict], config: ColdstartConfig) -> dict:
    cold = summarize([trial["cold_start_ns"] / 1e6 for trial in trials], f"{variant} cold start")
    warm = LatencyRecorder("ns")
    for trial in trials:
        if trial["warm_ns"]:
            warm.add_encoded(trial["warm_ns"])
    warm_summary = warm.summary()
    phases = {name: summarize([t["phases_ns"][name] / 1e6 for t in trials]).p50 for name in PHASES}
    libraries = sorted({name for trial in trials for name in trial["imports_ns"]})
    imports = {name: summarize([t["imports_ns"][name] / 1e6 for t in trials]).p50 for name in libraries}
    init_ms = cold.p50 - phases["first_invoke"]
    cost = cost_per_million(warm_summary.p50 / 1_000, cold.p50, config.memory_mb, config.cold_fraction)
    misses = []
    if warm_summary.p99 > config.target_ms * 1_000:
        misses.append(f"warm p99 {warm_summary.p99:.1f} µs > {config.target_ms:g} ms")
    if cold.p50 > config.cold_target_ms:
        misses.append(f"cold start p50 {cold.p50:.1f} ms > {config.cold_target_ms:g} ms")
    return {
        "name": variant,
        "handler": VARIANTS[variant].handler,
        "model_format": VARIANTS[variant].model_format,
        "input_path": VARIANTS[variant].input_path,
        "cold_start_ms": cold.to_dict(),
        "phases_ms": phases,
        "imports_ms": imports,
        "init_ms": init_ms,
        "warm_us": warm_summary.to_dict(),
        "peak_rss_mb": round(max(trial["peak_rss_kb"] for trial in trials) / 1024, 1),
        "model_bytes": _model_bytes(config, variant),
        "cost_per_million_usd": round(cost, 4),
        "verdict": "FAIL" if misses else "PASS",
        "misses": misses,
    }


def measure(config: ColdstartConfig) -> dict:
    progress = Progress(config.trials * len(config.variants), config.progress)
    raw: dict[str, list[dict]] = {variant: [] for variant in config.variants}
    partial = False
    try:
        for _ in range(config.trials):
            for variant in config.variants:  # interleaved: A B C A B C ...
                raw[variant].append(run_trial(variant, config))
                progress.step(variant)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep the complete rounds measured so far
        partial = True
        rounds = min(len(trials) for trials in raw.values())
        if rounds == 0:
            raise
        raw = {variant: trials[:rounds] for variant, trials in raw.items()}
    rows = [summarize_variant(variant, raw[variant], config) for variant in config.variants]
    add_ratios(rows)
    return {
        "kind": "coldstart",
        "schema_version": SCHEMA_VERSIONS["coldstart"],
        "mode": "process",
        "metadata": Metadata.collect(_options(config)).to_dict(),
        "partial": partial,
        "variants": rows,
        "trials": {variant: [_raw_row(trial) for trial in trials] for variant, trials in raw.items()},
        "verdict": "FAIL" if any(row["verdict"] == "FAIL" for row in rows) else "PASS",
    }


def _raw_row(trial: dict) -> dict:
    return {key: trial[key] for key in ("cold_start_ns", "phases_ns", "imports_ns", "warm_ns", "peak_rss_kb")}


def _options(config: ColdstartConfig) -> dict:
    return {
        "variants": list(config.variants),
        "trials": config.trials,
        "warm": config.warm,
        "memory_mb": config.memory_mb,
        "cold_fraction": config.cold_fraction,
        "target_ms": config.target_ms,
        "cold_target_ms": config.cold_target_ms,
        "models": str(config.models_dir),
        "model_base": config.model_base,
    }


def add_ratios(rows: list[dict]) -> None:
    tutorial = next((row for row in rows if row["name"] == "tutorial"), None)
    for row in rows:
        if tutorial is None:
            row["cold_speedup_vs_tutorial"] = row["warm_speedup_vs_tutorial"] = None
            continue
        row["cold_speedup_vs_tutorial"] = round(
            tutorial["cold_start_ms"]["p50"] / row["cold_start_ms"]["p50"], 1
        )
        warm = row["warm_us"]["p50"]
        row["warm_speedup_vs_tutorial"] = round(tutorial["warm_us"]["p50"] / warm, 1) if warm else None


def measure_endpoint(function: str, lambda_endpoint: str | None, config: ColdstartConfig) -> dict:
    """Forced cold starts through a Lambda Invoke API (the emulator, or AWS when no endpoint)."""
    from botocore.config import Config

    from handler.aws.clients import client as aws_client

    client = aws_client("lambda", lambda_endpoint, config=Config(retries={"total_max_attempts": 1}))
    payload = json.dumps({"queryStringParameters": dict(TUTORIAL_QUERY)}).encode()
    trials, warm = [], LatencyRecorder("us")
    progress = Progress(config.trials, config.progress)
    for trial in range(config.trials):
        current = client.get_function_configuration(FunctionName=function)
        variables = dict(current.get("Environment", {}).get("Variables", {}))
        variables["BENCH_FORCE_COLD"] = f"{time.time_ns()}-{trial}"
        client.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
        client.get_waiter("function_updated").wait(FunctionName=function)
        started = time.perf_counter_ns()
        response = client.invoke(FunctionName=function, LogType="Tail", Payload=payload)
        response["Payload"].read()
        client_ns = time.perf_counter_ns() - started
        report = ReportLine.parse(base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace"))
        if report is None or "FunctionError" in response:
            raise RuntimeError(f"{function}: trial {trial}: no REPORT line or a function error")
        for _ in range(config.warm):
            started = time.perf_counter_ns()
            client.invoke(FunctionName=function, Payload=payload)["Payload"].read()
            warm.record_ns(time.perf_counter_ns() - started)
        trials.append({"client_first_ns": client_ns, "report": report.to_dict()})
        progress.step(function)
    init = summarize([t["report"]["init_duration_ms"] or 0.0 for t in trials], f"{function} init duration")
    first = summarize([t["client_first_ns"] / 1e6 for t in trials], f"{function} first request")
    billed_cold = summarize([t["report"]["billed_duration_ms"] for t in trials]).p50
    memory = trials[0]["report"]["memory_size_mb"]
    cost = cost_per_million(warm.summary().p50 / 1_000, billed_cold, memory, config.cold_fraction)
    return {
        "kind": "coldstart",
        "schema_version": SCHEMA_VERSIONS["coldstart"],
        "mode": "endpoint",
        "metadata": Metadata.collect(
            {**_options(config), "function": function, "lambda_endpoint": lambda_endpoint}
        ).to_dict(),
        "variants": [
            {
                "name": function,
                "cold_start_ms": first.to_dict(),
                "init_duration_ms": init.to_dict(),
                "trials_with_init_duration": sum(
                    1 for t in trials if t["report"]["init_duration_ms"] is not None
                ),
                "warm_us": warm.summary().to_dict(),
                "peak_rss_mb": max(t["report"]["max_memory_used_mb"] for t in trials),
                "memory_mb": memory,
                "cost_per_million_usd": round(cost, 4),
            }
        ],
        "trials": {function: trials},
    }


def format_table(document: dict) -> str:
    if document["mode"] == "endpoint":
        row = document["variants"][0]
        cold, init, warm = row["cold_start_ms"], row["init_duration_ms"], row["warm_us"]
        return (
            f"{row['name']}: first request p50 {cold['p50']:.1f} ms ({cold['min']:.1f}-{cold['max']:.1f}), "
            f"Init Duration p50 {init['p50']:.1f} ms on {row['trials_with_init_duration']}/{cold['samples']} "
            f"trials; warm client p50 {warm['p50']:.0f} µs p99 {warm['p99']:.0f} µs; "
            f"Max Memory Used {row['peak_rss_mb']} MB; ${row['cost_per_million_usd']:.2f} per million"
        )
    header = (
        f"{'variant':<14}{'cold p50 ms':>12}{'(min-max)':>16}{'interp':>8}{'imports':>9}{'load':>8}"
        f"{'1st inv':>9}{'warm p50 µs':>12}{'p99 µs':>9}{'RSS MB':>8}{'$/M':>8}{'x tut.':>8}  verdict"
    )
    lines = [header, "-" * len(header)]
    for row in document["variants"]:
        cold, phases, warm = row["cold_start_ms"], row["phases_ms"], row["warm_us"]
        ratio = row["cold_speedup_vs_tutorial"]
        imports = phases["imports"] + phases["handler_code"]
        spread = f"({cold['min']:.0f}-{cold['max']:.0f})"
        ratio_text = "" if ratio is None else f"{ratio:.1f}x"
        lines.append(
            f"{row['name']:<14}{cold['p50']:>12.1f}{spread:>16}"
            f"{phases['interpreter']:>8.1f}{imports:>9.1f}{phases['load']:>8.1f}"
            f"{phases['first_invoke']:>9.2f}{warm['p50']:>12.1f}{warm['p99']:>9.1f}"
            f"{row['peak_rss_mb']:>8.1f}{row['cost_per_million_usd']:>8.2f}{ratio_text:>8}  {row['verdict']}"
        )
    warnings = [w for row in document["variants"] for w in row["cold_start_ms"]["warnings"]]
    lines += [f"WARNING: {warning}" for warning in warnings]
    lines += [f"{row['name']}: {miss}" for row in document["variants"] for miss in row["misses"]]
    return "\n".join(lines)


def importtime(variant: str, models_dir: Path, top: int = 15) -> list[tuple[str, float]]:
    """The top imports by cumulative time (ms) in one cold start, from ``python -X importtime``."""
    command = child_command(variant, models_dir, 0, "-X", "importtime")
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"variant {variant}: the trial failed")
    rows = []
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = (
            part.strip() for part in line.removeprefix("import time:").split("|")
        )
        rows.append((name.strip(), int(cumulative_us) / 1_000))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:top]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--variants", default="all", help="'all' or names, comma-separated")
    parser.add_argument("--trials", type=positive_int, default=20)
    parser.add_argument("--warm", type=int, default=1_000, help="warm calls per trial (default 1000)")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--memory-mb", type=positive_int, default=128, help="for the cost (default 128)")
    parser.add_argument("--cold-fraction", type=float, default=0.01, help="share of cold invocations")
    parser.add_argument("--target-ms", type=float, default=1.0, help="warm p99 target (default 1)")
    parser.add_argument("--cold-target-ms", type=float, default=100.0, help="cold p50 target (default 100)")
    parser.add_argument(
        "--model-base",
        metavar="URI",
        help="load the models from here, e.g. s3://bucket/prefix (the download is then in the load phase)",
    )
    parser.add_argument("--importtime", metavar="VARIANT", help="show the top imports of one variant")
    parser.add_argument("--function", help="endpoint mode: the Lambda function name")
    parser.add_argument("--lambda-endpoint", help="endpoint mode: Invoke API URL (default: AWS)")
    parser.add_argument("--endpoint", help="endpoint mode: the emulator's URL (sets --lambda-endpoint)")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (
        args.warm < 0
        or not 0.0 <= args.cold_fraction <= 1.0
        or args.target_ms <= 0
        or args.cold_target_ms <= 0
    ):
        parser.error("--warm must be >= 0, --cold-fraction in [0, 1], the targets > 0")
    try:
        variants = tuple(variant.name for variant in select(args.variants))
    except ValueError as exc:
        parser.error(f"--variants {args.variants!r}: {exc}")
    endpoint_mode = bool(args.function or args.endpoint)
    if not endpoint_mode and not (args.models / "manifest.json").is_file():
        parser.error(f"--models {str(args.models)!r}: no manifest.json; run python -m training")
    config = ColdstartConfig(
        variants=variants,
        trials=args.trials,
        warm=args.warm,
        models_dir=args.models.resolve(),
        memory_mb=args.memory_mb,
        cold_fraction=args.cold_fraction,
        target_ms=args.target_ms,
        cold_target_ms=args.cold_target_ms,
        results=args.results or Path("results") / f"coldstart-{utc_stamp()}.json",
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
        model_base=args.model_base.rstrip("/") if args.model_base else None,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    try:
        if args.importtime:
            if args.importtime not in VARIANTS:
                parser.error(f"--importtime {args.importtime!r}: unknown variant")
            for name, milliseconds in importtime(args.importtime, config.models_dir):
                print(f"{milliseconds:>10.1f} ms  {name}")
            return 0
        if endpoint_mode:
            function = args.function or "logit-lean"
            document = measure_endpoint(function, args.lambda_endpoint or args.endpoint, config)
        else:
            document = measure(config)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted before a complete round of trials: nothing written", file=sys.stderr)
        return 130
    write_json_atomic(config.results, document)
    print(format_table(document))
    print(f"results: {config.results}")
    if document.get("partial"):
        print(
            "interrupted: the results hold the complete rounds only and are marked partial", file=sys.stderr
        )
        return 130
    return 1 if document.get("verdict") == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
