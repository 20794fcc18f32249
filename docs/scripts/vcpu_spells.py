"""Do this host's speed spells hit every vCPU at once? Two copies of the fidelity table's loop
run at the same time, each in a process of its own (``--cpus 0,1`` pins them with ``taskset``),
and each 1 s window prints both processes' median iteration (thread CPU time, µs) and their
ratio. Spells that hit the machine would move both columns together; docs/benchmarks.md
("Would a reference measured at the same time cancel the spells?") has what it showed.

    python docs/scripts/vcpu_spells.py --work 90000 --seconds 20 [--cpus 0,1]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys

LOOP = """
import json, sys, time
def iteration(work):
    total = 0
    for i in range(work):
        total += i * i
    return total
work, seconds = int(sys.argv[1]), float(sys.argv[2])
out, now = [], time.perf_counter_ns()
end = now + int(seconds * 1e9)
while now < end:
    cpu = time.thread_time_ns()
    iteration(work)
    then = time.perf_counter_ns()
    out.append((now, time.thread_time_ns() - cpu))
    now = then
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=int, default=90_000, help="multiply-adds per iteration (~3.6 ms here)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--cpus", help="two vCPUs to pin the two processes to, e.g. 0,1")
    args = parser.parse_args()
    pins = [["taskset", "-c", cpu] for cpu in args.cpus.split(",")] if args.cpus else [[], []]
    if len(pins) != 2 or args.seconds < 2:
        parser.error("--cpus takes two vCPUs (e.g. 0,1) and --seconds at least 2")
    children: list[subprocess.Popen] = []
    try:
        for pin in pins:
            command = [*pin, sys.executable, "-c", LOOP, str(args.work), str(args.seconds)]
            children.append(subprocess.Popen(command, stdout=subprocess.PIPE))
        runs = [json.loads(child.communicate(timeout=args.seconds + 60)[0]) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    start = min(run[0][0] for run in runs)
    logs = []
    for window in range(int(args.seconds)):
        low, high = start + window * 1e9, start + (window + 1) * 1e9
        medians = [
            statistics.median([cpu for at, cpu in run if low <= at < high] or [math.nan]) for run in runs
        ]
        print(window, *(f"{value / 1e3:8.0f}" for value in medians), f"{medians[1] / medians[0]:.3f}")
        if not any(math.isnan(value) for value in medians):
            logs.append(math.log(medians[1] / medians[0]))
    print(f"SD of the per-window log ratio: {statistics.stdev(logs):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
