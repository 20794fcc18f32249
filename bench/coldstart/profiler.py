"""``python -m bench.coldstart``: what a cold start costs, variant by variant, phase by phase.

**Process mode** (default, :mod:`bench.coldstart.process`). Each trial is a fresh interpreter
(``bench/coldstart/child.py``), as a new Lambda environment is; trials are interleaved across
variants (A B C A B C …) so drift hits all alike. From the parent's spawn instant:
*interpreter* (to the child's first statement), *imports* (each library apart, then the
handler's own code), *load* (the handler module's import: read + sha256 check + deserialize),
*first invoke*; their sum is the cold start to first prediction. Then ``--warm`` calls, p50/p99
in µs; peak RSS. Not measured: Lambda's sandbox and runtime start-up (the endpoint mode has
them), downloading the package.
``--handler module.function --code-dir DIR`` profiles any handler the same way: the code
directory first on ``sys.path``, the libraries it imports from outside the standard library
(found once with ``-X importtime``) each imported apart, then the handler module (*load*).
``--requests FILE``: the event of each call (``docs/requests.md``).

**Endpoint mode** (``--function NAME --lambda-endpoint URL``: the local emulator or AWS;
:mod:`bench.coldstart.endpoint`). Per trial, UpdateFunctionConfiguration changes an
environment variable (how lambda-perf forces a cold start), then ``Invoke`` with
``LogType=Tail``: the REPORT line's Init Duration, Duration, Billed Duration and Max Memory
Used, and the client-side time of that first call and of ``--warm`` following ones.
``--requests FILE``: each Invoke's payload is a line of the file (an HTTP line as API
Gateway's proxy event for it, built for ``--config FILE``'s API); default: the tutorial's query.

Cost per million predictions: :mod:`bench.lambdacost` (Power Tuning's formula);
``--cold-fraction`` of invocations pay the billed INIT. Gates (:mod:`bench.coldstart.gates`):
warm p99 against ``--target-ms`` (early-stopping bound: 459 warm calls at least), cold p50
against ``--cold-target-ms`` (process mode: default 100; endpoint mode: the first request,
only when given). Exit code 0 PASS, 1 FAIL (or the measurement failed), 3 INVALID (too few
samples to claim the targets), 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bench.cli import fraction, positive_int
from bench.coldstart.config import ColdstartConfig
from bench.coldstart.endpoint import measure_endpoint
from bench.coldstart.process import importtime, measure
from bench.functions import FunctionsError, chosen
from bench.requests import RequestsFileError, read_requests
from bench.results import EXIT_CODES, PASS, utc_stamp, write_json_atomic
from bench.results.coldstart import ColdstartEndpointRun, ColdstartRun
from bench.verdict import Limits
from handler.manifest import ManifestError
from handler.manifest import read as read_manifest
from handler.tutorial import is_tutorial
from handler.variants import VARIANTS, applicability, select

DEFAULT_COLD_TARGET_MS = 100.0


def _failed_gates(gates: list) -> list[str]:
    return [gate.message for gate in gates if gate.status != PASS]


def format_endpoint(document: ColdstartEndpointRun) -> str:
    """One line (ms where the table has always said ms), then every gate that did not pass,
    the error share first."""
    first, init, warm = document.first_request_us, document.init_duration_us, document.warm_us
    if first is None:
        lines = [f"{document.function}: no cold Invoke succeeded; outcomes {document.outcomes}"]
    else:
        on = f"on {document.trials_with_init_duration}/{first.samples} trials"
        init_text = f"Init Duration p50 {init.p50 / 1_000:.1f} ms {on}" if init else f"no Init Duration {on}"
        lines = [
            f"{document.function}: first request p50 {first.p50 / 1_000:.1f} ms "
            f"({first.min / 1_000:.1f}-{first.max / 1_000:.1f}), {init_text}; "
            f"warm client p50 {warm.p50:.0f} µs p99 {warm.p99:.0f} µs; "
            f"Max Memory Used {document.peak_rss_mb} MB; ${document.cost_per_million_usd:.2f} per million"
        ]
    floors = [gate.message for gate in document.gates if gate.check == "floor" and gate.status == PASS]
    return "\n".join(lines + floors + _failed_gates(document.gates))


def format_table(document: ColdstartRun | ColdstartEndpointRun) -> str:
    """The console table of a run (cold and phase figures in ms, warm in µs)."""
    if isinstance(document, ColdstartEndpointRun):
        return format_endpoint(document)
    header = (
        f"{'variant':<14}{'cold p50 ms':>12}{'(min-max)':>16}{'interp':>8}{'imports':>9}{'load':>8}"
        f"{'1st inv':>9}{'warm p50 µs':>12}{'p99 µs':>9}{'RSS MB':>8}{'$/M':>8}{'x tut.':>8}  verdict"
    )
    lines = [header, "-" * len(header)]
    for row in document.variants:
        cold, phases, warm = row.cold_start_us, row.phases_us, row.warm_us
        ratio = row.cold_speedup_vs_tutorial
        spread = f"({cold.min / 1_000:.0f}-{cold.max / 1_000:.0f})"
        ratio_text = "" if ratio is None else f"{ratio:.1f}x"
        lines.append(
            f"{row.name:<14}{cold.p50 / 1_000:>12.1f}{spread:>16}"
            f"{phases.interpreter / 1_000:>8.1f}{(phases.imports + phases.handler_code) / 1_000:>9.1f}"
            f"{phases.load / 1_000:>8.1f}{phases.first_invoke / 1_000:>9.2f}{warm.p50:>12.1f}{warm.p99:>9.1f}"
            f"{row.peak_rss_mb:>8.1f}{row.cost_per_million_usd:>8.2f}{ratio_text:>8}  {row.status}"
        )
    lines += [f"WARNING: {warning}" for row in document.variants for warning in row.cold_start_us.warnings]
    lines += [message for row in document.variants for message in _failed_gates(row.gates)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--variants", default="all", help="'all' or names, comma-separated")
    parser.add_argument("--trials", type=positive_int, default=20)
    parser.add_argument("--warm", type=int, default=1_000, help="warm calls per trial (default 1000)")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--memory-mb", type=positive_int, default=128, help="for the cost (default 128)")
    parser.add_argument("--cold-fraction", type=fraction, default=0.01, help="share of cold invocations")
    parser.add_argument("--target-ms", type=float, default=1.0, help="warm p99 target (default 1)")
    parser.add_argument(
        "--cold-target-ms",
        type=float,
        default=None,
        help=f"cold p50 target (process mode default {DEFAULT_COLD_TARGET_MS:g}; endpoint mode: none)",
    )
    parser.add_argument(
        "--model-base",
        metavar="URI",
        help="load the models from here, e.g. s3://bucket/prefix (the download is then in the load phase)",
    )
    parser.add_argument("--importtime", metavar="VARIANT", help="show the top imports of one variant")
    parser.add_argument(
        "--handler",
        metavar="MODULE.FUNCTION",
        help="process mode: profile any handler (instead of --variants), imported from --code-dir",
    )
    parser.add_argument(
        "--code-dir", type=Path, default=None, help="--handler: the function's code directory (default .)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="--handler: an environment variable (repeatable)",
    )
    parser.add_argument(
        "--requests",
        type=Path,
        metavar="FILE",
        help="the event each call sends: a requests file's line drawn by weight (docs/requests.md); "
        "an HTTP line as API Gateway's proxy event, an 'event' line as is (default: the tutorial's query)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="endpoint mode: the emulator configuration (--function must be in it; the events' API)",
    )
    parser.add_argument("--function", help="endpoint mode: the Lambda function name")
    parser.add_argument("--lambda-endpoint", help="endpoint mode: Invoke API URL (default: AWS)")
    parser.add_argument("--endpoint", help="endpoint mode: the emulator's URL (sets --lambda-endpoint)")
    parser.add_argument(
        "--max-error-rate",
        type=float,
        default=0.001,
        help="endpoint mode: share of Invokes that may fail before the verdict is FAIL (default 0.001)",
    )
    parser.add_argument(
        "--floor-function",
        help="endpoint mode: a no-op function measured beside the warm calls, the floor (default "
        "floor-noop through an emulator, none on AWS; 'none' for none)",
    )
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    return parser


def parse_config(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> tuple[ColdstartConfig, str | None]:
    """The run's config and ``--importtime``'s variant; argparse errors (exit 2) for bad values."""
    args = parser.parse_args(argv)
    bad_target = args.target_ms <= 0 or (args.cold_target_ms is not None and args.cold_target_ms <= 0)
    if args.warm < 0 or not 0.0 <= args.cold_fraction <= 1.0 or bad_target:
        parser.error("--warm must be >= 0, --cold-fraction in [0, 1], the targets > 0")
    if not 0.0 <= args.max_error_rate <= 1.0:
        parser.error(f"--max-error-rate {args.max_error_rate!r}: must be in [0, 1]")
    endpoint_mode = bool(args.function or args.endpoint)
    variant_mode = args.handler is None and not endpoint_mode and not args.importtime
    # process mode on a models directory: "all" is every variant that applies to its model
    # (a manifest it cannot read: the tutorial's variants, as before; the trials say what is wrong)
    models_dir = args.models if variant_mode and _readable(args.models) else None
    try:
        variants = tuple(variant.name for variant in select(args.variants, models_dir))
    except ValueError as exc:
        parser.error(f"--variants {args.variants!r}: {exc}")
    skipped = skipped_variants(args.variants, models_dir)
    if args.handler is not None and (endpoint_mode or args.importtime):
        parser.error("--handler is process mode: omit --function/--endpoint/--importtime")
    if args.handler is not None and ("." not in args.handler or not all(args.handler.rsplit(".", 1))):
        parser.error(f"--handler {args.handler!r}: expected module.function")
    code_dir = (args.code_dir or Path(".")).resolve()
    if args.handler is not None and not code_dir.is_dir():
        parser.error(f"--code-dir {str(args.code_dir)!r}: not a directory")
    if args.config is not None and not endpoint_mode:
        parser.error("--config is for endpoint mode (--function NAME --endpoint URL)")
    bad_env = [item for item in args.env if "=" not in item or ";" in item]
    if bad_env:
        parser.error(f"--env {bad_env[0]!r}: expected KEY=VALUE (no ';')")
    try:
        if args.requests is not None:
            read_requests(args.requests)
        if args.config is not None:
            chosen(args.config, [args.function or "logit-lean"])
    except (RequestsFileError, FunctionsError) as exc:
        print(f"python -m bench.coldstart: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.handler is not None:
        variants = (args.handler,)
    elif not endpoint_mode and not (args.models / "manifest.json").is_file():
        parser.error(f"--models {str(args.models)!r}: no manifest.json; run python -m training")
    if args.importtime and args.importtime not in VARIANTS:
        parser.error(f"--importtime {args.importtime!r}: unknown variant")
    requests = args.requests
    if requests is None and variant_mode:
        requests = model_requests(args.models)
    cold_target_ms = args.cold_target_ms
    if cold_target_ms is None and not endpoint_mode:
        cold_target_ms = DEFAULT_COLD_TARGET_MS
    config = ColdstartConfig(
        variants=variants,
        trials=args.trials,
        warm=args.warm,
        models_dir=args.models.resolve(),
        memory_mb=args.memory_mb,
        cold_fraction=args.cold_fraction,
        target_ms=args.target_ms,
        cold_target_ms=cold_target_ms,
        results=args.results or Path("results") / f"coldstart-{utc_stamp()}.json",
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
        model_base=args.model_base.rstrip("/") if args.model_base else None,
        function=(args.function or "logit-lean") if endpoint_mode else None,
        lambda_endpoint=(args.lambda_endpoint or args.endpoint) if endpoint_mode else None,
        limits=Limits(max_error_rate=args.max_error_rate),
        requests=requests.resolve() if requests is not None else None,
        emulator_config=args.config,
        handler=args.handler,
        code_dir=code_dir if args.handler is not None else None,
        handler_env=tuple(tuple(item.split("=", 1)) for item in args.env),  # type: ignore[misc]
        floor_function=floor_function(args, endpoint_mode),
        skipped=skipped,
    )
    return config, args.importtime


def _readable(models_dir: Path) -> bool:
    try:
        read_manifest(models_dir / "manifest.json")
    except (ManifestError, OSError):
        return False
    return True


def skipped_variants(names: str, models_dir: Path | None) -> tuple[tuple[str, str], ...]:
    """``--variants all`` on a models directory: (variant, why) of each that does not apply."""
    if names.strip() != "all" or models_dir is None:
        return ()
    return tuple(
        (entry.variant.name, entry.reason) for entry in applicability(models_dir) if entry.reason is not None
    )


def model_requests(models_dir: Path) -> Path | None:
    """A user's model's ``requests.jsonl`` (its manifest names it): the variants' calls send its
    lines, not the tutorial's query (which such a model answers with a 400)."""
    try:
        manifest = read_manifest(models_dir / "manifest.json")
    except (ManifestError, OSError):
        return None
    name = manifest.training.get("requests")
    if is_tutorial(manifest.features) or not isinstance(name, str):
        return None
    path = models_dir / name
    return path if path.is_file() else None


def floor_function(args: argparse.Namespace, endpoint_mode: bool) -> str | None:
    """The floor's function: as given ('none': none), else floor-noop through an emulator."""
    if not endpoint_mode or args.floor_function == "none":
        return None
    if args.floor_function:
        return args.floor_function
    return "floor-noop" if (args.lambda_endpoint or args.endpoint) else None


def main(argv: list[str] | None = None) -> int:
    config, importtime_variant = parse_config(build_parser(), argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    try:
        if importtime_variant:
            for name, cumulative_us in importtime(importtime_variant, config.models_dir):
                print(f"{cumulative_us / 1_000:>10.1f} ms  {name}")
            return 0
        document = measure_endpoint(config) if config.function else measure(config)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted before a complete round of trials: nothing written", file=sys.stderr)
        return 130
    write_json_atomic(config.results, document)
    print(format_table(document))
    print(f"results: {config.results}")
    if isinstance(document, ColdstartRun) and document.partial:
        print(
            "interrupted: the results hold the complete rounds only and are marked partial", file=sys.stderr
        )
        return 130
    return EXIT_CODES[document.status]


if __name__ == "__main__":
    sys.exit(main())
