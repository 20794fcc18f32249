"""``python -m bench``: the main job, on embedded defaults and offline.

Train (seeded synthetic data unless ``--data``) → cold-start profile of the variants (fresh
processes) → start the local emulator with every variant → cold starts through it → Locust
headless, steady (open loop) then step (closed loop), against the tutorial's function and
the lean one (``--runs N``: N rounds of them, each run's file kept, for ``python -m bench.compare``)
→ ``python -m reports``. Prints the verdict per function, the headline ratios
and the report's path. Defaults take about 5 minutes on 2 cores; ``--quick`` under a minute.
``--model FILE --sample CSV``: the same on a user's scikit-learn model (``bench.modelrun``):
trained into the run folder, every variant that applies profiled, then its reference variant
and the fastest variant measured take the places of the tutorial's function and the lean one.
Exit code 0 when every stage ran (verdicts are reported, not enforced: the tutorial's
function is expected to miss a 1 ms target), 1 when a stage failed, 2 for bad arguments,
130 when interrupted; every process started is stopped in every case.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.cli import positive_float, positive_int
from bench.functions import FunctionsError, chosen
from bench.pipeline import PipelineConfig, Plan, default_run_dir, run
from bench.requests import RequestsFileError, read_requests
from handler.local import cpulatency


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --model is not --models, nor an abbreviation of it
    )
    parser.add_argument("--data", help="training CSV, path or URL (default: seeded synthetic data)")
    parser.add_argument(
        "--models", type=Path, default=Path("models"), help="models directory (default models)"
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default results/run-<UTC>)")
    parser.add_argument("--target-ms", type=positive_float, default=1.0, help="p99 target (default 1 ms)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: under a minute")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="measure the functions of this emulator configuration (docs/requests.md); nothing is trained",
    )
    parser.add_argument(
        "--requests", type=Path, metavar="FILE", help="the requests every stage sends (docs/requests.md)"
    )
    parser.add_argument("--functions", help="with --config: only these functions (comma-separated)")
    parser.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="your fitted scikit-learn estimator (joblib, pickle or skops; loading it runs its code): "
        "measure its reference variant and the fastest variant that applies (docs/main-job.md)",
    )
    parser.add_argument("--sample", type=Path, metavar="CSV", help="with --model: a sample of its inputs")
    parser.add_argument("--label", metavar="COL", help="with --model: the sample's label column (dropped)")
    parser.add_argument(
        "--code-dir", type=Path, metavar="DIR", help="with --model: your module(s) the pipeline needs"
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=1,
        help="repeat the Locust load runs N times, each file kept (python -m bench.compare wants >= 3)",
    )
    parser.add_argument(
        "--low-latency",
        action="store_true",
        help="the emulator holds a 0 µs CPU latency limit (handler.serve --low-latency; needs root)",
    )
    return parser


def model_problem(args: argparse.Namespace) -> str | None:
    """One line when ``--model`` and its companions do not go together, else None."""
    if args.model is None:
        given = [name for name in ("sample", "label", "code_dir") if getattr(args, name) is not None]
        if given:
            return f"--{given[0].replace('_', '-')} goes with --model FILE"
        return None
    if args.sample is None:
        return "--model FILE needs --sample CSV (a sample of the model's inputs)"
    if args.config is not None or args.data or args.functions or args.requests is not None:
        return "--model makes its own config and requests: omit --config, --data, --functions, --requests"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = model_problem(args)
    if problem is not None:
        print(f"python -m bench: {problem}", file=sys.stderr)
        return 2
    if args.low_latency and not os.access(cpulatency.DEVICE, os.W_OK):
        parser.error(f"--low-latency: {cpulatency.DEVICE} is not writable here (needs root)")
    plan = Plan.quick(args.target_ms) if args.quick else Plan.default(args.target_ms)
    if args.config is not None and args.data:
        parser.error("--data trains the tutorial's model; with --config nothing is trained")
    if args.functions and args.config is None:
        parser.error("--functions needs --config (the tutorial's run measures its two functions)")
    functions = PipelineConfig.functions
    try:
        if args.config is not None:
            wanted = (
                [name.strip() for name in args.functions.split(",") if name.strip()]
                if args.functions
                else None
            )
            functions = chosen(args.config.resolve(), wanted)
            plan = plan.for_functions()
        if args.requests is not None:
            read_requests(args.requests)
    except (FunctionsError, RequestsFileError) as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    config = PipelineConfig(
        models=args.models.resolve(),
        data=args.data,
        run_dir=(args.out or default_run_dir()).resolve(),
        plan=plan,
        low_latency=args.low_latency,
        functions=functions,
        emulator_config=args.config.resolve() if args.config is not None else None,
        requests=args.requests.resolve() if args.requests is not None else None,
        runs=args.runs,
        model=args.model.resolve() if args.model is not None else None,
        sample=args.sample.resolve() if args.sample is not None else None,
        label=args.label,
        code_dir=args.code_dir.resolve() if args.code_dir is not None else None,
    )
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
