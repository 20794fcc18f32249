"""Both versions under the same load runs: ``python -m bench.sidebyside``.

    python -m bench.sidebyside --config both.toml staging/model-main staging/model-pr --runs 3
    python -m bench.compare results/side-by-side-<UTC> \\
        --side-by-side staging/model-main staging/model-pr --figure "in-handler p50" --fail-on-regression 5%

The two versions are two functions of one emulator (``--config``: two ``[[functions]]`` blocks
alike but for their code or model) or of any running API (``--host URL``). Every run is one
open-loop Locust run sending ``--rate`` requests per second to each function, their requests
interleaved at random, so what the host does to one during the run it does to the other: duet
benchmarking (Bulej et al., "Duet Benchmarking: Improving Measurement Accuracy in the Cloud",
Empirical Software Engineering 25, 2020). ``bench.compare --side-by-side`` then pairs run *i*
of one with run *i* of the other (docs/compare.md, "Side by side").

This module measures and writes the runs' results files (``locust-side-by-side-<k>.json``); it
judges nothing and prints the ``bench.compare`` command that does. Every process it starts is
stopped in a ``finally``.

Exit codes: 0 every run written; 1 a run or the emulator failed (its log is named); 2 bad input
(or Locust refused its options); 130 Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.cli import positive_float, positive_int
from bench.functions import FunctionsError
from bench.functions import load as load_functions
from bench.load.command import LocustCommand
from bench.pipeline import LOCUST_OK, StageFailed, run_stage, warm_up
from bench.process import ChildError, running_emulator
from bench.requests import RequestsFileError, read_requests
from bench.results import LocustRun, read_document, utc_stamp

PROG = "python -m bench.sidebyside"
# Two environments each (the open loop's bursts), warmed before the first run: the runs measure
# warm environments, not cold starts sharing the host's CPUs (docs/load.md, "Warm-up").
WARM_ENVIRONMENTS = 2
# STAGE/NAME: a function name as Lambda's CreateFunction allows it (letters, digits, hyphens,
# underscores; API reference, "FunctionName"), under a stage of the same characters
FUNCTION_PATH = re.compile(r"[A-Za-z0-9_-]+/[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class SideBySide:
    functions: tuple[str, str]  # STAGE/NAME, as Locust's --function and bench.compare take them
    out: Path
    runs: int = 3
    seconds: int = 10
    rate: float = 50.0  # req/s to each function
    target_ms: float = 100.0
    config: Path | None = None
    host: str | None = None
    requests: Path | None = None

    def run_file(self, run: int) -> Path:
        return self.out / f"locust-side-by-side-{run}.json"

    def compare_command(self, figure: str = "in-handler p50") -> str:
        words = [sys.executable, "-m", "bench.compare", str(self.out), "--side-by-side", *self.functions]
        words += ["--figure", figure, "--fail-on-regression", "5%"]
        return shlex.join(words)

    def figure(self) -> str:
        """The figure to gate on: the in-handler p50 when both functions report their handler's
        time (``Server-Timing``) in every run, else the end-to-end p50."""
        for run in range(1, self.runs + 1):
            document = read_document(self.run_file(run))
            assert isinstance(document, LocustRun)
            if any(not document.endpoints[name].handler_us.count for name in self.functions):
                return "end-to-end p50"
        return "in-handler p50"


def parse(argv: list[str]) -> SideBySide:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("baseline", metavar="BASELINE_FUNCTION", help="STAGE/NAME, e.g. staging/model-main")
    parser.add_argument("new", metavar="NEW_FUNCTION", help="STAGE/NAME, e.g. staging/model-pr")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="start the emulator with this configuration (TOML)")
    where.add_argument("--host", help="a running API's base URL, e.g. http://127.0.0.1:3000")
    parser.add_argument("--runs", type=positive_int, default=3, help="Locust runs (default 3)")
    parser.add_argument("--seconds", type=positive_int, default=10, help="each run's length (default 10)")
    parser.add_argument(
        "--rate", type=positive_float, default=50.0, help="req/s to EACH function (default 50)"
    )
    parser.add_argument(
        "--target-ms", type=positive_float, default=100.0, help="each run's SLO (default 100)"
    )
    parser.add_argument("--requests", type=Path, help="a requests file (docs/requests.md) for both")
    parser.add_argument("--out", type=Path, help="the runs' folder (default results/side-by-side-<UTC>)")
    args = parser.parse_args(argv)
    functions = (args.baseline.strip("/"), args.new.strip("/"))
    for function in functions:
        if not FUNCTION_PATH.fullmatch(function):
            parser.error(f"{function!r}: a function is STAGE/NAME, e.g. staging/model-main")
    if functions[0] == functions[1]:
        parser.error("BASELINE_FUNCTION and NEW_FUNCTION are the same function")
    if args.host is not None:
        try:
            url = urlsplit(args.host)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            url = urlsplit("")
        if url.scheme not in ("http", "https") or not url.hostname:
            parser.error(f"--host {args.host!r}: not an http(s) URL, e.g. http://127.0.0.1:3000")
    try:
        if args.config is not None:
            deployed = load_functions(args.config)
            names = {f"{deployed.stage}/{function.name}" for function in deployed.functions}
            if missing := [function for function in functions if function not in names]:
                parser.error(
                    f"{args.config} has no function {', '.join(missing)} (it has {', '.join(sorted(names))})"
                )
        if args.requests is not None:
            read_requests(args.requests).require_http(PROG)
    except (FunctionsError, RequestsFileError, OSError) as exc:
        parser.error(str(exc))
    # The children (emulator, Locust) run from the project's folder: every path made absolute.
    out = (args.out or Path("results") / f"side-by-side-{utc_stamp()}").resolve()
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out}: not a folder")
    if earlier := sorted(out.glob("*.json")):
        # bench.compare reads every results file of the folder: runs of an earlier measurement
        # would be paired with these ones (and a failed run would leave a mixed set)
        parser.error(
            f"--out {out} already holds results files ({earlier[0].name}, …): "
            "remove them or choose another folder"
        )
    if args.runs < 3:
        print(f"{PROG}: warning: {args.runs} run(s): bench.compare needs at least 3 to judge (exit 3)",
              file=sys.stderr)  # fmt: skip
    return SideBySide(
        functions, out, args.runs, args.seconds, args.rate, args.target_ms,
        args.config.resolve() if args.config is not None else None, args.host,
        args.requests.resolve() if args.requests is not None else None,
    )  # fmt: skip


@contextmanager
def _api(plan: SideBySide) -> Iterator[str]:
    """The base URL: the emulator started for the ``with`` block, or ``--host``."""
    if plan.host is not None:
        yield plan.host.rstrip("/")
        return
    assert plan.config is not None
    with running_emulator(None, plan.out, "--config", str(plan.config)) as emulator:
        print(f"  emulator on {emulator.base_url}")
        yield emulator.base_url


def measure(plan: SideBySide) -> list[Path]:
    """Warm both functions, then the runs; the results files, in run order."""
    plan.out.mkdir(parents=True, exist_ok=True)
    written = []
    with _api(plan) as base_url:
        for function in plan.functions:
            stage, name = function.split("/", 1)
            warm_up(base_url, name, concurrency=WARM_ENVIRONMENTS, requests_file=plan.requests, stage=stage)
        for run in range(1, plan.runs + 1):
            results = plan.run_file(run)
            command = LocustCommand(
                base_url, plan.functions, results, users=1, spawn_rate=1, run_time_s=plan.seconds,
                arrival="open", rate=plan.rate * len(plan.functions), target_ms=plan.target_ms,
                extra=("--requests", str(plan.requests)) if plan.requests is not None else (),
            )  # fmt: skip
            # Locust's own exit code is its SLO verdict (1 FAIL, 3 INVALID), not this one's
            run_stage(f"locust run {run}/{plan.runs}", command.argv(), results.with_suffix(".log"),
                      LOCUST_OK, timeout_s=plan.seconds + 120, writes=results)  # fmt: skip
            written.append(results)
    return written


def main(argv: list[str] | None = None) -> int:
    """0 every run written; 1 a run or the emulator failed; 2 bad input; 130 on Ctrl-C or
    SIGTERM (a cancelled CI job), every process stopped either way."""
    plan = parse(list(sys.argv[1:] if argv is None else argv))
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C: finally runs
    try:
        measure(plan)
    except StageFailed as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2 if exc.code == 2 else 1
    except ChildError as exc:  # the emulator did not start (its log is named)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    figure = plan.figure()
    note = "" if figure == "in-handler p50" else " (no Server-Timing from the handlers: end to end)"
    print(f"{plan.runs} runs in {plan.out}; compare them with{note}:\n  {plan.compare_command(figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
