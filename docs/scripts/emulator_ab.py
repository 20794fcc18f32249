"""An interleaved A/B of the emulator's own CPU per request, between checkouts (or options).

    git worktree add /tmp/before <commit>; ln -s "$PWD/models" /tmp/before/models
    python docs/scripts/emulator_ab.py /tmp/before .                       # before vs this checkout
    python docs/scripts/emulator_ab.py . ".|--no-freeze" --rounds 16       # an option's cost

Each spec is ``TREE`` or ``TREE|EMULATOR OPTIONS``: that tree's own emulator (``python -m
handler.serve`` run in it, ``logit-lean`` alone at 1,769 MB), plus one bare aiohttp server
(``bench.truth.server /truth/0``). Rounds go A, B, …, bare, A, B, … on one keep-alive
http.client connection each (``--warmup`` untimed, ``--requests`` timed), so every spec sees
the same machine within seconds. This VM's CPU per request drifts by ±20 % over minutes, so
the figure to read is the **paired ratio**: per round, each spec's CPU per request over the
first spec's in the same round, the median over the rounds with its min-max. CPU from
``/proc/<pid>/task/*/schedstat`` (``bench.emulator_cost.process_cpu_ns``); voluntary context
switches per request beside it (a cheaper step can mean one more sleep and wake-up). A check
that it sees a change: a 100 µs busy wait added to the gateway showed as a paired ratio of
1.08 (1.00-1.14) over 10 rounds of 1,000. Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from bench.emulator_cost import QUERY, CostConfig, config_toml, process_cpu_ns  # noqa: E402
from bench.process import _emulator_ready, line_with, start  # noqa: E402


def switches(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as status:
            total += sum(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt"))
    return total


def one_round(url: str, pid: int, requests: int, warmup: int) -> tuple[float, float, float]:
    """(server CPU µs per request, voluntary switches per request, wall p50 µs)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, port = host.split(":")
    connection = http.client.HTTPConnection(name, int(port), timeout=30)
    try:
        for _ in range(warmup):
            connection.request("GET", "/" + rest)
            connection.getresponse().read()
        walls = []
        switched, cpu = switches(pid), process_cpu_ns(pid)
        for _ in range(requests):
            started = time.perf_counter_ns()
            connection.request("GET", "/" + rest)
            connection.getresponse().read()
            walls.append(time.perf_counter_ns() - started)
        cpu_us = (process_cpu_ns(pid) - cpu) / requests / 1000
        return cpu_us, (switches(pid) - switched) / requests, statistics.median(walls) / 1000
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("specs", nargs="+", help="TREE or 'TREE|emulator options' (the first is the base)")
    parser.add_argument("--rounds", type=int, default=12, help="rounds per spec (12)")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per round (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per round (200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, contextlib.ExitStack() as stack:
        targets: list[tuple[str, str, int]] = []
        for number, spec in enumerate(args.specs):
            tree, _, options = spec.partition("|")
            root = Path(tree).resolve()
            if not (root / "models" / "logit.json").is_file():
                parser.error(f"{root}: no models/logit.json (python -m training, or a symlink)")
            config = Path(work) / f"emulator-{number}.toml"
            config.write_text(config_toml(CostConfig(0, 0, 1, 1769, None), root), encoding="utf-8")
            command = [
                sys.executable,
                "-m",
                "handler.serve",
                "--port",
                "0",
                "--quiet",
                "--config",
                str(config),
            ]
            command += ["--models", str(root / "models"), "--log-file", str(Path(work) / f"e{number}.log")]
            command += options.split()
            output = Path(work) / f"e{number}.out"
            child = stack.enter_context(start(command, output, ready=_emulator_ready, cwd=root))
            targets.append((spec, f"{child.ready}/staging/logit-lean?{QUERY}", child.pid))
        bare_command = [sys.executable, "-m", "bench.truth.server", "--port", "0"]
        bare = stack.enter_context(start(bare_command, Path(work) / "bare.out", ready=line_with("truth: ")))
        targets.append(("bare", str(bare.ready).split("truth: ", 1)[1].strip() + "/truth/0", bare.pid))
        found: dict[str, list[tuple[float, float, float]]] = {spec: [] for spec, _, _ in targets}
        for _ in range(args.rounds):
            for spec, url, pid in targets:
                found[spec].append(one_round(url, pid, args.requests, args.warmup))
    bare_cpu = statistics.median(cpu for cpu, _, _ in found["bare"])
    for spec, rounds in found.items():
        cpu = [figure for figure, _, _ in rounds]
        line = f"{spec}: CPU {statistics.median(cpu):.0f} µs/request ({min(cpu):.0f}-{max(cpu):.0f}), "
        line += f"{statistics.median(s for _, s, _ in rounds):.2f} sleeps/request, "
        line += f"p50 {statistics.median(w for _, _, w in rounds):.0f} µs, "
        line += f"{statistics.median(cpu) / bare_cpu:.2f}x bare"
        print(line)
    base = args.specs[0]
    for spec in args.specs[1:]:
        ratios = sorted(found[spec][n][0] / found[base][n][0] for n in range(args.rounds))
        walls = sorted(found[spec][n][2] / found[base][n][2] for n in range(args.rounds))
        print(
            f"{spec} / {base}: CPU paired ratio {statistics.median(ratios):.3f} "
            f"({ratios[0]:.3f}-{ratios[-1]:.3f}), p50 {statistics.median(walls):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
