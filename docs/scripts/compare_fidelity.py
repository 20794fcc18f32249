"""Does ``python -m bench.compare`` hold its false-alarm rate and catch a 15 % slower handler?

For each of ``--pairs`` pairs, three sides of ``--runs`` separate Locust runs each against the
spin function (``bench/compare/spinfunction``: fixed CPU work per invocation), each side with
its own emulator, the sides' runs interleaved (as a CI job measuring baseline and candidate
on one runner should):

- ``base``: ``SPIN_ITERATIONS`` = ``--iterations``;
- ``same``: the same function again (a same-vs-same pair: exit 1 is a false alarm);
- ``slower``: ``--slower`` times the iterations (exit 1 is a detection; the JUnit XML must name
  the figure).

Then ``bench.compare base -- same`` and ``bench.compare base -- slower`` with
``--fail-on-regression``. ``--background-cpu N`` keeps N CPU-bound processes spinning on the
machine throughout (the done-when condition: "with a CPU-bound job running"). Prints the counts
and writes ``summary.json`` in ``--out``. Every process started is stopped (by PID) in a
``finally``.

    python docs/scripts/compare_fidelity.py --pairs 10 --runs 3 --background-cpu 1

``--side-by-side``: as a user measures it (docs/compare.md, "Side by side"): for each of
``same`` and ``slower``, ``python -m bench.sidebyside`` with ``base`` and that version as two
functions of one emulator, every Locust run sending ``--rate`` req/s to each, then
``bench.compare RUNS --side-by-side`` (paired run by run). ``--figure NAME``: only that figure
is compared (``bench.compare --figure``).
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import process  # noqa: E402
from bench.cli import positive_float, positive_int  # noqa: E402
from bench.load.command import LocustCommand  # noqa: E402
from bench.pipeline import warm_up  # noqa: E402
from bench.results import utc_stamp  # noqa: E402

SPIN_DIR = ROOT / "bench" / "compare" / "spinfunction"
FUNCTION = "spin"


def function_block(name: str, iterations: int, memory_mb: int, timing: str) -> str:
    return (
        f'\n[[functions]]\nname = "{name}"\nhandler = "spin.handler"\ncode_dir = "{SPIN_DIR}"\n'
        f'memory_mb = {memory_mb}\n\n[functions.env]\nSPIN_ITERATIONS = "{iterations}"\n'
        f'SPIN_TIMING = "{timing}"\n'
    )


def emulator_config(path: Path, iterations: int, memory_mb: int, timing: str = "wall") -> Path:
    path.write_text('stage = "staging"\nport = 0\n' + function_block(FUNCTION, iterations, memory_mb, timing))
    return path


def start_side(folder: Path, iterations: int, args: argparse.Namespace) -> process.EmulatorProcess:
    """A fresh emulator whose spin function does ``iterations``, warmed."""
    folder.mkdir(parents=True, exist_ok=True)
    config = emulator_config(folder / "emulator.toml", iterations, args.memory_mb, args.timing)
    emulator = process.start_emulator(None, folder / "emulator.log", "--config", str(config))
    try:
        warm_up(emulator.base_url, FUNCTION, concurrency=2)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def locust_run(emulator: process.EmulatorProcess, folder: Path, run: int, args: argparse.Namespace) -> Path:
    """One open-loop Locust run at ``--rate``; its results file. Locust's own exit code is its
    SLO verdict (1 FAIL, 3 INVALID), not this script's concern."""
    results = folder / f"locust-{FUNCTION}-steady-{run}.json"
    command = LocustCommand(
        emulator.base_url, (f"staging/{FUNCTION}",), results, users=1, spawn_rate=1,
        run_time_s=args.seconds, arrival="open", rate=args.rate, target_ms=100,
    )  # fmt: skip
    log = folder / f"locust-{run}.log"
    completed = process.run_to_completion(command.argv(), log, args.seconds + 120, name="locust")
    if completed.returncode not in (0, 1, 3) or not results.is_file():
        raise RuntimeError(f"locust run {run} in {folder}: exit {completed.returncode} (log {log})")
    return results


def measure_pair(folder: Path, args: argparse.Namespace) -> dict[str, Path]:
    """The three sides, each with its own emulator, their runs interleaved round by round
    (base, same, slower; the order rotating) so that a change in the machine's load over the
    minutes hits every side alike rather than one side's runs."""
    work = work_of(args)
    emulators: dict[str, process.EmulatorProcess] = {}
    try:
        for side, iterations in work.items():
            emulators[side] = start_side(folder / side, iterations, args)
        sides = list(work)
        for run in range(1, args.runs + 1):
            for side in sides[run % 3 :] + sides[: run % 3]:
                locust_run(emulators[side], folder / side, run, args)
    finally:
        for emulator in emulators.values():
            emulator.stop()
    return {side: folder / side for side in work}


def measure_side_by_side(folder: Path, side: str, args: argparse.Namespace) -> Path:
    """``base`` and ``side`` (``same`` or ``slower``) as two functions of one emulator, measured
    by ``python -m bench.sidebyside`` exactly as a user runs it: every Locust run sends to both,
    their requests interleaved at random (duet benchmarking). The runs' folder."""
    folder.mkdir(parents=True, exist_ok=True)
    work = work_of(args)
    text = 'stage = "staging"\nport = 0\n'
    for version in ("base", side):
        text += function_block(f"{FUNCTION}-{version}", work[version], args.memory_mb, args.timing)
    config = folder / f"base-{side}.toml"
    config.write_text(text, encoding="utf-8")
    runs = folder / f"base-{side}"
    command = [sys.executable, "-m", "bench.sidebyside", "--config", str(config)]
    command += [f"staging/{FUNCTION}-base", f"staging/{FUNCTION}-{side}", "--out", str(runs)]
    command += ["--runs", str(args.runs), "--seconds", str(args.seconds), "--rate", f"{args.rate:g}"]
    log = folder / f"base-{side}.log"
    deadline_s = args.runs * (args.seconds + 120)
    completed = process.run_to_completion(command, log, deadline_s, name="bench.sidebyside")
    if completed.returncode != 0:
        raise RuntimeError(f"bench.sidebyside in {folder}: exit {completed.returncode} (log {log})")
    return runs


def work_of(args: argparse.Namespace) -> dict[str, int]:
    return {"base": args.iterations, "same": args.iterations, "slower": round(args.iterations * args.slower)}


def compare_command(base: Path, new: Path | str, args: argparse.Namespace) -> list[str]:
    if isinstance(new, str):  # side by side: the runs' folder, and the two functions
        command = [str(base), "--side-by-side", f"staging/{FUNCTION}-base", f"staging/{FUNCTION}-{new}"]
    else:
        command = [str(base), "--", str(new)]
    for figure in args.figure:
        command += ["--figure", figure]
    return [sys.executable, "-m", "bench.compare", *command]


def compare(base: Path, new: Path | str, out: Path, args: argparse.Namespace) -> dict:
    junit = out.with_suffix(".xml")
    command = compare_command(base, new, args)
    command += ["--fail-on-regression", args.fail_on_regression, "--junit", str(junit)]
    command += ["--confidence", str(args.confidence), "--results", str(out.with_suffix(".json"))]
    completed = process.run_to_completion(command, out.with_suffix(".log"), 120, name="bench.compare")
    failed = (
        [
            case.get("name")
            for case in ET.parse(junit).getroot().iter("testcase")
            if case.find("failure") is not None
        ]
        if junit.is_file()
        else []
    )
    return {"exit": completed.returncode, "failed_figures": failed, "console": completed.text()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=positive_int, default=10)
    parser.add_argument("--runs", type=positive_int, default=3, help="Locust runs per side")
    parser.add_argument("--seconds", type=positive_int, default=10, help="each Locust run's length")
    parser.add_argument(
        "--rate", type=positive_float, default=50.0, help="open-loop requests per second (to each function)"
    )
    parser.add_argument("--iterations", type=positive_int, default=20_000, help="the baseline's work")
    parser.add_argument(
        "--slower", type=positive_float, default=1.15, help="the candidate's work / baseline's"
    )
    parser.add_argument("--memory-mb", type=positive_int, default=1769, help="1,769 MB: one vCPU")
    parser.add_argument(
        "--timing",
        choices=("wall", "cpu"),
        default="wall",
        help="what the function reports as its in-handler time: wall (as real handlers) or thread CPU",
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="each version beside base, two functions of one emulator measured together in each run "
        "(python -m bench.sidebyside, then bench.compare --side-by-side)",
    )
    parser.add_argument(
        "--figure", action="append", default=[], help="passed to bench.compare --figure (repeatable)"
    )
    parser.add_argument("--fail-on-regression", default="5%")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--background-cpu", type=int, default=0, help="CPU-bound processes to run meanwhile")
    parser.add_argument("--out", type=Path, help="default: results/compare-fidelity-<UTC>")
    args = parser.parse_args(argv)
    args.out = args.out or Path("results") / f"compare-fidelity-{utc_stamp()}"
    burners = []
    pairs = []
    try:
        for index in range(args.background_cpu):
            burner = [sys.executable, "-c", "while True: pass"]
            burners.append(process.start(burner, args.out / f"cpu-{index}.out", name="CPU-bound job"))
        for pair in range(1, args.pairs + 1):
            folder = args.out / f"pair-{pair}"
            if args.side_by_side:  # same-vs-base first, then slower-vs-base, each its own emulator
                result = {"pair": pair}
                for side in ("same", "slower"):
                    runs = measure_side_by_side(folder, side, args)
                    result[side] = compare(runs, side, folder / f"{side}-vs-base", args)
            else:
                sides = measure_pair(folder, args)
                result = {
                    "pair": pair,
                    "same": compare(sides["base"], sides["same"], folder / "same-vs-base", args),
                    "slower": compare(sides["base"], sides["slower"], folder / "slower-vs-base", args),
                }
            pairs.append(result)
            same_exit, slower_exit = result["same"], result["slower"]
            print(
                f"pair {pair}: same-vs-same exit {same_exit['exit']} {same_exit['failed_figures']}; "
                f"slower exit {slower_exit['exit']} {slower_exit['failed_figures']}",
                flush=True,
            )
    finally:
        for burner in burners:
            burner.stop()
    false_alarms = sum(pair["same"]["exit"] == 1 for pair in pairs)
    caught = sum(pair["slower"]["exit"] == 1 for pair in pairs)
    summary = {
        "options": {key: str(value) for key, value in vars(args).items()},
        "pairs": len(pairs),
        "false_alarms": false_alarms,
        "caught": caught,
        "results": pairs,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"same-vs-same: {false_alarms} of {len(pairs)} exit 1 (false alarms)")
    print(f"{args.slower:g}x the handler's work: {caught} of {len(pairs)} exit 1 (caught)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
