"""Where a server's CPU goes per request: by binary (``perf``) or by system call (``strace -c``).

    python docs/scripts/server_profile.py perf emulator --resource-model host
    python docs/scripts/server_profile.py perf floor
    python docs/scripts/server_profile.py strace emulator --requests 2000

Starts the three targets of ``bench.emulator_cost`` (the emulator with ``logit-lean`` alone at
1,769 MB, the floor proxy, the bare server), warms the chosen one on one keep-alive http.client
connection, then attaches the tool to its server process (by PID) for ``--requests`` more:

- ``perf``: ``perf record -e cpu-clock -F 4000 -g`` (a software clock, so it also works in a VM
  without a PMU), then the samples per binary (DSO) as µs per request. perf's own cost is in
  the figures: compare targets measured the same way, not with ``bench.emulator_cost``'s.
- ``strace``: ``strace -c -f``, the calls per request by name. strace slows every call a lot;
  read the counts, not its times.

Needs ``perf`` (Debian's linux-perf) or ``strace``, and root or a permissive
``kernel.perf_event_paranoid``. Prints; writes nothing but temporary files. Every process
started is stopped by PID (``bench.emulator_cost.running_targets``).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from bench.emulator_cost import CostConfig, running_targets  # noqa: E402


def drive(url: str, requests: int) -> None:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        for _ in range(requests):
            connection.request("GET", path)
            connection.getresponse().read()
    finally:
        connection.close()


def attach(command: list[str]) -> subprocess.Popen:
    tool = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the timed requests
    return tool


def detach(tool: subprocess.Popen) -> None:
    tool.send_signal(signal.SIGINT)
    try:
        tool.wait(60)
    except subprocess.TimeoutExpired:
        tool.kill()
        tool.wait()


def perf_by_binary(data: Path, requests: int) -> str:
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = re.search(r"Event count \(approx\.\): (\d+)", report)
    if total is None:
        raise SystemExit("perf report printed no event count")
    us_per_request = int(total.group(1)) / 1_000 / requests  # cpu-clock counts ns
    lines = [f"total: {us_per_request:,.0f} µs of CPU per request (perf's own cost included)"]
    for share, dso in re.findall(r"^\s+([\d.]+)%\s+(\S.*?)\s*$", report, re.MULTILINE)[:10]:
        lines.append(f"{float(share) / 100 * us_per_request:8.1f} µs  {float(share):5.1f} %  {dso}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tool", choices=("perf", "strace"))
    parser.add_argument("target", choices=("emulator", "floor", "bare"))
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    models = ("auto", "cgroup-v1", "cgroup-v2", "host")
    parser.add_argument("--resource-model", default="auto", choices=models)
    args = parser.parse_args()
    os.chdir(PROJECT)  # running_targets serves the functions from the working directory
    config = CostConfig(
        requests=args.requests, warmup=args.warmup, rounds=1, memory_mb=1769, results=None,
        resource_model=args.resource_model,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="server-profile-") as folder:
        work = Path(folder)
        with running_targets(config, work) as (emulator, floor, bare, _base_url):
            target = {"emulator": emulator, "floor": floor, "bare": bare}[args.target]
            drive(target.url, args.warmup)
            pid = str(target.server_pid)
            if args.tool == "perf":
                data = work / "perf.data"
                command = ["perf", "record", "-e", "cpu-clock", "-F", "4000", "-g", "-p", pid]
                command += ["-o", str(data)]
            else:
                data = work / "strace.txt"
                command = ["strace", "-c", "-f", "-p", pid, "-o", str(data)]
            tool = attach(command)
            try:
                drive(target.url, args.requests)
            finally:
                detach(tool)
        print(f"{args.target} ({args.resource_model}), {args.requests:,} requests")
        if args.tool == "perf":
            print(perf_by_binary(data, args.requests))
        else:
            for calls, name in re.findall(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$",
                                          data.read_text(), re.MULTILINE):  # fmt: skip
                if name != "total" and int(calls) / args.requests >= 0.01:  # not the connection's own
                    print(f"{int(calls) / args.requests:6.2f} per request  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
