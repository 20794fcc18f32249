"""``python -m bench.load.floor``: how well can anything keep an open-loop schedule on this machine?

A bare timer loop, no Locust, no gevent, no HTTP: it wakes at ``--rate`` Hz the way the open
loop does (``bench.load.arrivals``: a coarse sleep, then a spin over the last ``--spin-us``) and
records how late each tick was in an HdrHistogram. Run at the default policy and as SCHED_FIFO 1
(what ``--generator-priority auto`` asks for), alternately, ``--pairs`` times, so that both see
the same machine. What the loop cannot do, the generator cannot either: the residue is the
host's (another process holding the CPU, or the hypervisor not running the vCPU: ``steal``).
A diagnostic: it prints, and writes no results file.

    python -m bench.load.floor --rate 100 --ticks 1000 --pairs 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.latency import LatencyRecorder
from bench.load.arrivals import DEFAULT_SPIN_NS


def steal_ticks() -> int:
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return int(fields[8]) if len(fields) > 8 else 0


def run_loop(rate: float, ticks: int, spin_ns: int, miss_ns: int) -> str:
    interval = round(1e9 / rate)
    lags = LatencyRecorder("ns")
    late, steal = 0, steal_ticks()
    start = time.perf_counter_ns() + interval
    for tick in range(ticks):
        instant = start + tick * interval
        while (remaining := instant - (now := time.perf_counter_ns())) > 0:
            if remaining > spin_ns:
                time.sleep((remaining - spin_ns) / 1e9)
        lags.record_ns(now - instant)
        late += now - instant > miss_ns
    summary = lags.summary()
    return (
        f"lag p50 {summary.p50:,.0f} µs, p99 {summary.p99:,.0f} µs, max {summary.max:,.0f} µs; "
        f"{late} of {ticks} ticks over {miss_ns / 1000:,.0f} µs late; steal {steal_ticks() - steal} ticks"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.floor", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="ticks per second (default 100)")
    parser.add_argument("--ticks", type=int, default=1000, help="ticks per run (default 1000)")
    parser.add_argument("--pairs", type=int, default=3, help="runs at each policy, alternating")
    parser.add_argument("--spin-us", type=float, default=DEFAULT_SPIN_NS / 1000)
    parser.add_argument("--miss-us", type=float, default=1000.0, help="a tick this late is late")
    parser.add_argument("--child", choices=("normal", "fifo"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.rate > 0 and args.ticks > 0 and args.pairs > 0):
        print("python -m bench.load.floor: --rate, --ticks and --pairs must be positive", file=sys.stderr)
        return 2
    spin_ns, miss_ns = int(args.spin_us * 1000), int(args.miss_us * 1000)
    if args.child:
        if args.child == "fifo":
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            except OSError as exc:
                print(f"SCHED_FIFO refused: {exc.strerror}")
                return 0
        print(run_loop(args.rate, args.ticks, spin_ns, miss_ns))
        return 0
    print(f"{args.rate:g} Hz, {args.ticks} ticks, spin {args.spin_us:g} µs, {os.cpu_count()} CPUs")
    for pair in range(args.pairs):
        for policy in ("normal", "fifo"):
            settings = ("--rate", args.rate, "--ticks", args.ticks, "--spin-us", args.spin_us)
            command = [sys.executable, "-m", "bench.load.floor", "--child", policy]
            command += [*map(str, settings), "--miss-us", str(args.miss_us)]
            line = subprocess.run(command, capture_output=True, text=True, timeout=3600).stdout.strip()
            print(f"  {pair + 1} {'SCHED_FIFO 1' if policy == 'fifo' else 'default':>12}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
