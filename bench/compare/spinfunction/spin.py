"""A function whose handler does a fixed amount of CPU work, for ``bench.compare``'s own tests.

Each invocation runs ``SPIN_ITERATIONS`` rounds of integer arithmetic (environment variable,
default 20,000: about 1 ms on this project's machine) and reports the time in
``Server-Timing: handler;dur=<ms>``, as the project's handlers do. A candidate 15 % slower in
its handler is this function with 1.15 times the iterations: CPU work, so that a busy host
slows it as it slows real handlers (a wall-clock wait would not).

``SPIN_TIMING=cpu`` reports the handler's thread CPU time instead of its wall time: a figure
that a host's load barely moves, for tests of ``bench.compare``'s machinery on a shared machine
(on which the wall time of 1 ms of work swings 4x from run to run). Real handlers report wall
time; so does this one by default.
"""

import json
import os
import time

ITERATIONS = int(os.environ.get("SPIN_ITERATIONS", "20000"))
CLOCK = time.thread_time_ns if os.environ.get("SPIN_TIMING") == "cpu" else time.perf_counter_ns


def handler(event, context):
    started = CLOCK()
    total = 0
    for number in range(ITERATIONS):
        total += number * number % 7
    handler_ms = (CLOCK() - started) / 1e6
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Server-Timing": f"handler;dur={handler_ms:.3f}"},
        "body": json.dumps({"iterations": ITERATIONS, "total": total}),
    }
