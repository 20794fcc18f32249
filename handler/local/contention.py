"""CPU time beside wall time, and whether a saturated host slowed a phase ("contended").

**Measured, in every model**: for each init and invocation, wall time W, the CPU time C of the
runtime process (all its threads: ``clock_gettime`` on its process CPU clock, exact to the ns,
0.7 µs a read against 4.8 µs for the group's cpuacct, and equal to it in a test here; processes
the runtime starts are not counted), and the allowed share S. The time the CPU work needs at
that share is C plus the waits the share's own CFS quota imposed on it (the group's cpu.stat
``throttled_time``: CFS runs a burst at full speed and then holds the group to the next 20 ms
period, so a 0.3 ms invocation at 0.072 vCPU takes 0.3 ms, or 0.3 ms plus up to 19 ms, and
neither is contention); without a group, C / min(S, 1) (``lifecycle.judged_vcpus``: the
runtime's main thread uses one CPU at a time). The phase's factor is W over that. The host's
saturation over the phase is the rise of ``/proc/pressure/cpu``'s "some total" (µs during which
at least one task on the host waited for a CPU; host-wide PSI) over W. A phase is
**contended** when its factor exceeds ``contention_factor`` (default 1.5) while the host is
saturated (at least 0.5).

Not measured: a phase that waits (sleep, I/O, a lock) has a high factor too, so while the host
is saturated such a phase is flagged although the wait was its own; PSI is host-wide, so the
pressure may be another environment's or another program's; without ``/proc/pressure/cpu``
(kernel without PSI, or booted psi=0) contention is ``unknown`` whenever the factor is over the
limit; an invocation whose process died (OOM, a crash) has no CPU time (its process clock is
gone with it: ``Duration CPU: n/a``) and is not judged. Every figure is the emulator's, not in
the AWS fields of the REPORT line (``reportline.EmulatorLine``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from handler.local.lifecycle import SATURATED, judged_vcpus

PRESSURE_FILE = Path("/proc/pressure/cpu")
CPUCLOCK_SCHED = 2  # the kernel's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) = ((~pid) << 3) | 2


def process_cpu_ns(pid: int) -> int | None:
    """CPU time of process ``pid`` (all its threads, exact: the kernel updates a running
    thread's figure on the read); None once it is gone (or reaped)."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | CPUCLOCK_SCHED)
    except OSError:
        return None


def runqueue_wait_ns(pid: int) -> int | None:
    """Time the threads of process ``pid`` spent runnable but waiting for a CPU, ns (the second
    field of each ``/proc/<pid>/task/<tid>/schedstat``; exited threads' time is lost); None
    once it is gone or without schedstats. Sleeping is neither this nor CPU time."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as stat:
                total += int(stat.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total


class Pressure:
    """The host's CPU pressure: PSI "some total", µs; None where the kernel has none."""

    def __init__(self, path: Path = PRESSURE_FILE) -> None:
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError:
            self._fd = None
        self.path = str(path) if self._fd is not None else None

    def total_us(self) -> int | None:
        if self._fd is None:
            return None
        try:
            content = os.pread(self._fd, 256, 0)
            start = content.index(b"total=") + 6
            return int(content[start : content.index(b"\n", start)])
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True)
class Phase:
    """One init or invocation: wall and CPU time, the share it was allowed, the host's pressure."""

    name: str  # "init" or "invoke"
    wall_ns: int
    cpu_ns: int | None  # None: not readable (the process was gone)
    share_vcpus: float  # allowed; in the host model, the host's CPUs
    pressure_us: int | None  # the host's PSI "some" over the phase; None: no PSI
    throttled_ns: int | None = None  # its CPU quota's own waits (cgroup cpu.stat); None: unknown

    def needed_ns(self) -> float | None:
        """The wall time its CPU work needs at its share: the CPU time plus the waits its own
        quota imposed, where the group says (CFS runs a burst at full speed, then holds the
        group to the next period); else the CPU time at the share judged."""
        if self.cpu_ns is None or self.cpu_ns <= 0:
            return None
        if self.throttled_ns is not None:
            return self.cpu_ns + self.throttled_ns
        return self.cpu_ns / judged_vcpus(self.share_vcpus)

    def factor(self) -> float | None:
        """Wall time over the time its CPU work needs at its share; None without CPU time."""
        needed = self.needed_ns()
        return None if needed is None else self.wall_ns / needed

    def saturation(self) -> float | None:
        if self.pressure_us is None or self.wall_ns <= 0:
            return None
        return self.pressure_us * 1000 / self.wall_ns

    def contended(self, factor_limit: float) -> bool | None:
        """True: slowed beyond ``factor_limit`` while the host was saturated; None: unknown."""
        factor = self.factor()
        if factor is None:
            return None if self.cpu_ns is None else False
        if factor <= factor_limit:
            return False
        saturation = self.saturation()
        return None if saturation is None else saturation >= SATURATED


def contention(phases: list[Phase], factor_limit: float) -> tuple[tuple[str, float], ...] | None:
    """The contended phases with their factors; () none; None: unknown and none contended.
    A phase whose CPU time could not be read (its process died) is not judged."""
    verdicts = [(phase, phase.contended(factor_limit)) for phase in phases if phase.cpu_ns is not None]
    found = tuple((phase.name, round(phase.factor() or 0.0, 2)) for phase, verdict in verdicts if verdict)
    if not found and any(verdict is None for _, verdict in verdicts):
        return None
    return found
