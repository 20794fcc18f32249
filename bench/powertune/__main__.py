"""``python -m bench.powertune``: the memory size that meets the target at the lowest cost.

AWS Lambda Power Tuning's question, answered with percentiles and cold starts, without an AWS
account (the local emulator) or with one (``--lambda-endpoint aws``): each function at each
memory size, forced cold starts then warm invocations, judged against ``--target-ms`` at
``--percentile``, priced at ``--cold-fraction``, and a recommendation per strategy
(cost, speed, balanced). The original memory size is restored at the end, also on Ctrl-C,
SIGTERM or an error. ``--calibrate``: instead of the sweep, lambda-perf's hello-world function
at 128 MB here beside lambda-perf's published Init Duration.
``--requests FILE``: each Invoke sends a line of the file (``docs/requests.md``); ``--config
FILE``: the emulator's configuration (its functions; default handler/local/default.toml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli import fraction, percentile, positive_float, positive_int
from bench.functions import FunctionsError, chosen
from bench.powertune.config import (
    AWS_WORDS,
    DEFAULT_FUNCTIONS,
    DEFAULT_MEMORY,
    PowertuneConfig,
    function_names,
    memory_sizes,
)
from bench.powertune.run import run
from bench.powertune.strategy import DEFAULT_BALANCED_WEIGHT, STRATEGIES
from bench.requests import RequestsFileError, read_requests


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.powertune", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--functions",
        type=function_names,
        default=None,
        help=f"comma-separated function names (default {','.join(DEFAULT_FUNCTIONS)}, "
        "or with --config every function of the file)",
    )
    add(
        "--memory",
        type=memory_sizes,
        default=DEFAULT_MEMORY,
        help=f"memory sizes in MB, 128–10240 (default {','.join(map(str, DEFAULT_MEMORY))})",
    )
    add("--cold-trials", type=positive_int, default=10, help="forced cold starts per size (default 10)")
    add("--warm", type=positive_int, default=1000, help="warm invocations per size (default 1000)")
    add("--target-ms", type=positive_float, default=1.0, help="warm Duration target (default 1 ms)")
    add("--percentile", type=percentile, default=99.0, help="the percentile judged (default 99)")
    add("--strategy", choices=STRATEGIES, default="cost", help="the recommendation that sets the exit code")
    add(
        "--balanced-weight",
        type=fraction,
        default=DEFAULT_BALANCED_WEIGHT,
        help="balanced: 0 = fastest, 1 = cheapest (Power Tuning's balancedWeight, default 0.5)",
    )
    add("--cold-fraction", type=fraction, default=0.01, help="share of invocations that are cold (0.01)")
    add("--max-error-rate", type=fraction, default=0.001, help="failed Invokes allowed per size (0.001)")
    add(
        "--lambda-endpoint",
        metavar="URL|aws",
        help="a Lambda Invoke API (e.g. a running emulator), or 'aws' for AWS itself; "
        "default: start the local emulator",
    )
    add("--region", help="AWS region (default: boto3's configuration)")
    add(
        "--allow-host-model",
        action="store_true",
        help="sweep even when the emulator enforces no CPU share (the host resource model)",
    )
    add(
        "--calibrate",
        action="store_true",
        help="instead of the sweep: lambda-perf's hello-world function at 128 MB vs lambda-perf's figure",
    )
    add("--models", type=Path, help="the local emulator's models directory (default models/)")
    add(
        "--config",
        type=Path,
        metavar="FILE",
        help="the emulator's configuration (handler.serve --config; default handler/local/default.toml): "
        "the one started here, or the one --lambda-endpoint runs (its functions and API settings)",
    )
    add(
        "--requests",
        type=Path,
        metavar="FILE",
        help="a requests file (docs/requests.md): each Invoke sends a line drawn by weight, an HTTP "
        "line as API Gateway's proxy event, an 'event' line as is (default: the tutorial's query)",
    )
    add("--results", type=Path, help="default results/powertune-<UTC>.json")
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    endpoint = args.lambda_endpoint
    aws = endpoint in AWS_WORDS
    if endpoint is not None and not aws and not endpoint.startswith(("http://", "https://")):
        parser.error(f"--lambda-endpoint: expected an http(s) URL or 'aws', not {endpoint!r}")
    if args.models is not None and not args.models.is_dir():
        parser.error(f"--models {str(args.models)!r}: not a directory")
    if args.config is not None and aws:
        parser.error("--config is an emulator's configuration: not with --lambda-endpoint aws")
    try:
        functions = args.functions
        if (endpoint is None or args.config is not None) and not args.calibrate:
            functions = chosen(args.config, args.functions, DEFAULT_FUNCTIONS)
        if args.requests is not None:
            read_requests(args.requests)
    except (FunctionsError, RequestsFileError) as exc:
        print(f"python -m bench.powertune: {exc}", file=sys.stderr)
        return 2
    config = PowertuneConfig(
        functions=functions or DEFAULT_FUNCTIONS,
        memory_mb=args.memory,
        cold_trials=args.cold_trials,
        warm=args.warm,
        target_ms=args.target_ms,
        percentile=args.percentile,
        strategy=args.strategy,
        balanced_weight=args.balanced_weight,
        cold_fraction=args.cold_fraction,
        max_error_rate=args.max_error_rate,
        lambda_endpoint=None if aws else endpoint,
        aws=aws,
        region=args.region,
        allow_host_model=args.allow_host_model,
        calibrate=args.calibrate,
        models=args.models,
        results=args.results,
        requests=args.requests,
        emulator_config=args.config,
    )
    given = sys.argv[1:] if argv is None else argv
    return run(config, [Path(sys.executable).name, "-m", "bench.powertune", *given])


if __name__ == "__main__":
    sys.exit(main())
