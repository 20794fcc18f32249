"""The CPU ticker (handler.local.cputick): a real-time thread on each CPU, gone with its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from handler.local import cgroups, cputick

ROOT = "lambda-emulator-test-cputick"


def _can_be_realtime() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


realtime = pytest.mark.skipif(not _can_be_realtime(), reason="SCHED_FIFO is refused here (not root)")


def _threads(pid: int) -> dict[int, tuple[int, set[int]]]:
    """Each thread of ``pid``: (scheduling policy, the CPUs it may run on)."""
    return {
        int(tid): (os.sched_getscheduler(int(tid)), os.sched_getaffinity(int(tid)))
        for tid in os.listdir(f"/proc/{pid}/task")
    }


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ")[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def test_period_from_the_environment(monkeypatch):
    monkeypatch.delenv(cputick.ENV_VAR, raising=False)
    assert cputick.tick_us() == cputick.TICK_US
    monkeypatch.setenv(cputick.ENV_VAR, "0")
    assert cputick.tick_us() == 0
    assert cputick.CpuTick.start() is None  # off: nothing started
    monkeypatch.setenv(cputick.ENV_VAR, "junk")
    assert cputick.tick_us() == cputick.TICK_US


@pytest.mark.slow
@realtime
def test_one_realtime_thread_pinned_to_each_cpu_and_stop_ends_it():
    tick = cputick.CpuTick.start()
    assert tick is not None
    try:
        threads = _threads(tick.pid).values()
        pinned = [cpus for policy, cpus in threads if policy == os.SCHED_FIFO and len(cpus) == 1]
        assert sorted(pinned, key=min) == [{cpu} for cpu in sorted(os.sched_getaffinity(0))]
        assert all(policy == os.SCHED_FIFO for policy, _ in threads)  # and the one that wakes them
    finally:
        tick.stop()
    assert tick.child.returncode == 0


@pytest.mark.slow
@realtime
def test_the_ticker_dies_with_its_owner_even_by_sigkill(tmp_path):
    owner_code = textwrap.dedent(
        """
        import sys, time
        from handler.local.cputick import CpuTick
        tick = CpuTick.start()
        print(tick.pid, flush=True)
        time.sleep(60)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_code], stdout=subprocess.PIPE, text=True)
    try:
        ticker_pid = int(owner.stdout.readline())
        assert not _gone_within(ticker_pid, 0.2)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        assert _gone_within(ticker_pid, 2.0), "the ticker outlived its owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        owner.stdout.close()


@pytest.mark.slow
@realtime
def test_a_cgroup_backend_runs_the_ticker_while_it_has_groups(monkeypatch):
    monkeypatch.delenv(cputick.ENV_VAR, raising=False)
    try:
        backend = cgroups.detect(ROOT, "v1")
    except cgroups.CgroupUnavailable as exc:
        pytest.skip(f"cgroup v1 unavailable: {exc}")
    try:
        backend.create("tick", 128, 0.07)
        assert backend._tick is not None and backend._tick.child.poll() is None
        tick = backend._tick
    finally:
        backend.close()
    assert tick.child.returncode is not None


def _waiting_in(pid: int, tids: list[int]) -> set[str]:
    """Where each ticker thread sleeps: a futex (waiting for a group to run) or a nanosleep."""
    found = set()
    for tid in tids:
        with open(f"/proc/{pid}/task/{tid}/wchan") as wchan:
            found.add(wchan.read())
    return found


def _until(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.slow
@realtime
def test_it_ticks_only_while_a_group_may_run(monkeypatch):
    monkeypatch.delenv(cputick.ENV_VAR, raising=False)
    try:
        backend = cgroups.detect(ROOT, "v1")
    except cgroups.CgroupUnavailable as exc:
        pytest.skip(f"cgroup v1 unavailable: {exc}")
    try:
        group = backend.create("gate", 128, 0.07)  # created: it may run (its init)
        tick = backend._tick
        assert tick is not None
        tids = [tid for tid, (policy, cpus) in _threads(tick.pid).items() if len(cpus) == 1]

        def sleeping() -> bool:
            return any("nanosleep" in where for where in _waiting_in(tick.pid, tids))

        assert _until(sleeping), _waiting_in(tick.pid, tids)
        group.freeze(timeout_s=0)  # no group may run: every tick thread waits on its event
        assert _until(lambda: _waiting_in(tick.pid, tids) <= {"futex_wait_queue", "futex_do_wait"}), (
            _waiting_in(tick.pid, tids)
        )
        group.thaw()
        assert _until(sleeping)
    finally:
        backend.close()


def test_the_shield_is_opt_in_and_bounded(monkeypatch):
    monkeypatch.delenv(cgroups.SHIELD_ENV, raising=False)
    assert cgroups.shield_shares() is None
    for value, expected in (("10240", 10240), ("1", None), ("999999", None), ("ten", None)):
        monkeypatch.setenv(cgroups.SHIELD_ENV, value)
        assert cgroups.shield_shares() == expected


@pytest.mark.slow
def test_a_shielded_backend_has_its_own_weighted_top_group_and_removes_it(monkeypatch):
    monkeypatch.setenv(cgroups.SHIELD_ENV, "10240")
    monkeypatch.setenv(cputick.ENV_VAR, "0")
    try:
        backend = cgroups.detect(ROOT, "v1")
    except cgroups.CgroupUnavailable as exc:
        pytest.skip(f"cgroup v1 unavailable: {exc}")
    top = None
    try:
        assert backend.root_name == ROOT + cgroups.SHIELD_SUFFIX and "shielded" in backend.reason
        backend.create("shielded", 128, 0.07)
        top = backend.hierarchies[backend.hierarchies.index(backend._mounts["cpu"])] / backend.root_name
        assert (top / "cpu.shares").read_text().strip() == "10240"
    finally:
        backend.close()
    assert top is not None and not top.exists()
