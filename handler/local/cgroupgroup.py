"""One environment's cgroup: its files, in cgroup v1's or v2's dialect (``handler.local.cgroups``
says what the groups enforce, measure and cost; this module is the group itself).

``CgroupGroup`` reads and writes the files of one group (one directory on v2, one per
controller hierarchy on v1); ``HostGroup`` is the host model's group, which does nothing.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
PERIOD_US = 20_000  # Lambda's observed throttling interval (pwrdrvr/lambda-dispatch#246)
MIN_QUOTA_US, MAX_PERIOD_US = 1_000, 1_000_000  # the kernel's min/max_cfs_quota_period
MB_PER_VCPU = 1769  # AWS Lambda DG, configuration-memory.html
Clock = Callable[[], int]


@dataclass(frozen=True)
class CpuMax:
    quota_us: int
    period_us: int


@dataclass(frozen=True)
class Dialect:
    """The files of one cgroup version, as the kernel's cgroup-v1 and cgroup-v2 docs name them."""

    kind: str
    controllers: tuple[str, ...]  # v1: a hierarchy each; v2: enabled in cgroup.subtree_control
    memory: str  # set to the limit in bytes
    swap: tuple[str, bool]  # if present: set to the limit (True: v1 memory+swap) or to 0 (False)
    weight: tuple[str, int, int]  # file, invoking, initialising (v2 1000/10 = v1 shares 10240/102)
    freeze: tuple[str, bytes, bytes]  # file, frozen, thawed
    frozen: tuple[str, bytes]  # file, and the line it shows once every task is frozen
    usage: tuple[str, bytes | None, int]  # file, key (None: the whole file), ns per unit
    peak: tuple[str, ...]  # the first present
    oom: tuple[str, bytes]  # file, key of the OOM-kill counter
    throttled: tuple[str, bytes, int]  # file, key, ns per unit: time the CPU quota held it back


# fmt: off
V1 = Dialect(
    kind="cgroup-v1", controllers=("memory", "cpu", "cpuacct", "freezer"), memory="memory.limit_in_bytes",
    swap=("memory.memsw.limit_in_bytes", True), weight=("cpu.shares", 10240, 102),
    freeze=("freezer.state", b"FROZEN", b"THAWED"), frozen=("freezer.state", b"FROZEN"),
    usage=("cpuacct.usage", None, 1), peak=("memory.max_usage_in_bytes",),
    oom=("memory.oom_control", b"oom_kill"),  # kernel 4.13+
    throttled=("cpu.stat", b"throttled_time", 1),
)
V2 = Dialect(
    kind="cgroup-v2", controllers=("cpu", "memory"), memory="memory.max",
    swap=("memory.swap.max", False), weight=("cpu.weight", 1000, 10),
    freeze=("cgroup.freeze", b"1", b"0"), frozen=("cgroup.events", b"frozen 1"),
    usage=("cpu.stat", b"usage_usec", 1000), peak=("memory.peak", "memory.current"),  # peak: 5.19+
    oom=("memory.events", b"oom_kill"),
    throttled=("cpu.stat", b"throttled_usec", 1000),
)
# fmt: on


def lambda_vcpus(memory_mb: int) -> float:
    """Lambda's CPU share for a memory size: 1 vCPU at 1,769 MB, linear (DG, configuration-memory)."""
    return memory_mb / MB_PER_VCPU


def cpu_max(vcpus: float | None) -> CpuMax | None:
    """The CFS quota and period for ``vcpus`` (None: unlimited); the quota is never under 1 ms."""
    if vcpus is None:
        return None
    if not vcpus > 0:
        raise ValueError(f"vcpus must be positive, not {vcpus!r}")
    period = min(MAX_PERIOD_US, max(PERIOD_US, math.ceil(MIN_QUOTA_US / vcpus)))
    return CpuMax(max(MIN_QUOTA_US, round(vcpus * period)), period)


def _put(path: Path, value: str) -> None:
    """A rare write (set-up, limits): open, write, close."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _field(content: bytes, key: bytes) -> int | None:
    """The integer after ``key`` in a flat-keyed file (``oom_kill 3``); None if absent."""
    for line in content.splitlines():
        name, _, value = line.partition(b" ")
        if name == key:
            return int(value)
    return None


def _pids(directory: Path) -> list[int]:
    try:
        return [int(pid) for pid in (directory / "cgroup.procs").read_bytes().split()]
    except FileNotFoundError:
        return []


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _rmdir(directory: Path, deadline_ns: int, clock: Clock) -> None:
    """rmdir, retrying EBUSY (a killed task still on its way out) until the deadline."""
    while True:
        try:
            return os.rmdir(directory)
        except FileNotFoundError:
            return None
        except OSError:
            if clock() > deadline_ns:
                raise
            time.sleep(0.001)


class HostGroup:
    """No cgroup: nothing enforced, nothing measured; the emulator stops its own processes."""

    kind = "host"
    enforced = False

    def __init__(self, env_id: str) -> None:
        self.env_id = env_id

    # fmt: off
    def add(self, pid: int) -> None: ...
    def preexec(self) -> None: ...
    def set_cpu_quota(self, vcpus: float | None) -> None: ...
    def set_weight(self, high: bool) -> None: ...
    def thaw(self) -> None: ...
    def kill_all(self) -> None: ...
    def remove(self) -> None: ...
    def freeze(self, timeout_s: float = 1.0) -> bool: return False
    def pids(self) -> list[int]: return []
    def cpu_usage_ns(self) -> int | None: return None
    def memory_peak_bytes(self) -> int | None: return None
    def oom_kills(self) -> int | None: return None
    def throttled_ns(self) -> int | None: return None
    # fmt: on


class CgroupGroup:
    """One environment's group: one directory (v2) or one per controller hierarchy (v1).

    Per-invocation reads and the freeze file go through fds opened once (``os.pread``/``pwrite``).
    """

    enforced = True

    def __init__(
        self,
        env_id: str,
        dialect: Dialect,
        dirs: dict[str, Path],
        clock: Clock,
        on_run: Callable[[bool], None] | None = None,
    ) -> None:
        self.env_id, self.kind, self._d, self._clock = env_id, dialect.kind, dialect, clock
        # Told True when the group may run (created, thawed) with a quota under one CPU, and
        # False when it may not (frozen, removed) or its quota is a whole CPU or more, once per
        # change: the CPU ticker runs only while some such group may run (see set_cpu_quota).
        self._on_run, self._running, self._sub_cpu, self._ticking = on_run, False, False, False
        self._set_running(True)
        self._dirs = dirs  # controller -> directory
        self.dirs = tuple(dict.fromkeys(dirs.values()))
        self._procs = tuple(os.fsencode(directory / "cgroup.procs") for directory in self.dirs)
        self._peak = next((name for name in dialect.peak if self._path(name).exists()), dialect.peak[-1])
        self._fds: dict[tuple[str, int], int] = {}
        self.removed = False

    def _set_running(self, running: bool) -> None:
        self._running = running
        self._tell_ticker()

    def _tell_ticker(self) -> None:
        ticking = self._running and self._sub_cpu
        if ticking != self._ticking:
            self._ticking = ticking
            if self._on_run is not None:
                self._on_run(ticking)

    def _path(self, name: str) -> Path:
        return self._dirs.get(name.partition(".")[0], self.dirs[0]) / name

    def _fd(self, name: str, flags: int) -> int:
        """The file's fd, opened on first use and keyed by its name (per invocation, no path is
        built: pathlib was ~1 % of the emulator's CPU, docs/benchmarks.md)."""
        if (fd := self._fds.get((name, flags))) is None:
            fd = self._fds[name, flags] = os.open(self._path(name), flags)
        return fd

    def _read(self, name: str) -> bytes:
        return os.pread(self._fd(name, os.O_RDONLY), 4096, 0)

    def _write(self, name: str, value: bytes) -> None:
        os.pwrite(self._fd(name, os.O_WRONLY), value, 0)

    def configure(self, memory_mb: int, vcpus: float | None) -> None:
        _put(self._path(self._d.memory), str(memory_mb * MIB))
        swap, as_limit = self._d.swap
        if self._path(swap).exists():  # only with swap accounting
            _put(self._path(swap), str(memory_mb * MIB) if as_limit else "0")
        self.set_cpu_quota(vcpus)
        self.set_weight(False)

    def add(self, pid: int) -> None:
        """Move a running process (all its threads; not children it already has) into the group."""
        for procs in self._procs:
            _put(Path(os.fsdecode(procs)), str(pid))

    def preexec(self) -> None:  # pragma: no cover - runs in the child between fork and exec
        """For ``preexec_fn``: the child moves itself in before exec, so its whole tree starts inside."""
        for procs in self._procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # "0" is the writing process, in v1 and v2
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        return sorted({pid for directory in self.dirs for pid in _pids(directory)})

    def set_cpu_quota(self, vcpus: float | None) -> None:
        """A CFS quota of ``vcpus`` (see :func:`cpu_max`); None lifts it (for an init boost, say)."""
        limit = cpu_max(vcpus)
        # The CPU ticker (handler.local.cputick) exists for quotas shorter than their period: a
        # burst past 1.45 ms at 128 MB waits for a 4 ms tick. A quota of a whole period or more
        # (1,769 MB and up) cannot be overrun by one thread, and there each real-time wake-up
        # would only be a point where the host's other tasks take a turn: with a CPU-bound job
        # beside it, the same 1 ms handler at 1,769 MB ran 1.4-1.8x slower in some 5 s runs with
        # the ticker and in none of 27 without it (docs/benchmarks.md, "Is the new version
        # slower?"). The price: a handler running several threads at 1,769 MB or more can
        # overrun its quota by up to a scheduler tick per thread in a period (repaid later).
        self._sub_cpu = limit is not None and limit.quota_us < limit.period_us
        self._tell_ticker()
        if self._d is V2:
            quota = "max" if limit is None else str(limit.quota_us)
            return _put(self._path("cpu.max"), f"{quota} {PERIOD_US if limit is None else limit.period_us}")
        _put(self._path("cpu.cfs_quota_us"), "-1")  # first, so that any period is accepted
        if limit is not None:
            _put(self._path("cpu.cfs_period_us"), str(limit.period_us))
            _put(self._path("cpu.cfs_quota_us"), str(limit.quota_us))

    def set_weight(self, high: bool) -> None:
        """Invoking (high) or initialising weight: contended CPU goes to invocations first."""
        name, invoking, initialising = self._d.weight
        _put(self._path(name), str(invoking if high else initialising))

    def freeze(self, timeout_s: float = 1.0) -> bool:
        """Stop every task; True once the kernel reports the whole group frozen, False if not yet
        after ``timeout_s`` (0: neither wait nor read back, False; the group goes on freezing by
        itself)."""
        name, frozen, _ = self._d.freeze
        self._write(name, frozen)
        self._set_running(False)
        if timeout_s <= 0:  # the per-invocation freeze: not waited for, not read back
            return False
        deadline, pause = self._clock() + int(timeout_s * 1e9), 0.00005
        while self._d.frozen[1] not in self._read(self._d.frozen[0]).splitlines():
            if self._clock() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.005)
        return True

    def thaw(self) -> None:
        name, _, thawed = self._d.freeze
        self._write(name, thawed)
        self._set_running(True)

    def cpu_usage_ns(self) -> int:
        """CPU time, user + system, of every task the group has held since it was created."""
        name, key, ns = self._d.usage
        content = self._read(name)
        return (int(content) if key is None else _field(content, key) or 0) * ns

    def memory_peak_bytes(self) -> int:
        """The highest charge since creation (v2 without memory.peak: the current charge)."""
        return int(self._read(self._peak))

    def memory_without_file_cache_bytes(self) -> int:
        """The group's charge now less its file cache (``active_file`` + ``inactive_file`` of
        ``memory.stat``, v1 and v2: page cache of files read or written, /tmp's included; tmpfs
        and shared memory are on the anonymous lists and stay in)."""
        usage = int(self._read("memory.usage_in_bytes" if self._d is V1 else "memory.current"))
        stat = os.pread(self._fd("memory.stat", os.O_RDONLY), 16384, 0)
        cache = (_field(stat, b"active_file") or 0) + (_field(stat, b"inactive_file") or 0)
        return max(0, usage - cache)

    def throttled_ns(self) -> int:
        """How long its CPU quota has held the group back (summed over CPUs), since creation."""
        name, key, ns = self._d.throttled
        return (_field(self._read(name), key) or 0) * ns

    def oom_kills(self) -> int | None:
        """Processes the kernel OOM-killed in the group (None: the kernel is too old to count)."""
        return _field(self._read(self._d.oom[0]), self._d.oom[1])

    def kill_all(self) -> None:
        """SIGKILL everything in the group, frozen or not.

        v2 with cgroup.kill (5.14+) does it atomically. Otherwise freeze, kill, thaw: a frozen task
        cannot fork, and its queued SIGKILL acts as it thaws, before it runs any code of its own
        (thawing first would let it run, and fork, in between).
        """
        if self.removed:
            return
        if (self.dirs[0] / "cgroup.kill").exists():
            return _put(self.dirs[0] / "cgroup.kill", "1")
        self.freeze(timeout_s=0.1)
        _kill(self.pids())
        self.thaw()

    def remove(self, timeout_s: float = 5.0) -> None:
        """Kill everything, wait until the group is empty, rmdir it everywhere. Idempotent."""
        if self.removed:
            return
        deadline = self._clock() + int(timeout_s * 1e9)
        try:
            while left := self.pids():
                self.kill_all()
                if self._clock() > deadline:
                    raise TimeoutError(f"{left} in {self.dirs[0]} outlived SIGKILL for {timeout_s} s")
                time.sleep(0.001)
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            for directory in self.dirs:
                _rmdir(directory, deadline, self._clock)
            self.removed = True
        finally:
            # Even if removal failed: kill_all has just thawed it, and a group counted as running
            # keeps the CPU ticker waking every CPU until the backend closes. What is left in it
            # was SIGKILLed; it will not run code of its own again.
            self._set_running(False)
