"""``python -m bench.fidelity``: one table, each row an AWS figure beside the emulator's.

Rows: pwrdrvr/lambda-throttling's experiment at five sizes (mean iteration wall over the
unthrottled one, CPU share, iterations at multiples of 20 ms), the same CPU-bound job's
128/1,769 MB Duration ratio over rounds and emulators, lambda-perf's hello-world (the host factor,
reported; the cold invocation's Duration, judged), and epsagon's Fibonacci Duration at each size
over 3,008 MB. ``--quick`` (about 25 s) is what ``python -m bench`` runs. Exit codes: 0 every
judged row within tolerance, 1 some row outside or not judged, 2 bad input or no CPU share here
(host model), 130 on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli import positive_float, positive_int
from bench.fidelity.run import FidelityConfig, HostModel, measure_all, results_path
from bench.powertune.session import Interrupted, interruptible
from bench.process import ChildError
from bench.results import write_json_atomic
from bench.results.fidelity import FidelityRun

EXIT_OK, EXIT_OUTSIDE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="the short run (about 25 s) the pipeline makes")
    add("--results", type=Path, default=None, help="results file (default results/fidelity-<UTC>.json)")
    add("--seconds", type=positive_float, default=None, help="throttling loop per size (default 5; quick 1)")
    add("--rounds", type=positive_int, default=None, help="stability rounds in one emulator (default 5)")
    add("--emulators", type=int, default=None, help="further emulators, one round each (default 5)")
    add("--cold-trials", type=positive_int, default=None, help="hello-world cold starts (default 10)")
    add(
        "--no-cpu-tick",
        action="store_true",
        help="for comparison: the kernel's CFS quota alone (LAMBDA_EMULATOR_CPU_TICK_US=0)",
    )
    add(
        "--shield",
        action="store_true",
        help="on a machine busy with other work: the environments' top cgroup weighs ten processes",
    )
    return parser


def config_from(args: argparse.Namespace) -> FidelityConfig:
    given = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "emulators": args.emulators,
        "cold_trials": args.cold_trials,
    }
    overrides = {key: value for key, value in given.items() if value is not None}
    overrides.update(results=args.results, cpu_tick=not args.no_cpu_tick, shield=args.shield)
    if overrides.get("emulators", 0) < 0:
        raise ValueError("--emulators must be 0 or more")
    return FidelityConfig.quick_run(**overrides) if args.quick else FidelityConfig(**overrides)


def table_lines(run: FidelityRun) -> list[str]:
    """The table as text: figure, AWS, here, ratio, verdict (the source in the results file)."""
    width = max([66, *(len(row.figure) for row in run.rows)])
    lines = [f"{'figure':<{width}} {'AWS':>9} {'here':>9} {'ratio':>6}  verdict"]
    for row in run.rows:
        local = "-" if row.local is None else f"{row.local:.3g}"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        tolerance = f" (±{row.tolerance:.0%})" if row.tolerance is not None else ""
        lines.append(f"{row.figure:<{width}} {row.aws:>9.3g} {local:>9} {ratio:>6}  {row.verdict}{tolerance}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"python -m bench.fidelity: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = results_path(config)
    log_dir = path.parent / f"{path.stem}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        with interruptible():  # SIGTERM unwinds like Ctrl-C: every emulator is stopped
            run = measure_all(config, log_dir, lambda line: print(line, flush=True))
    except HostModel as exc:
        print(f"python -m bench.fidelity: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ChildError, RuntimeError) as exc:
        print(f"python -m bench.fidelity: {exc}", file=sys.stderr)
        return EXIT_OUTSIDE
    except (KeyboardInterrupt, Interrupted):
        print("python -m bench.fidelity: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    write_json_atomic(path, run)
    for line in table_lines(run):
        print(line)
    print(f"{run.summary} ({path})")
    return EXIT_OK if run.within == run.judged else EXIT_OUTSIDE


if __name__ == "__main__":
    sys.exit(main())
