"""Contracts of handler/local/cgroups.py on real processes, real cgroups and the real kernel.

Tests that need cgroups skip, with the reason, where they are unavailable (not root, not Linux,
no controller); with REQUIRE_CGROUPS=1 they fail instead. Each backend test runs once per cgroup
version that works here (one version working is enough for REQUIRE_CGROUPS). Every group is
removed by the ``backend`` fixture, every process stopped by PID by ``processes``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handler.local import cgroups
from tests.conftest import wait_for

REQUIRE = os.environ.get("REQUIRE_CGROUPS") == "1"
ROOT = "lambda-emulator-test"  # not the emulator's own root: remove_stale here touches only tests
SLEEP = [shutil.which("sleep") or "/bin/sleep", "60"]
ALLOCATE_200_MB = "b = b'x' * (200 * 2**20)"  # bytes * n writes every page, unlike bytearray(n)
CPU_WORK = """
import sys, time
def work():
    total = 0
    for i in range(800_000):  # ~30 ms here
        total += i
print("ready", flush=True)
while sys.stdin.readline():
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    work()
    print(time.perf_counter_ns() - wall, time.process_time_ns() - cpu, flush=True)
"""
COUNTER = """
import os, sys, threading, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
os.pwrite(fd, b"%20d" % 0, 0)
def count():
    n = 0
    while True:
        n += 1
        os.pwrite(fd, b"%20d" % n, 0)
        time.sleep(0.001)
threading.Thread(target=count, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@functools.cache
def why_not() -> dict[str, str | None]:
    """For v1 and v2: None where the mode works here, else detect()'s reason."""
    reasons: dict[str, str | None] = {}
    for mode in ("v1", "v2"):
        try:
            cgroups.detect(ROOT, mode).close()
            reasons[mode] = None
        except cgroups.CgroupUnavailable as exc:
            reasons[mode] = str(exc)
    return reasons


def need(mode: str) -> None:
    reason = why_not()[mode]
    if reason is None:
        return
    working = [version for version, why in why_not().items() if why is None]
    if REQUIRE and not working:
        pytest.fail(f"REQUIRE_CGROUPS=1 but no cgroup version works: {why_not()}")
    met = f" (REQUIRE_CGROUPS=1 is met by {working[0]})" if REQUIRE else ""
    pytest.skip(f"cgroups unavailable: {reason}{met}")


@pytest.fixture(params=["v1", "v2"])
def backend(request, processes):  # needs processes: its groups go first, frozen ones too
    need(request.param)
    backend = cgroups.detect(ROOT, request.param)
    assert isinstance(backend, cgroups.CgroupBackend)
    try:
        yield backend
    finally:
        backend.close()
        assert not [h for h in backend.hierarchies if (h / ROOT / str(os.getpid())).exists()]


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()


def spawn(processes: list, command: list[str], group=None, **options) -> subprocess.Popen:
    preexec = group.preexec if group is not None else None
    process = subprocess.Popen(command, preexec_fn=preexec, **options)
    processes.append(process)
    return process


def scrub(directories: list[Path]) -> None:
    """Undo by hand what remove_stale should have removed: thaw, kill, rmdir (deepest first)."""
    for directory in (d for d in directories if d.exists()):
        for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            if (directory / name).exists():
                (directory / name).write_text(value)
        for pid in (directory / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 5
    for directory in (d for d in directories if d.exists()):
        while directory.exists():
            try:
                directory.rmdir()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def test_cpu_max_never_asks_the_kernel_for_less_than_1_ms():
    assert cgroups.cpu_max(None) is None
    assert cgroups.cpu_max(cgroups.lambda_vcpus(128)) == cgroups.CpuMax(1447, 20_000)
    assert cgroups.cpu_max(1.0) == cgroups.CpuMax(20_000, 20_000)
    assert cgroups.cpu_max(0.01) == cgroups.CpuMax(1_000, 100_000)  # period stretched
    with pytest.raises(ValueError, match="positive"):
        cgroups.cpu_max(0)


def test_detect_returns_a_working_cgroup_backend_here():
    reasons = why_not()
    for mode, reason in reasons.items():
        assert reason is None or (reason and "\n" not in reason), f"{mode}: {reason!r}"
    backend = cgroups.detect(ROOT)
    try:
        if backend.kind == "host":
            need("v1")
            need("v2")
        expected = "cgroup-v2" if reasons["v2"] is None else "cgroup-v1"
        assert (backend.kind, backend.enforced) == (expected, True), backend.reason
    finally:
        backend.close()
    with pytest.raises(ValueError, match="mode must be one of"):
        cgroups.detect(ROOT, "v3")


def test_host_mode_enforces_and_measures_nothing():
    backend = cgroups.detect(ROOT, "host")
    group = backend.create("env", 128, 0.072)
    group.add(os.getpid())
    group.set_cpu_quota(None)
    readings = (group.freeze(), group.cpu_usage_ns(), group.memory_peak_bytes(), group.oom_kills())
    assert (backend.kind, backend.enforced, group.enforced) == ("host", False, False)
    assert readings == (False, None, None, None)
    assert backend.remove_stale() == 0
    group.remove()
    backend.close()


def test_memory_limit_oom_kills_over_it_and_not_under(backend, processes):
    small, large = backend.create("mem-128", 128, None), backend.create("mem-512", 512, None)
    assert spawn(processes, python(ALLOCATE_200_MB), small).wait(30) == -signal.SIGKILL
    assert small.oom_kills() >= 1
    assert small.memory_peak_bytes() <= 128 * cgroups.MIB
    assert spawn(processes, python(ALLOCATE_200_MB), large).wait(30) == 0
    assert large.oom_kills() == 0
    assert large.memory_peak_bytes() >= 200 * cgroups.MIB


def test_cpu_quota_slows_fixed_work_and_usage_counts_it(backend, processes):
    group = backend.create("cpu", 128, None)  # unthrottled start-up, as in Lambda's init
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    child = spawn(processes, python(CPU_WORK), group, **pipes)
    assert child.stdout.readline() == "ready\n"

    def run(vcpus: float) -> int:
        """The work's wall time at ``vcpus``, after checking that the group counted its CPU."""
        group.set_cpu_quota(vcpus)
        before = group.cpu_usage_ns()
        child.stdin.write("go\n")
        child.stdin.flush()
        wall_ns, cpu_ns = map(int, child.stdout.readline().split())
        used = group.cpu_usage_ns() - before
        assert 0.8 * cpu_ns <= used <= cpu_ns + 10_000_000, (vcpus, used, cpu_ns)
        return wall_ns

    unthrottled = min(run(1.0) for _ in range(3))  # the least disturbed by other load on the machine
    throttled = run(cgroups.lambda_vcpus(128))
    assert throttled >= 5 * unthrottled, (throttled, unthrottled)


def test_frozen_group_does_not_run_until_thawed(backend, processes, tmp_path):
    counter = tmp_path / "counter"
    child = spawn(processes, python(COUNTER, str(counter)), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    group = backend.create("freeze", 512, None)
    group.add(child.pid)  # moves every thread
    assert child.pid in group.pids()
    assert child.stdout.readline() == b"ready\n"

    def count() -> int:
        return int(counter.read_bytes())

    assert group.freeze()
    frozen_at = count()
    time.sleep(0.3)
    assert count() == frozen_at
    group.thaw()
    wait_for(lambda: count() > frozen_at, 10, "the thawed counter to move")


def test_remove_stale_kills_and_removes_a_dead_emulators_groups(backend, processes):
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not Path(f"/proc/{dead.pid}").exists()
    stale = [hierarchy / ROOT / str(dead.pid) / "env" for hierarchy in backend.hierarchies]
    live = backend.create("live", 128, None)
    try:
        for directory in stale:
            directory.mkdir(parents=True)
        child = spawn(processes, SLEEP)
        for directory in stale:
            (directory / "cgroup.procs").write_text(str(child.pid))
            for name, value in (("freezer.state", "FROZEN"), ("cgroup.freeze", "1")):
                if (directory / name).exists():
                    (directory / name).write_text(value)
        assert backend.remove_stale() == 1
        assert child.wait(5) == -signal.SIGKILL
        assert not [directory for directory in stale if directory.parent.exists()]
        assert all(directory.is_dir() for directory in live.dirs)
    finally:
        scrub([path for directory in stale for path in (directory, directory.parent)])


def test_kill_all_and_remove_work_on_a_frozen_group(backend, processes):
    for action in ("kill_all", "remove"):
        group = backend.create(f"frozen-{action}", 128, 0.072)
        child = spawn(processes, SLEEP, group)
        assert group.pids() == [child.pid]
        assert group.freeze()
        getattr(group, action)()
        assert child.wait(5) == -signal.SIGKILL
    group.remove()  # idempotent
    assert not [directory for directory in group.dirs if directory.exists()]


def test_v2_procs_freeze_and_kill_on_the_mounted_v2_hierarchy(processes):
    """The v2 files no controller is needed for (cgroup.procs, .freeze, .events, .kill, cpu.stat),
    on the real kernel even where cpu and memory are bound to v1 (a hybrid host, as here)."""
    with open("/proc/self/mounts") as table:
        mount = next((Path(row[1]) for row in map(str.split, table) if row[2] == "cgroup2"), None)
    if mount is None or os.geteuid() != 0:
        need("v2")
    directory = mount / f"{ROOT}-core-{os.getpid()}"
    directory.mkdir()
    try:
        group = cgroups.CgroupGroup(
            "core", cgroups.V2, dict.fromkeys(["cpu", "memory"], directory), time.perf_counter_ns
        )
        child = spawn(processes, SLEEP, group)
        assert group.pids() == [child.pid]
        assert group.freeze()
        group.thaw()
        assert group.cpu_usage_ns() >= 0
        assert group.freeze()
        group.remove()  # cgroup.kill, frozen
        assert child.wait(5) == -signal.SIGKILL
        assert not directory.exists()
    finally:
        scrub([directory])


def test_a_failed_removal_still_tells_the_ticker_the_group_may_not_run(tmp_path, monkeypatch):
    """kill_all thaws (running: True); a TimeoutError after it must not leave the CPU ticker on."""
    told: list[bool] = []
    now = iter(range(0, 10**12, 10**9))  # each reading 1 s later: the deadline passes at once
    for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"):
        (tmp_path / name).write_text("-1")
    group = cgroups.CgroupGroup("stuck", cgroups.V1, {"memory": tmp_path}, lambda: next(now), told.append)
    group.set_cpu_quota(0.07)  # under one CPU: a group the ticker is for
    monkeypatch.setattr(group, "pids", lambda: [4_000_000])  # never leaves
    monkeypatch.setattr(group, "kill_all", lambda: group._set_running(True))  # as freeze, kill, thaw
    group._set_running(False)  # frozen, as between invocations
    with pytest.raises(TimeoutError):
        group.remove(timeout_s=0.5)
    assert told == [True, False, True, False] and not group.removed


def test_only_a_group_with_a_quota_under_one_cpu_runs_the_ticker(tmp_path):
    """The ticker checks quotas shorter than their period; at a whole CPU or more it would only
    hand the host's other tasks a turn every 0.5 ms, so such a group never asks for it."""
    for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"):
        (tmp_path / name).write_text("-1")
    told: list[bool] = []
    group = cgroups.CgroupGroup("whole", cgroups.V1, {"cpu": tmp_path}, time.perf_counter_ns, told.append)
    group.set_cpu_quota(1769 / 1769)  # 1,769 MB: 20 ms per 20 ms
    group.set_cpu_quota(3008 / 1769)
    group.set_cpu_quota(None)  # lifted
    assert told == []
    group.set_cpu_quota(128 / 1769)  # 1.45 ms per 20 ms, the group may run: tick
    group._set_running(False)  # frozen
    group._set_running(True)  # thawed
    group.set_cpu_quota(1.0)  # a whole CPU while running: no more
    assert told == [True, False, True, False]
    assert (tmp_path / "cpu.cfs_quota_us").read_text() == "20000"
