"""The open-loop generator's CPU priority: real time where the OS allows it and it is safe.

An open-loop user must send each request at its intended instant. On a machine the generator
shares with the emulator (its gateway and every environment), a send falls late whenever the
generator is runnable but another task holds its CPU: the Linux scheduler (EEVDF since 6.6) may
let the running task finish its slice first. A bare timer loop with the generator's wait
(``python -m bench.load.floor``), beside other work on the 2-vCPU VM, had a lag p99 of
797-3,984 µs at the default policy and 1-351 µs as SCHED_FIFO 1 (10 pairs; docs/benchmarks.md,
"The generator's schedule", which also lists what did not help: a cgroup weight, a shorter
EEVDF slice, nice, CPU pinning). What it cannot remove is the hypervisor not running the vCPU.

So the generator's main thread (the gevent loop) asks for ``SCHED_FIFO`` priority 1, the lowest
real-time priority, with ``SCHED_RESET_ON_FORK`` (nothing it starts inherits it), only when

- the run is open loop (a closed loop has no schedule, and would spin a real-time CPU),
- the machine has at least two CPUs (the emulator keeps one whatever the generator does), and
- its spin-wait keeps well under one CPU: ``rate per process × spin window <= MAX_SPIN_SHARE``.

The kernel's real-time throttling (``/proc/sys/kernel/sched_rt_runtime_us``, 95 % by default)
bounds it in any case. Where it is refused (not root, no RLIMIT_RTPRIO, a cgroup without
real-time runtime) the run goes on at the default policy and says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PRIORITIES = ("auto", "realtime", "normal")
REALTIME_PRIORITY = 1
MAX_SPIN_SHARE = 0.5


@dataclass(frozen=True)
class Priority:
    policy: str  # "SCHED_FIFO 1" or "normal"
    reason: str

    def phrase(self) -> str:
        return f"{self.policy} ({self.reason})"


def choose(mode: str, open_loop: bool, rate_per_process: float, spin_ns: int, cpus: int | None) -> str | None:
    """Why the generator stays at the default policy, or None when it should ask for real time."""
    if mode not in PRIORITIES:
        raise ValueError(f"generator priority must be one of {', '.join(PRIORITIES)}, not {mode!r}")
    if mode == "normal":
        return "--generator-priority normal"
    if not open_loop:
        return "closed loop: no schedule to keep"
    if mode == "realtime":
        return None
    if (cpus or 1) < 2:
        return "one CPU: a real-time generator would starve the emulator"
    spin_share = rate_per_process * spin_ns / 1e9
    if spin_share > MAX_SPIN_SHARE:
        return f"its spin-wait would hold {spin_share:.0%} of a CPU at real-time priority"
    return None


def apply(mode: str, open_loop: bool, rate_per_process: float, spin_ns: int) -> Priority:
    """Set this thread's policy as :func:`choose` decides; what it got, and why."""
    reason = choose(mode, open_loop, rate_per_process, spin_ns, os.cpu_count())
    if reason is not None:
        return Priority("normal", reason)
    if not hasattr(os, "sched_setscheduler"):
        return Priority("normal", "this OS has no sched_setscheduler")
    policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
    try:
        os.sched_setscheduler(0, policy, os.sched_param(REALTIME_PRIORITY))
    except OSError as exc:
        return Priority("normal", f"real-time priority refused: {exc.strerror or exc}")
    return Priority(f"SCHED_FIFO {REALTIME_PRIORITY}", "open loop: sends keep their instants")
