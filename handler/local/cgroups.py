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
get more than their share (11-20 ms jobs got 0.08-0.11 vCPU). So the backend runs
``handler.local.cputick`` while it exists: a real-time wake-up every 0.5 ms on each CPU makes
the kernel check the quota there (that module has the measurements).

Costs on this machine (2-core VM, kernel 6.18, cgroup v1, other users' work running; medians):
``cpu_usage_ns`` 4.8 µs, ``memory_peak_bytes`` 1.5 µs, ``oom_kills`` 5.3 µs (``os.pread`` on fds
kept open); freeze + thaw of an idle process 0.24 ms (p99 0.46 ms; v1's writes alone: 86 + 75 µs
with ``KEEPER``, 210 + 205 µs without), but p99 25 ms right after a
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
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from handler.local.cgroupgroup import (  # noqa: F401  (re-exported: the API is cgroups.*)
    MAX_PERIOD_US,
    MB_PER_VCPU,
    MIB,
    MIN_QUOTA_US,
    PERIOD_US,
    V1,
    V2,
    CgroupGroup,
    Clock,
    CpuMax,
    Dialect,
    HostGroup,
    _kill,
    _pids,
    _put,
    _rmdir,
    cpu_max,
    lambda_vcpus,
)
from handler.local.cputick import CpuTick

MODES = ("auto", "v1", "v2", "host")
# v1 only: a frozen, empty group beside the environments' for the backend's lifetime. The legacy
# freezer turns a kernel static key (freezer_active) on when a group starts freezing while none
# is, and off when the last thaws (kernel/cgroup/legacy_freezer.c, freezer_apply_state); patching
# it cost ~130 µs of each freeze and of each thaw here. With the keeper holding it on, freezing
# an environment costs 86 µs and thawing it 75 µs (p50; 210 and 205 µs without).
KEEPER = "freeze-keeper"


# Opt-in, for measuring on a machine busy with other work: LAMBDA_EMULATOR_SHIELD=<cpu.shares>
# puts this emulator's groups under "<root_name>-shielded" and gives that top group the weight
# (v1 cpu.shares; v2 cpu.weight, scaled by 100/1024). Without it every emulator's environments
# together weigh as one process against each other runnable process on the host: beside 8-12
# of them, a 1,769 MB environment got 12-26 % of a CPU instead of its 100 %; at 10240, 91-97 %
# (docs/benchmarks.md, "Fidelity"). The price: the same weight against a load generator or
# anything else on those cores, so it is not the default.
SHIELD_ENV = "LAMBDA_EMULATOR_SHIELD"
SHIELD_SUFFIX = "-shielded"


def shield_shares() -> int | None:
    """The top group's weight asked for (cpu.shares units, 2-262144), or None (not shielded)."""
    value = os.environ.get(SHIELD_ENV, "").strip()
    if not value.isdigit() or not 2 <= int(value) <= 262_144:
        return None
    return int(value)


class CgroupUnavailable(RuntimeError):
    """The requested cgroup mode does not work here; the message is the one-line reason."""


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
        self._keeper: Path | None = None
        self._tick: CpuTick | None = None
        self._tick_started = False
        self.shield: int | None = None  # the top group's weight, cpu.shares units (see SHIELD_ENV)

    def _start_tick(self) -> None:
        """The quota checked every 0.5 ms instead of at ticks (``handler.local.cputick`` says why)."""
        if not self._tick_started:
            self._tick_started = True
            self._tick = CpuTick.start()

    def _running(self, running: bool) -> None:
        """A group may run (True) or may not any more (False): the ticker counts them."""
        if self._tick is not None:
            self._tick.running(running)

    def _stop_tick(self) -> None:
        if self._tick is not None:
            self._tick.stop()
            self._tick = None

    def _make_parents(self) -> None:
        for parent in self._parents:
            parent.mkdir(parents=True, exist_ok=True)
        if self._d is V1 and self._keeper is None:  # see KEEPER
            keeper = self._mounts["freezer"] / self.root_name / self._pid / KEEPER
            keeper.mkdir(exist_ok=True)
            _put(keeper / "freezer.state", "FROZEN")
            self._keeper = keeper
        if self._d is V2:  # delegate the controllers down to the environments (parents hold no tasks)
            for directory in (self.hierarchies[0], self._tops[0], self._parents[0]):
                control = directory / "cgroup.subtree_control"
                if not set(self._d.controllers) <= set(control.read_text().split()):
                    _put(control, " ".join(f"+{name}" for name in self._d.controllers))
        if self.shield is not None:  # the top group's weight against the rest of the host
            if self._d is V1:
                _put(self._mounts["cpu"] / self.root_name / "cpu.shares", str(self.shield))
            else:
                weight = min(10_000, max(1, self.shield * 100 // 1024))
                _put(self._tops[0] / "cpu.weight", str(weight))

    def create(self, env_id: str, memory_mb: int, cpu_quota: float | None) -> CgroupGroup:
        """A new group of ``memory_mb`` MiB and ``cpu_quota`` vCPUs (None: unlimited), at the
        initialising weight. FileExistsError if ``env_id`` is in use."""
        if not env_id or "/" in env_id or env_id in (".", ".."):
            raise ValueError(f"env_id must be one path component, not {env_id!r}")
        if memory_mb < 1:
            raise ValueError(f"memory_mb must be at least 1, not {memory_mb}")
        self._make_parents()
        self._start_tick()
        self._groups = {key: group for key, group in self._groups.items() if not group.removed}
        dirs = {name: mount / self.root_name / self._pid / env_id for name, mount in self._mounts.items()}
        for directory in dict.fromkeys(dirs.values()):
            directory.mkdir()
        group = self._groups[env_id] = CgroupGroup(env_id, self._d, dirs, self._clock, self._running)
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
            removed += remove_emulator_groups(self._tops, name, self._d, deadline, self._clock)
        return removed

    def close(self) -> None:
        """Remove this emulator's groups and its parent; the shared root too if it is empty."""
        deadline = self._clock() + 5_000_000_000
        self._stop_tick()
        for group in self._groups.values():
            group.remove()
        if self._keeper is not None:
            _put(self._keeper / "freezer.state", "THAWED")
            _rmdir(self._keeper, deadline, self._clock)
            self._keeper = None
        for parent in self._parents:
            _rmdir(parent, deadline, self._clock)
        for top in self._tops:
            with contextlib.suppress(OSError):  # another emulator may still be using it
                os.rmdir(top)


def remove_emulator_groups(
    tops: tuple[Path, ...], pid: str, dialect: Dialect, deadline_ns: int, clock: Clock
) -> int:
    """Kill every process in emulator ``pid``'s groups under each of ``tops`` (SIGKILL, then
    thaw: a frozen task dies as it thaws) and remove the groups; the environment groups removed.
    For a dead emulator (``remove_stale``, ``handler.local.supervisor``)."""
    dirs = [Path(path) for top in tops for path, _, _ in os.walk(top / pid)]  # top-down
    removed = len({d.name for d in dirs if d.parent.name == pid and d.name != KEEPER})
    while any(_pids(directory) for directory in dirs) and clock() < deadline_ns:
        for directory in dirs:
            _kill(_pids(directory))
        for directory in (d / dialect.freeze[0] for d in dirs):
            if directory.exists():
                _put(directory, dialect.freeze[2].decode())
        time.sleep(0.001)
    for directory in reversed(dirs):
        _rmdir(directory, deadline_ns, clock)
    return removed


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
    shield = shield_shares()
    root_name += SHIELD_SUFFIX if shield is not None else ""
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
                backend.shield = shield
                backend.probe()
                backend.reason = f"{dialect.kind} probe passed (group, limits, child moved in, freeze)"
                if shield is not None:
                    backend.reason += f"; shielded: top group {root_name} weighs {shield} cpu.shares"
                return backend
            except (CgroupUnavailable, OSError) as exc:
                reasons.append(f"{dialect.kind}: {exc}")
    if mode != "auto":
        raise CgroupUnavailable(reasons[0])
    return HostBackend("; ".join(reasons))
