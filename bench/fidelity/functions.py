"""The functions the fidelity table runs, and the emulator configuration that deploys them.

- ``loop``: the throttling experiment's function, a Python port of pwrdrvr/lambda-throttling's
  loop: ``{"work": W, "seconds": S}`` runs iterations of ``W`` multiply-adds for ``S`` seconds
  and returns each iteration's wall time and the process's CPU time; ``{"work": W,
  "iterations": K}`` runs ``K`` of them (the stability job) and returns its wall and CPU time.
- ``fib``: epsagon's benchmark function, a recursive Fibonacci, one thread.
- ``hello``: lambda-perf's hello-world (``bench.powertune.calibrate.HELLO_SOURCE``).

The same ``loop`` source runs outside the emulator, in a plain child process with no quota,
for the unthrottled iteration (:func:`unthrottled_iteration`).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.powertune.calibrate import HELLO_SOURCE

LOOP_SOURCE = """\
import time


def iteration(work):
    total = 0
    for i in range(work):
        total += i * i
    return total


def handler(event, context):
    work = int(event["work"])
    cpu = time.process_time_ns()
    start = now = time.perf_counter_ns()
    if "iterations" in event:
        for _ in range(int(event["iterations"])):
            iteration(work)
        return {"wall_ns": time.perf_counter_ns() - start, "cpu_ns": time.process_time_ns() - cpu}
    end, walls = start + int(float(event["seconds"]) * 1e9), []
    while now < end:
        iteration(work)
        walls.append(time.perf_counter_ns() - now)
        now += walls[-1]
    return {"walls_ns": walls, "wall_ns": now - start, "cpu_ns": time.process_time_ns() - cpu}
"""
FIB_SOURCE = """\
def fibonacci(index):
    if index <= 1:
        return index
    return fibonacci(index - 1) + fibonacci(index - 2)


def handler(event, context):
    return fibonacci(int(event["index"]))
"""
CODE = {"loop": LOOP_SOURCE, "fib": FIB_SOURCE, "hello": HELLO_SOURCE}
FUNCTION_TEMPLATE = """
[[functions]]
name = "{name}"
handler = "index.handler"
code_dir = "{code}"
memory_mb = {memory_mb}
timeout_s = 60
"""
TARGET_ITERATION_NS = 3_593_655  # AWS's unthrottled iteration (bench.fidelity.reference)


def name(code: str, memory_mb: int) -> str:
    return f"{code}-{memory_mb}"


def write_config(folder: Path, functions: list[tuple[str, int]]) -> Path:
    """Each (code, memory size) as a function ``<code>-<memory_mb>``; returns the config file."""
    for code in {code for code, _ in functions}:
        (folder / code).mkdir(parents=True, exist_ok=True)
        (folder / code / "index.py").write_text(CODE[code], encoding="utf-8")
    text = '# Written by python -m bench.fidelity.\nstage = "staging"\nport = 0\n'
    text += "".join(
        FUNCTION_TEMPLATE.format(name=name(code, size), code=code, memory_mb=size) for code, size in functions
    )
    config = folder / "fidelity.toml"
    config.write_text(text, encoding="utf-8")
    return config


def run_loop_here(work: int, seconds: float) -> dict:
    """The loop function in a child process of this one: no cgroup, no quota."""
    program = f"{LOOP_SOURCE}\nimport json, sys\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))\n"
    event = json.dumps({"work": work, "seconds": seconds})
    done = subprocess.run(
        [sys.executable, "-c", program, event], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout)


def unthrottled_iteration(work: int, seconds: float) -> tuple[float, float]:
    """The loop run without a quota: (CPU time per iteration, median iteration wall), in ns.

    The first is the unthrottled iteration the ratios divide by: what an iteration takes with
    a CPU of its own. On AWS's 3,000 MB baseline wall and CPU agree (3.59 and 3.65 ms); on a
    shared host the wall also holds other jobs' turns on the CPU (here, with 8 runnable tasks
    on 2 cores, a 1 ms iteration took 3.6 ms of wall), which would understate every ratio.
    """
    result = run_loop_here(work, seconds)
    walls = result["walls_ns"]
    return result["cpu_ns"] / len(walls), float(statistics.median(walls))


FIB_PROBE = """\
import sys, time
{source}
for index in range(18, 34):
    start = time.process_time_ns()
    fibonacci(index)
    print(index, time.process_time_ns() - start, flush=True)
    if time.process_time_ns() - start > 2 * {target_ns}:
        break
"""


def calibrate_fib_index(target_ns: int) -> int:
    """The Fibonacci index whose call costs closest to ``target_ns`` of CPU here, unthrottled
    (AWS's figure is a job of 25 ms at 3,008 MB; a shorter job would be shaped by the 20 ms
    period's start-up differently, so the job's length is matched, not its index)."""
    program = FIB_PROBE.format(source=FIB_SOURCE, target_ns=target_ns)
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    costs = [tuple(map(int, line.split())) for line in done.stdout.split("\n") if line.strip()]
    return min(costs, key=lambda cost: abs(cost[1] - target_ns))[0]


def calibrate_work(probe_work: int = 50_000, seconds: float = 0.3) -> int:
    """The work per iteration that costs AWS's unthrottled iteration (3.59 ms) of CPU here."""
    cpu_ns, _ = unthrottled_iteration(probe_work, seconds)
    return max(1_000, round(probe_work * TARGET_ITERATION_NS / cpu_ns))
