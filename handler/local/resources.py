"""Lambda's resource limits for every execution environment, and the CPU time beside each figure.

**Enforced** (where cgroups work, ``handler.local.cgroups``; the host model enforces nothing):

- **Memory**: ``memory_mb``, by two rules, and over it the invocation fails as on AWS with
  ``Runtime.OutOfMemory`` (``handler.local.environment``). The kernel limits what it charges the
  group (anonymous memory, the page cache the environment brings in) and OOM-kills the runtime
  over it (page cache it reclaims first: a full /tmp never OOM-kills). It does not charge the
  environment for pages of shared libraries that another process brought into the host's page
  cache first (cgroup memory charges "on the basis of the first touch approach", kernel docs,
  cgroup-v1 memory); on Lambda each environment has a page cache of its own, so they are its
  memory (here the lean function is charged 8 MB and has 19 MB resident; the tutorial's, 103 and
  166 MB). So the runtime's peak resident set (VmHWM, which counts them) is held against the
  limit as well: at the end of each init and each invocation, and every 0.1 s while one runs
  (``Pool``); over it, the environment is killed, with the same error. REPORT's Max Memory Used
  is the larger of the two peaks, at most the memory size, less the group's file cache
  (:class:`EnvMemory`): /tmp is storage on Lambda, not memory.
- **CPU share during an invocation**: ``memory_mb / 1769`` vCPU ("At 1,769 MB, a function has the
  equivalent of one vCPU", AWS Lambda DG, configuration-memory), a CFS quota; at most 6 vCPUs
  (Lambda's top, "Functions with Up to 10 GB of Memory and 6 vCPUs", AWS News Blog, 2020;
  10,240 / 1,769 is 5.79) and never more than this host has.
- **CPU during init**, ``init_cpu``: ``"boost"`` (the default), up to 2 vCPUs whatever the memory
  size; ``"memory"``, the invocation's share. AWS does not document a boost; community
  measurements report one: "the initialization phase is both free and gets two unthrottled
  vCPUs, even at the lowest memory configurations" (Luc van Donkersgoed, bitesizedserverless.com,
  "When is the Lambda Init Phase Free, and when is it Billed?"); "normal Lambda 'containers' ...
  actually get a performance boost when they're in the init stage" (Michael Hart, 2019, a PBKDF2
  benchmark); "up to 10 seconds for function initialization with burst CPU" (AWS Lambda Web
  Adapter docs). Measured before 2023; not verified since INIT is billed (2025-08-01).
- **Weight**: initialising environments get a low CPU weight, invoking ones a high weight, so that
  a cold start never slows a warm invocation (on Lambda they do not share a CPU).
- **Freeze** (``freeze``, opt-in): once the runtime asks for its next event it is frozen until it gets
  one, as Lambda "freezes the execution environment when the runtime and each extension have
  completed and there are no pending events" (DG, lambda-runtime-environment): no thread runs,
  no timer fires. ``freeze(timeout_s=0)`` never blocks the event loop; thawed in ``claim``.
- **/tmp**: ``handler.local.ephemeral``.

**Measured**, in every model, beside each wall time: the CPU time, and whether the host's
contention slowed the phase (``handler.local.contention``).
"""

from __future__ import annotations

import contextlib
import math
import os

from handler.local import cgroups, spawner
from handler.local.config import INIT_CPU_POLICIES, EmulatorConfig, FunctionConfig
from handler.local.contention import Phase, Pressure, contention, process_cpu_ns, runqueue_wait_ns
from handler.local.ephemeral import EnvTmp, TmpRoot
from handler.local.lifecycle import SATURATED, Lifecycle, init_allowance_ns
from handler.local.process import MemoryMeter, PeakRss
from handler.local.reportline import EmulatorLine
from handler.local.supervisor import Supervisor

ROOT_NAME = "lambda-emulator"
MODES = {"auto": "auto", "cgroup-v1": "v1", "cgroup-v2": "v2", "host": "host"}  # config -> cgroups
BOOST_VCPUS = 2.0
MAX_VCPUS = 6.0


def host_cpus() -> int:
    """The CPUs this process may run on (its affinity), as the most any share may be."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ResourceModel:
    """The emulator's resource model: a cgroup backend (or the host's), its policies, and /tmp."""

    def __init__(
        self,
        backend: cgroups.ResourceBackend,
        tmp: TmpRoot,
        tmp_reason: str,
        *,
        init_cpu: str = "boost",
        freeze: bool = True,
        contention_factor: float = 1.5,
        cpus: int | None = None,
        pressure: Pressure | None = None,
    ) -> None:
        if init_cpu not in INIT_CPU_POLICIES:
            raise ValueError(f"init_cpu must be one of {', '.join(INIT_CPU_POLICIES)}, not {init_cpu!r}")
        self.backend, self.tmp, self.tmp_reason = backend, tmp, tmp_reason
        self.init_cpu, self.contention_factor = init_cpu, contention_factor
        self.freeze = freeze and backend.enforced
        self.cpus = cpus or host_cpus()
        self.pressure = pressure or Pressure()
        self.stale_removed = (0, 0)  # groups, /tmp directories that dead emulators left
        self.supervisor: Supervisor | None = None  # removes it all should this process die

    @classmethod
    def host(cls, reason: str = "no resource model configured") -> ResourceModel:
        """Nothing enforced, private TMPDIRs: for a pool that was given no model (unit tests)."""
        return cls(cgroups.HostBackend(reason), *TmpRoot.detect(False), freeze=False)

    @classmethod
    def detect(cls, config: EmulatorConfig) -> ResourceModel:
        """The model ``config.resource_model`` asks for; CgroupUnavailable if a forced cgroup
        version does not work here. Removes what a dead emulator left (groups, /tmp dirs)."""
        backend = cgroups.detect(ROOT_NAME, MODES[config.resource_model])
        model = cls(
            backend,
            *TmpRoot.detect(backend.enforced),
            init_cpu=config.init_cpu,
            freeze=config.freeze,
            contention_factor=config.contention_factor,
        )
        try:
            model.stale_removed = (backend.remove_stale(), model.tmp.remove_stale())
            model.supervisor = Supervisor.start(backend, model.tmp.directory, ROOT_NAME)
        except BaseException:
            with contextlib.suppress(OSError, TimeoutError):  # the first error is the one to see
                model.close()  # the probe's parents, the CPU ticker, /tmp's images: none leak
            raise
        return model

    @property
    def enforced(self) -> bool:
        return self.backend.enforced

    def invoke_vcpus(self, memory_mb: int) -> float:
        return min(cgroups.lambda_vcpus(memory_mb), MAX_VCPUS, float(self.cpus))

    def init_vcpus(self, memory_mb: int) -> float:
        if self.init_cpu == "memory":
            return self.invoke_vcpus(memory_mb)
        return min(BOOST_VCPUS, float(self.cpus))

    def quota(self, vcpus: float) -> float | None:
        """The CFS quota for a share: None (no quota) once the share is the whole host."""
        return None if vcpus >= self.cpus else vcpus

    def prepare(self, functions: list[FunctionConfig]) -> None:
        """Start making these functions' /tmp images ahead of their first spawns."""
        self.tmp.prepare(sorted({function.ephemeral_storage_mb for function in functions}))

    def environment(self, env_id: str, config: FunctionConfig) -> EnvResources:
        return EnvResources(self, env_id, config)

    def summary(self) -> str:
        """The start-up line: which model, and in the host model why nothing is enforced."""
        if not self.enforced:
            return (
                f"resources: host model: limits are NOT enforced (no memory limit, CPU share, "
                f"freeze or /tmp size): {self.backend.reason}"
            )
        boost = f"boost {self.init_vcpus(128):g} vCPU"
        policy = boost if self.init_cpu == "boost" else "memory (the invocation's share)"
        tick_us, tick_reason = self.backend.cpu_tick()
        tick = f"every {tick_us} µs" if tick_us else f"at the kernel's ticks (CPU ticker off: {tick_reason})"
        return (
            f"resources: {self.backend.kind}: memory limit = memory_mb, CPU share = memory_mb/1769 vCPU "
            f"(at most {min(MAX_VCPUS, self.cpus):g}), CPU quota checked {tick}, init CPU: {policy}, "
            f"freeze: {'on' if self.freeze else 'off'}, /tmp: {self.tmp_reason}"
        )

    def describe(self, functions: list[FunctionConfig]) -> dict:
        """GET /_emulator/resource-model: what produced the figures, for results' metadata."""
        tick_us, tick_reason = self.backend.cpu_tick()
        return {
            "schema_version": 1,
            "kind": self.backend.kind,
            "reason": self.backend.reason,
            "enforced": self.enforced,
            "init_cpu": self.init_cpu,
            "init_cpu_boost_vcpus": min(BOOST_VCPUS, float(self.cpus)) if self.init_cpu == "boost" else None,
            "freeze": self.freeze,
            "contention_factor": self.contention_factor,
            "saturation_threshold": SATURATED,
            "cpu_period_us": cgroups.PERIOD_US if self.enforced else None,
            "cpu_tick_us": tick_us,  # the quota checked every N µs (handler.local.cputick); 0: at ticks
            "cpu_tick_reason": tick_reason or None,
            "spawn": "off the event loop" if spawner.usable() else "on the event loop (no pidfd)",
            "mb_per_vcpu": cgroups.MB_PER_VCPU,
            "max_vcpus": min(MAX_VCPUS, float(self.cpus)),
            "host_cpus": self.cpus,
            "host_pressure": self.pressure.path,
            "tmp": "disk" if self.tmp.disk else "directory",
            "functions": {
                function.name: {
                    "memory_mb": function.memory_mb,
                    "cpu_share_vcpus": round(self.invoke_vcpus(function.memory_mb), 4)
                    if self.enforced
                    else None,
                    "init_cpu_vcpus": round(self.init_vcpus(function.memory_mb), 4)
                    if self.enforced
                    else None,
                    "ephemeral_storage_mb": function.ephemeral_storage_mb,
                }
                for function in functions
            },
        }

    def close(self) -> None:
        """Remove every group and /tmp directory of this emulator (environments stopped first)."""
        try:
            self.backend.close()
        finally:
            self.tmp.close()
            self.pressure.close()
            if self.supervisor is not None:
                self.supervisor.close()


class EnvMemory:
    """Max Memory Used, MB (MiB), rounded up: the larger of the group's charge without its file
    cache and the runtime's peak resident set, at most ``memory_mb`` (the module docstring says
    why both).

    File cache is left out: the page cache of /tmp's files is charged to the environment that
    writes them, yet /tmp is storage on Lambda, apart from its memory (AWS Compute Blog, "Using
    larger ephemeral storage for AWS Lambda"), and the kernel reclaims file cache before it
    OOM-kills. The kernel keeps a peak of the whole charge only, so the charge without file cache
    is read (``memory.stat``, 6.4 µs a read here) only when that peak is above both figures already
    known, and its largest reading is kept: at each end of an init or an invocation and every
    0.1 s while one runs, not between. A 256 MB function that wrote 700 MB into /tmp: the peak
    charge 255 MB, Max Memory Used its resident set (tests/test_tmp_disk.py)."""

    def __init__(self, group: cgroups.CgroupGroup, rss: PeakRss, memory_mb: int) -> None:
        self._group, self.rss, self._memory_mb = group, rss, memory_mb
        self._charged_mb = 0  # the largest reading of the charge without file cache

    def mb(self) -> int:
        rss = self.rss.mb()
        try:
            peak = math.ceil(self._group.memory_peak_bytes() / cgroups.MIB)
            if peak > max(rss, self._charged_mb):
                charged = math.ceil(self._group.memory_without_file_cache_bytes() / cgroups.MIB)
                self._charged_mb = max(self._charged_mb, min(peak, charged))
        except (OSError, ValueError):
            pass
        return min(self._memory_mb, max(self._charged_mb, rss))

    def close(self) -> None:
        self.rss.close()


class EnvResources:
    """One environment's group, /tmp and CPU readings. Nothing touches the OS until ``create``."""

    def __init__(self, model: ResourceModel, env_id: str, config: FunctionConfig) -> None:
        self.model, self.env_id, self.memory_mb = model, env_id, config.memory_mb
        self.init_share = model.init_vcpus(config.memory_mb)
        self.invoke_share = model.invoke_vcpus(config.memory_mb)
        self.group: cgroups.EnvGroup = cgroups.HostGroup(env_id)
        paths = [str(config.code_dir), *config.env.values()]
        self.tmp: EnvTmp = model.tmp.for_environment(env_id, config.ephemeral_storage_mb, paths)
        self.init_phase: Phase | None = None
        self.frozen = False
        self._pid: int | None = None
        self._rss: PeakRss | None = None
        self._throttled_seen = 0  # the group's throttled time at the last phase's end
        self.memory_exceeded = False  # killed by over_memory's rule (the kernel counts its own)
        self._spawn_pressure: int | None = None
        self._created = False

    def create(self) -> None:
        """Before the spawn: the /tmp directory and the group (at the init share, low weight)."""
        self.tmp.create()
        try:
            self.group = self.model.backend.create(
                self.env_id, self.memory_mb, self.model.quota(self.init_share)
            )
        except BaseException:
            self.tmp.remove()
            raise
        self._created = True
        self._spawn_pressure = self.model.pressure.total_us()

    def variables(self) -> dict[str, str]:
        return self.tmp.variables()

    @property
    def needs_preexec(self) -> bool:
        """Only a group or a /tmp mount needs a step in the child (spawning without is faster)."""
        return isinstance(self.group, cgroups.CgroupGroup) or self.tmp.mount_at is not None

    @property
    def init_phase_share(self) -> float:
        """The share the init is judged at (in the host model, the host's CPUs)."""
        return self._share(self.init_share)

    def preexec(self) -> None:  # pragma: no cover - runs in the child between fork and exec
        self.group.preexec()
        self.tmp.preexec()

    def meter(self, pid: int) -> MemoryMeter:
        """Max Memory Used's meter (:class:`EnvMemory`; the host model: the peak resident set)."""
        self._rss = PeakRss(pid)
        if isinstance(self.group, cgroups.CgroupGroup):
            return EnvMemory(self.group, self._rss, self.memory_mb)
        return self._rss

    def over_memory(self) -> bool:
        """Where enforced: is the runtime's peak resident set over the limit (see the docstring)?"""
        return self.model.enforced and self._rss is not None and self._rss.mb() > self.memory_mb

    def started(self, pid: int) -> None:
        self._pid = pid
        self.tmp.started()
        if self.model.supervisor is not None:
            self.model.supervisor.started(pid)

    def cpu_ns(self) -> int | None:
        """The runtime process's CPU time since it started (None once it is gone)."""
        return process_cpu_ns(self._pid) if self._pid is not None else None

    def _share(self, vcpus: float) -> float:
        return vcpus if self.model.enforced else float(self.model.cpus)

    def init_finished(self, wall_ns: int) -> Phase:
        """The runtime's first /next: the init's figures; then the invocation's share, high weight."""
        now, before = self.model.pressure.total_us(), self._spawn_pressure
        pressure = now - before if now is not None and before is not None else None
        share, throttled = self._share(self.init_share), self._throttled(self.init_share)
        self.init_phase = Phase("init", wall_ns, self.cpu_ns(), share, pressure, throttled)
        if self.model.enforced:
            if self.init_share != self.invoke_share:
                self.group.set_cpu_quota(self.model.quota(self.invoke_share))
            self.group.set_weight(True)
        return self.init_phase

    def extend_init(self, lifecycle: Lifecycle) -> str | None:
        """The init timer expired: move the deadline if the host, not the function, used the
        time (``lifecycle.init_allowance_ns``); the log line saying so, or None (expire)."""
        now, before = self.model.pressure.total_us(), self._spawn_pressure
        pressure_ns = (now - before) * 1000 if now is not None and before is not None else None
        cpu_ns, share = self.cpu_ns(), self.init_phase_share
        elapsed_ns = lifecycle.clock() - lifecycle.spawned_ns
        limit_ns, cap_ns = lifecycle.timeouts.init_ns, lifecycle.init_cap_ns
        waited_ns = runqueue_wait_ns(self._pid) if self._pid is not None else None
        allowance_ns = init_allowance_ns(elapsed_ns, cpu_ns, share, pressure_ns, limit_ns, cap_ns, waited_ns)
        if allowance_ns <= 0 or cpu_ns is None or pressure_ns is None:
            return None
        moved_ns = lifecycle.extend_init(allowance_ns) - lifecycle.clock()
        return (
            f"EMULATOR init timer deferred for environment {self.env_id}: {elapsed_ns / 1e9:.2f} s wall, "
            f"CPU {cpu_ns / 1e6:.1f} ms at {share:.3f} vCPU, host CPU pressure {pressure_ns / 1e9:.2f} s: "
            f"the host was saturated; deadline moved by {moved_ns / 1e9:.2f} s (cap {cap_ns / 1e9:.0f} s)"
        )

    def _throttled(self, share: float) -> int | None:
        """Its quota's waits since the last reading (0 without a quota; None in the host model).
        Read once per phase, at its end: frozen or idle, a group is not held back."""
        if not self.model.enforced:
            return None
        if self.model.quota(share) is None:
            return 0
        try:
            total = self.group.throttled_ns() or 0
        except OSError:
            return None
        delta, self._throttled_seen = total - self._throttled_seen, total
        return delta

    def invoke_started(self) -> tuple[int | None, int | None]:
        return self.cpu_ns(), self.model.pressure.total_us()

    def invoke_finished(self, start: tuple[int | None, int | None], wall_ns: int) -> Phase:
        cpu_before, pressure_before = start
        cpu, pressure = self.cpu_ns(), self.model.pressure.total_us()
        return Phase(
            "invoke",
            wall_ns,
            cpu - cpu_before if cpu is not None and cpu_before is not None else None,
            self._share(self.invoke_share),
            pressure - pressure_before if pressure is not None and pressure_before is not None else None,
            self._throttled(self.invoke_share),
        )

    def line(self, request_id: str, cold: bool, invoke: Phase | None) -> EmulatorLine:
        """The EMULATOR line: the invocation's CPU (and on a cold start the init's), contention."""
        init = self.init_phase if cold else None
        phases = [phase for phase in (init, invoke) if phase is not None]
        return EmulatorLine(
            request_id=request_id,
            duration_cpu_ms=invoke.cpu_ns / 1e6 if invoke is not None and invoke.cpu_ns is not None else None,
            cpu_share_vcpus=self.invoke_share if self.model.enforced else None,
            init_cpu_policy=self.model.init_cpu,
            init_cpu_ms=init.cpu_ns / 1e6 if init is not None and init.cpu_ns is not None else None,
            contended=contention(phases, self.model.contention_factor),
        )

    def freeze(self) -> None:
        """The runtime asked for its next event and none is pending: freeze, without waiting."""
        if self.model.freeze and self._created and not self.frozen:
            self.frozen = True
            with contextlib.suppress(OSError):
                self.group.freeze(timeout_s=0)

    def thaw(self) -> None:
        if self.frozen:
            self.frozen = False
            with contextlib.suppress(OSError):
                self.group.thaw()

    def oom_killed(self) -> bool:
        """Was the environment killed over its memory limit, by the kernel or by over_memory?"""
        if self.memory_exceeded:
            return True
        try:
            return bool(self.group.oom_kills())
        except OSError:
            return False

    def close(self) -> None:
        """After the process exited: kill what is left in the group, remove it and /tmp."""
        try:
            if self._created:
                self.group.remove()
        finally:
            self.tmp.remove()
            if self._pid is not None and self.model.supervisor is not None:
                self.model.supervisor.exited(self._pid)
