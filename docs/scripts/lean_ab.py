"""The lean variant between two checkouts, interleaved: warm in-process p50 and cold p50.

    git worktree add /tmp/before <commit>
    python docs/scripts/lean_ab.py /tmp/before . [--rounds 6] [--calls 20000] [--trials 10]

Each tree trains its own models once (``python -m training --out <tmp>/<n>/models``, the
synthetic default: same seed, same model), then rounds alternate the trees (A B, B A, A B, …).
Per round and tree: ``python -m bench.inprocess --variants lean`` (the whole
``lambda_handler`` call, p50 over ``--calls``) and ``python -m bench.coldstart --variants lean
--warm 0`` (spawn to first prediction, median over ``--trials`` fresh interpreters), each run
in that tree's directory so that it measures that tree's code. This VM drifts by ±20 % over
minutes, so the figure to read is the paired ratio: per round, B's figure over A's, the median
over the rounds with its min-max. Prints; writes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(tree: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, *args], cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1, 3):  # verdicts are not this script's business
        raise SystemExit(f"{tree}: {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-400:]}")


def warm_p50_us(tree: Path, models: Path, out: Path, calls: int) -> float:
    run(tree, "-m", "bench.inprocess", "--variants", "lean", "--calls", str(calls), "--warmup",
        "1000", "--models", str(models), "--results", str(out))  # fmt: skip
    variant = json.loads(out.read_text())["variants"][0]
    return float(variant["handler_us"]["p50"])


def cold_p50_us(tree: Path, models: Path, out: Path, trials: int) -> float:
    run(tree, "-m", "bench.coldstart", "--variants", "lean", "--trials", str(trials), "--warm", "0",
        "--models", str(models), "--results", str(out), "--no-progress")  # fmt: skip
    variant = json.loads(out.read_text())["variants"][0]
    return float(variant["cold_start_us"]["p50"])


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("tree_a", type=Path)
    parser.add_argument("tree_b", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args(argv)
    trees = [args.tree_a.resolve(), args.tree_b.resolve()]
    with tempfile.TemporaryDirectory(prefix="lean-ab-") as scratch:
        base = Path(scratch)
        models = []
        for n, tree in enumerate(trees):
            models.append(base / str(n) / "models")
            run(tree, "-m", "training", "--out", str(models[-1]))
        warm: list[list[float]] = [[], []]
        cold: list[list[float]] = [[], []]
        for round_no in range(args.rounds):
            order = (0, 1) if round_no % 2 == 0 else (1, 0)
            for n in order:
                out = base / f"r{round_no}-{n}.json"
                warm[n].append(warm_p50_us(trees[n], models[n], out, args.calls))
                cold[n].append(cold_p50_us(trees[n], models[n], out, args.trials))
            print(
                f"round {round_no + 1}: warm p50 {warm[0][-1]:.3f} / {warm[1][-1]:.3f} µs, "
                f"cold p50 {cold[0][-1] / 1000:.2f} / {cold[1][-1] / 1000:.2f} ms",
                flush=True,
            )
    for what, series in (("warm in-process p50", warm), ("cold p50", cold)):
        ratios = [b / a for a, b in zip(series[0], series[1], strict=True)]
        print(
            f"{what}: B/A median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f}) over {len(ratios)} rounds; "
            f"A median {statistics.median(series[0]):.1f} µs, B median {statistics.median(series[1]):.1f} µs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
