"""The CFS quota checked every 0.5 ms, not at the 4 ms scheduler tick: one real-time ticker per CPU.

Why. The kernel enforces a cgroup's CPU quota (``cpu.cfs_quota_us`` per ``cpu.cfs_period_us``)
where it accounts a running task's time: at each scheduler tick and at each context switch
(kernel/sched/fair.c: ``update_curr`` -> ``account_cfs_rq_runtime``, and ``put_prev_entity``
-> ``check_cfs_rq_runtime``, which throttles). This kernel ticks at HZ=250 (``CONFIG_HZ=250``
in /proc/config.gz; ``getconf CLK_TCK`` says 100 whatever HZ is), so a CPU-bound function that
never blocks runs up to 4 ms past its quota before the kernel notices, and repays the debt in
later periods. At 128 MB the quota is 1.45 ms per 20 ms, so a run is 1.45-5.45 ms and a short
invocation's Duration depends on where the ticks fell: a 36 ms job took 455-842 ms at 128 MB
(ideal 500 ms). Lambda's own throttling shows no such spread (pwrdrvr/lambda-throttling,
measured on AWS 2025-03-01: at 128 and 256 MB iteration times sit at multiples of 20 ms).

How. A thread per CPU at SCHED_FIFO priority 1, pinned to its CPU, sleeps ``TICK_US`` (an
hrtimer: a real-time task has no timer slack) and wakes. A real-time wake-up preempts whatever
CFS task runs on that CPU, and the switch accounts its time and throttles its group if the quota
is spent. So the quota is checked every 0.5 ms on every CPU, and the overrun is at most 0.5 ms.
The ticker's own CPU is not charged to any environment (it lives outside their groups).

Measured (2-core VM, kernel 6.18, cgroup v1, while other jobs ran on the 2 cores, load average
5-11; docs/benchmarks.md, "Fidelity"), the kernel's CFS alone against CFS with the ticker:
pwrdrvr/lambda-throttling's loop (3.6 ms iterations, 3 s a size) had 88 % of its iterations
within 3 ms of a multiple of 20 ms at 128 MB and 91 % at 256 MB, and 100 % and 98 % with it
(AWS: 87 % and 97 %); the same 36 ms job at 128 MB, nine runs with 0.1 s pauses, took 455-842 ms
without and 474-522 ms with it. The cost: 4.5 % of one CPU in all on 2 CPUs (3,800 wake-ups a
second of 12 µs each, Python); at 250 µs about 6 % a CPU; at 1 ms, 3 % in all but a 1 ms overrun
(69 % of 128 MB's quota).

It ticks only while some environment whose quota is under one CPU (under 1,769 MB) may run;
a quota of a whole period cannot be overrun by one thread (``CgroupGroup.set_cpu_quota``).
Each such group tells it (one byte down a pipe) when it is created or thawed and when it is
frozen or removed, so with the freeze on (the default) it sleeps between invocations; with it
off, it ticks while any such environment exists.
The ticker runs in a process of its own (no GIL shared with the emulator) that exits when its
standard input reaches EOF: when the emulator closes it, or dies (SIGKILL included). Where
SCHED_FIFO is refused (not root, or no CAP_SYS_NICE and RLIMIT_RTPRIO 0) it cannot preempt: its
process is started, finds the policy refused, says why and exits, and ``start`` returns None
with that reason; the quota is then checked at ticks. ``LAMBDA_EMULATOR_CPU_TICK_US=0`` turns it
off (to measure the kernel's CFS alone); other values are held to ``MIN_US``-``MAX_US`` (at 1 µs
the real-time threads would take most of every CPU; past a tick it checks nothing the tick
does not), and a value refused is said once on stderr.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

TICK_US = 500
MIN_US, MAX_US = 100, 4000  # 4,000 µs: the scheduler tick at HZ=250 (the slowest tick is 10 ms)
ENV_VAR = "LAMBDA_EMULATOR_CPU_TICK_US"
MODULE = "handler.local.cputick"
PRIORITY = 1  # the lowest real-time priority: above every CFS task, below the kernel's own
READY_TIMEOUT_S = 5.0  # for its "ready" line: a Python start-up and a thread per CPU
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # where ``handler`` is importable from

_said: set[str] = set()  # values of ENV_VAR already refused on stderr


def _refuse(value: str, why: str) -> None:
    if value not in _said:
        _said.add(value)
        print(f"emulator: {ENV_VAR}={value!r} {why}", file=sys.stderr)


def tick_us() -> int:
    """The period asked for (``LAMBDA_EMULATOR_CPU_TICK_US``, default ``TICK_US``; 0: off),
    held to ``MIN_US``-``MAX_US``; a value refused or changed is said once on stderr."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return TICK_US
    try:
        period_us = int(value)
    except ValueError:
        _refuse(value, f"is not a whole number of µs: the default {TICK_US} µs is used")
        return TICK_US
    if period_us == 0:
        return 0
    clamped = min(MAX_US, max(MIN_US, period_us))
    if clamped != period_us:
        _refuse(value, f"is outside {MIN_US}-{MAX_US} µs (0: off): {clamped} µs is used")
    return clamped


class CpuTick:
    """The ticker process: ``start`` it, ``stop`` it (it also stops if this process dies)."""

    def __init__(self, child: subprocess.Popen, period_us: int, cpus: tuple[int, ...]) -> None:
        self.child, self.period_us, self.cpus = child, period_us, cpus

    @classmethod
    def start(
        cls, period_us: int | None = None, ready_timeout_s: float = READY_TIMEOUT_S
    ) -> tuple[CpuTick | None, str]:
        """A ticker on every CPU this process may use, and ""; or None and why not (off, or
        real-time refused, or no "ready" within ``ready_timeout_s``)."""
        period_us = tick_us() if period_us is None else period_us
        if period_us <= 0:
            return None, f"off ({ENV_VAR}=0)"
        if not hasattr(os, "sched_setscheduler"):
            return None, f"no SCHED_FIFO on {sys.platform}"
        cpus = tuple(sorted(os.sched_getaffinity(0)))
        # -m from the project root, as the supervisor: a script's own folder would come first on
        # sys.path, where a module named like one of the standard library's would shadow it.
        child = subprocess.Popen(
            [sys.executable, "-S", "-m", MODULE, str(period_us), ",".join(map(str, cpus))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            cwd=PROJECT_ROOT,
        )
        tick = cls(child, period_us, cpus)
        answer = _read_line(child, ready_timeout_s)
        if answer != "ready":  # no SCHED_FIFO here (not root, or RT time not allowed)
            tick.stop()
            return None, answer or f"no answer within {ready_timeout_s:g} s (exit status {child.returncode})"
        return tick, ""

    def running(self, running: bool) -> None:
        """One more group may run (True), or one fewer (False): it ticks while any may.
        A write of one byte to its pipe (never blocks in practice: it reads them at once)."""
        stdin = self.child.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                os.write(stdin.fileno(), b"+" if running else b"-")

    @property
    def pid(self) -> int:
        return self.child.pid

    def stop(self, timeout_s: float = 2.0) -> None:
        """Close its input (it exits), then wait; SIGKILL if it does not within ``timeout_s``."""
        for stream in (self.child.stdin, self.child.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            self.child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


def _read_line(child: subprocess.Popen, timeout_s: float) -> str:
    """The child's first line, stripped; "" if none came within ``timeout_s`` (or it exited)."""
    assert child.stdout is not None
    fd, line, deadline = child.stdout.fileno(), b"", time.monotonic() + timeout_s
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return ""
        chunk = os.read(fd, 256)
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").strip()


def _tick(  # pragma: no cover - in the child
    cpu: int, period_s: float, failed: list[str], set_up: threading.Barrier, active: threading.Event
) -> None:
    try:
        os.sched_setaffinity(0, {cpu})  # 0: this thread
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except OSError as exc:
        failed.append(f"SCHED_FIFO refused on CPU {cpu}: {exc.strerror or exc}")
        return
    finally:
        set_up.wait()
    while True:
        active.wait()
        time.sleep(period_s)


def main(argv: list[str]) -> int:  # pragma: no cover - the child process
    period_s, cpus = int(argv[0]) / 1e6, [int(cpu) for cpu in argv[1].split(",")]
    failed: list[str] = []
    set_up, active = threading.Barrier(len(cpus) + 1), threading.Event()
    for cpu in cpus:
        threading.Thread(target=_tick, args=(cpu, period_s, failed, set_up, active), daemon=True).start()
    set_up.wait()  # every thread has its CPU and policy, or has failed
    with contextlib.suppress(OSError):  # this thread wakes them: promptly, whatever else runs
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    sys.stdout.write(f"{sorted(failed)[0]}\n" if failed else "ready\n")
    sys.stdout.flush()
    if failed:
        return 1
    running = 0  # groups that may run: "+" one more, "-" one fewer; EOF: the emulator is gone
    while chunk := os.read(0, 4096):
        running += chunk.count(b"+") - chunk.count(b"-")
        if running > 0:
            active.set()
        else:
            active.clear()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
