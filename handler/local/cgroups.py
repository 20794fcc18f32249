"""One kernel cgroup per execution environment: Lambda's memory limit, CPU share and freeze.

Each environment (one process tree started by the emulator) gets a group,
``<hierarchy>/<root_name>/<emulator pid>/<env id>``, in which the kernel enforces:

- **Memory**: ``memory_mb`` MiB (Lambda's "MB" are MiB), swap included, so the kernel OOM-kills a
  process that goes over it (on Lambda: "Runtime exited with error: signal: killed",
  /tmp/research/lambda_resources.md §2c).
- **CPU**: a CFS bandwidth quota in vCPUs. :func:`lambda_vcpus` follows "At 1,769 MB, a function has
  the equivalent of one vCPU" (AWS Lambda DG, configuration-memory.html).
- **Weight**: invoking environments outrank initialising ones (``set_weight``). Weights rank
  environments against each other only: the whole ``root_name`` tree weighs as one default entity
  against what runs outside it (a load generator on the same machine, say).
- **Freeze** between invocations, as Lambda does ("Lambda freezes the execution environment",
  DG, lambda-runtime-environment.html): no thread or timer of a frozen environment runs.

CPU period, 20 ms: pwrdrvr/lambda-dispatch#246 observed that on Lambda "the throttling interval
is actually 20 ms". The kernel rejects a quota under 1 ms (``min_cfs_quota_period``), so 10 ms
cannot express 128 MB's 0.072 vCPU (0.72 ms: EINVAL here); below 0.05 vCPU the period stretches
to keep 1 ms. At 0.072 vCPU a 60 ms CPU job took, by period (wall, share; then 2 ms requests at
random gaps, p50/p90): 14 ms: 819 ms, 0.073, 12/26 ms; 20 ms: 810 ms, 0.074, 9/20 ms; 50 ms:
777 ms, 0.077, 2/24 ms; 100 ms: 752 ms, 0.080, 2/8 ms. CFS checks the quota at scheduler ticks
(HZ=250 here), so a burst overruns it by up to a tick and repays it in later periods: short jobs
get more than their share (11-20 ms jobs got 0.08-0.11 vCPU).

Costs on this machine (2-core VM, kernel 6.18, cgroup v1, other users' work running; medians):
``cpu_usage_ns`` 4.8 µs, ``memory_peak_bytes`` 1.5 µs, ``oom_kills`` 5.3 µs (``os.pread`` on fds
kept open); freeze + thaw of an idle process 0.24 ms (p99 0.46 ms), but p99 25 ms right after a
10 ms burst at 0.072 vCPU and 12 ms beside two CPU-bound processes: a task must run to freeze, and
a throttled one waits for the next period, so an event loop should call ``freeze(timeout_s=0)``;
create + remove 0.6 ms; detect() 6 ms; a spawn 0.85 ms, 2.3 ms with any ``preexec_fn`` (fork,
not vfork), 2.7 ms with ``preexec``.

Not measured or not modelled: memory is what the kernel charges to the group, page cache and kernel
memory included (unlike ``VmHWM``); on v1 a process moved in with ``add`` leaves the pages it had
charged where they were (``preexec`` has none yet); v2 without ``memory.peak`` (kernel < 5.19)
reports ``memory.current``; the visible core count (2 up to 3008 MB on Lambda); the init CPU
boost; disk and network limits; PID namespaces (staleness is judged by PID; a reused PID looks
alive). The host backend enforces and measures nothing, and says so (``enforced`` is False).
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MODES = ("auto", "v1", "v2", "host")
MIB = 1 << 20
PERIOD_US = 20_000  # Lambda's observed throttling interval (pwrdrvr/lambda-dispatch#246)
MIN_QUOTA_US, MAX_PERIOD_US = 1_000, 1_000_000  # the kernel's min/max_cfs_quota_period
MB_PER_VCPU = 1769  # AWS Lambda DG, configuration-memory.html
Clock = Callable[[], int]


class CgroupUnavailable(RuntimeError):
    """The requested cgroup mode does not work here; the message is the one-line reason."""


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


# fmt: off
V1 = Dialect(
    kind="cgroup-v1", controllers=("memory", "cpu", "cpuacct", "freezer"), memory="memory.limit_in_bytes",
    swap=("memory.memsw.limit_in_bytes", True), weight=("cpu.shares", 10240, 102),
    freeze=("freezer.state", b"FROZEN", b"THAWED"), frozen=("freezer.state", b"FROZEN"),
    usage=("cpuacct.usage", None, 1), peak=("memory.max_usage_in_bytes",),
    oom=("memory.oom_control", b"oom_kill"),  # kernel 4.13+
)
V2 = Dialect(
    kind="cgroup-v2", controllers=("cpu", "memory"), memory="memory.max",
    swap=("memory.swap.max", False), weight=("cpu.weight", 1000, 10),
    freeze=("cgroup.freeze", b"1", b"0"), frozen=("cgroup.events", b"frozen 1"),
    usage=("cpu.stat", b"usage_usec", 1000), peak=("memory.peak", "memory.current"),  # peak: 5.19+
    oom=("memory.events", b"oom_kill"),
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
    # fmt: on


class CgroupGroup:
    """One environment's group: one directory (v2) or one per controller hierarchy (v1).

    Per-invocation reads and the freeze file go through fds opened once (``os.pread``/``pwrite``).
    """

    enforced = True

    def __init__(self, env_id: str, dialect: Dialect, dirs: dict[str, Path], clock: Clock) -> None:
        self.env_id, self.kind, self._d, self._clock = env_id, dialect.kind, dialect, clock
        self._dirs = dirs  # controller -> directory
        self.dirs = tuple(dict.fromkeys(dirs.values()))
        self._procs = tuple(os.fsencode(directory / "cgroup.procs") for directory in self.dirs)
        peaks = [self._path(name) for name in dialect.peak]
        self._peak = next((path for path in peaks if path.exists()), peaks[-1])
        self._fds: dict[tuple[Path, int], int] = {}
        self.removed = False

    def _path(self, name: str) -> Path:
        return self._dirs.get(name.partition(".")[0], self.dirs[0]) / name

    def _fd(self, path: Path, flags: int) -> int:
        if (fd := self._fds.get((path, flags))) is None:
            fd = self._fds[path, flags] = os.open(path, flags)
        return fd

    def _read(self, name: str | Path) -> bytes:
        return os.pread(self._fd(self._path(name) if isinstance(name, str) else name, os.O_RDONLY), 4096, 0)

    def _write(self, name: str, value: bytes) -> None:
        os.pwrite(self._fd(self._path(name), os.O_WRONLY), value, 0)

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
        after ``timeout_s`` (0: do not wait; the group goes on freezing by itself)."""
        name, frozen, _ = self._d.freeze
        self._write(name, frozen)
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

    def cpu_usage_ns(self) -> int:
        """CPU time, user + system, of every task the group has held since it was created."""
        name, key, ns = self._d.usage
        content = self._read(name)
        return (int(content) if key is None else _field(content, key) or 0) * ns

    def memory_peak_bytes(self) -> int:
        """The highest charge since creation (v2 without memory.peak: the current charge)."""
        return int(self._read(self._peak))

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


class HostBackend:
    """The host model: every group is a :class:`HostGroup`; ``reason`` says why there are no cgroups."""

    kind = "host"
    enforced = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def create(self, env_id: str, memory_mb: int, cpu_quota: float | None) -> HostGroup:
        return HostGroup(env_id)

    def remove_stale(self) -> int:
        return 0

    def close(self) -> None: ...


class CgroupBackend:
    """Groups under ``<hierarchy>/<root_name>/<this pid>/`` in every hierarchy the dialect uses."""

    enforced = True

    def __init__(self, dialect: Dialect, mounts: dict[str, Path], root_name: str, clock: Clock) -> None:
        self.kind, self.reason, self.root_name = dialect.kind, "", root_name
        self._d, self._mounts, self._clock = dialect, mounts, clock
        self.hierarchies = tuple(dict.fromkeys(mounts.values()))
        self._tops = tuple(hierarchy / root_name for hierarchy in self.hierarchies)
        self._pid = str(os.getpid())
        self._parents = tuple(top / self._pid for top in self._tops)
        self._groups: dict[str, CgroupGroup] = {}

    def _make_parents(self) -> None:
        for parent in self._parents:
            parent.mkdir(parents=True, exist_ok=True)
        if self._d is V2:  # delegate the controllers down to the environments (parents hold no tasks)
            for directory in (self.hierarchies[0], self._tops[0], self._parents[0]):
                control = directory / "cgroup.subtree_control"
                if not set(self._d.controllers) <= set(control.read_text().split()):
                    _put(control, " ".join(f"+{name}" for name in self._d.controllers))

    def create(self, env_id: str, memory_mb: int, cpu_quota: float | None) -> CgroupGroup:
        """A new group of ``memory_mb`` MiB and ``cpu_quota`` vCPUs (None: unlimited), at the
        initialising weight. FileExistsError if ``env_id`` is in use."""
        if not env_id or "/" in env_id or env_id in (".", ".."):
            raise ValueError(f"env_id must be one path component, not {env_id!r}")
        if memory_mb < 1:
            raise ValueError(f"memory_mb must be at least 1, not {memory_mb}")
        self._make_parents()
        self._groups = {key: group for key, group in self._groups.items() if not group.removed}
        dirs = {name: mount / self.root_name / self._pid / env_id for name, mount in self._mounts.items()}
        for directory in dict.fromkeys(dirs.values()):
            directory.mkdir()
        group = self._groups[env_id] = CgroupGroup(env_id, self._d, dirs, self._clock)
        try:
            group.configure(memory_mb, cpu_quota)
        except BaseException:
            group.remove()
            raise
        return group

    def probe(self) -> None:
        """Create a group, set its limits, start a child in it with ``preexec``, freeze, remove."""
        sleep = shutil.which("sleep")
        command = [sleep, "10"] if sleep else [sys.executable, "-c", "import time; time.sleep(10)"]
        try:
            group = self.create(f"probe-{secrets.token_hex(4)}", 64, 0.5)
            child = subprocess.Popen(command, preexec_fn=group.preexec, stdin=subprocess.DEVNULL)
            try:
                if child.pid not in group.pids():
                    raise CgroupUnavailable(f"a child did not land in {group.dirs[0]}")
                if not group.freeze():
                    raise CgroupUnavailable(f"{group.dirs[0]} did not freeze within 1 s")
                group.remove()
            finally:
                child.kill()
                child.wait()
        except Exception as exc:
            with contextlib.suppress(OSError, TimeoutError):
                self.close()
            if isinstance(exc, CgroupUnavailable):
                raise
            raise CgroupUnavailable(f"{self.kind} probe failed: {exc}".replace("\n", " ")) from exc

    def remove_stale(self) -> int:
        """Remove what emulators no longer alive left under ``root_name`` (after a SIGKILL, say),
        killing the processes still inside (SIGKILL, then thaw). Returns environment groups removed."""
        names: set[str] = set()
        for top in self._tops:
            with contextlib.suppress(FileNotFoundError):
                names |= {entry.name for entry in os.scandir(top) if entry.is_dir() and entry.name.isdigit()}
        removed, deadline = 0, self._clock() + 5_000_000_000
        for name in sorted(n for n in names if n != self._pid and not Path(f"/proc/{n}").exists()):
            dirs = [Path(path) for top in self._tops for path, _, _ in os.walk(top / name)]  # top-down
            removed += len({directory.name for directory in dirs if directory.parent.name == name})
            while any(_pids(directory) for directory in dirs) and self._clock() < deadline:
                for directory in dirs:
                    _kill(_pids(directory))
                for directory in (d / self._d.freeze[0] for d in dirs):
                    if directory.exists():
                        _put(directory, self._d.freeze[2].decode())
                time.sleep(0.001)
            for directory in reversed(dirs):
                _rmdir(directory, deadline, self._clock)
        return removed

    def close(self) -> None:
        """Remove this emulator's groups and its parent; the shared root too if it is empty."""
        deadline = self._clock() + 5_000_000_000
        for group in self._groups.values():
            group.remove()
        for parent in self._parents:
            _rmdir(parent, deadline, self._clock)
        for top in self._tops:
            with contextlib.suppress(OSError):  # another emulator may still be using it
                os.rmdir(top)


ResourceBackend = CgroupBackend | HostBackend
EnvGroup = CgroupGroup | HostGroup


def _backend(dialect: Dialect, root_name: str, clock: Clock) -> CgroupBackend:
    """The backend for ``dialect`` if its hierarchies are mounted with the controllers it needs."""
    with open("/proc/self/mounts") as table:
        mounts = [(row[2], Path(row[1]), row[3].split(",")) for row in map(str.split, table)]
    if dialect is V1:
        found = {name: path for kind, path, options in mounts if kind == "cgroup" for name in options}
        if missing := [name for name in V1.controllers if name not in found]:
            raise CgroupUnavailable(f"no cgroup v1 hierarchy for {', '.join(missing)}")
        return CgroupBackend(V1, {name: found[name] for name in V1.controllers}, root_name, clock)
    mount = next((path for kind, path, _ in mounts if kind == "cgroup2"), None)
    if mount is None:
        raise CgroupUnavailable("no cgroup2 mount")
    available = (mount / "cgroup.controllers").read_text().split()
    if missing := [name for name in V2.controllers if name not in available]:
        raise CgroupUnavailable(
            f"cgroup v2 at {mount} has no {', '.join(missing)} controller "
            f"(available: {' '.join(available) or 'none'}; the rest are bound to v1)"
        )
    return CgroupBackend(V2, dict.fromkeys(V2.controllers, mount), root_name, clock)


def detect(
    root_name: str = "lambda-emulator", mode: str = "auto", *, clock: Clock = time.perf_counter_ns
) -> ResourceBackend:
    """The backend that really works here, found by trying it (:meth:`CgroupBackend.probe`).

    ``auto`` tries v2, then v1, then falls back to the host model, whose ``reason`` says why;
    a forced ``v1`` or ``v2`` that does not work raises CgroupUnavailable with a one-line reason.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "host":
        return HostBackend("host mode requested")
    if not sys.platform.startswith("linux"):
        reasons = [f"cgroups are Linux-only (this is {sys.platform})"]
    elif os.geteuid() != 0:
        reasons = ["not root: cgroups need write access to /sys/fs/cgroup"]
    else:
        reasons = []
        for dialect in (V2, V1):
            if mode not in ("auto", dialect.kind[-2:]):
                continue
            try:
                backend = _backend(dialect, root_name, clock)
                backend.probe()
                backend.reason = f"{dialect.kind} probe passed (group, limits, child moved in, freeze)"
                return backend
            except (CgroupUnavailable, OSError) as exc:
                reasons.append(f"{dialect.kind}: {exc}")
    if mode != "auto":
        raise CgroupUnavailable(reasons[0])
    return HostBackend("; ".join(reasons))
