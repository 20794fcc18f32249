"""/tmp on disk (handler.local.diskimage, handler.local.ephemeral) and what a dead emulator
leaves (handler.local.supervisor): real images, loop devices, mount namespaces, emulators.

Every test removes what it makes; the emulators are stopped by PID (``emulator_with``)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from bench.reportline import parse_report
from handler.local import diskimage
from handler.local.diskimage import MIB, usable_bytes
from handler.local.ephemeral import TmpRoot, hides_something
from tests.conftest import PROJECT_ROOT
from tests.test_resources import body, emulator_with, function, get, invoke, need_cgroups, our_groups

TMP_BASE = Path("/tmp") / "lambda-emulator"  # the emulator's (tempfile.gettempdir())


def test_usable_bytes_is_free_blocks_less_reserved_clusters():
    superblock = bytearray(1024)
    struct.pack_into("<III", superblock, 4, 131_072, 0, 129_000)  # blocks, reserved, free
    struct.pack_into("<I", superblock, 24, 2)  # 1024 << 2: 4 KiB blocks
    assert usable_bytes(bytes(superblock)) == (129_000 - 2_621) * 4096  # 2 % of the blocks
    struct.pack_into("<III", superblock, 4, 2_621_440, 0, 2_500_000)  # 10 GiB: capped at 4,096
    assert usable_bytes(bytes(superblock)) == (2_500_000 - 4_096) * 4096


def test_without_root_tmp_is_a_private_directory_and_the_line_says_its_size_is_not_enforced(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    root, reason = TmpRoot.detect(True, base=tmp_path / "lambda-emulator")
    try:
        assert not root.disk
        assert reason.startswith("private TMPDIR, size NOT enforced: not root: ")
        env = root.for_environment("a", 512, [])
        assert env.mount_at is None and env.variables() == {"TMPDIR": str(env.directory)}
        assert env.description.endswith("(size not enforced)")
    finally:
        root.close()


class FakeGroup:
    """A cgroup's memory figures, and how often the charge without file cache was read."""

    def __init__(self, peak_mb: int, without_cache_mb: int) -> None:
        self.peak_mb, self.without_cache_mb, self.stat_reads = peak_mb, without_cache_mb, 0

    def memory_peak_bytes(self) -> int:
        return self.peak_mb * MIB

    def memory_without_file_cache_bytes(self) -> int:
        self.stat_reads += 1
        return self.without_cache_mb * MIB


class FakeRss:
    def __init__(self, mb: int) -> None:
        self.value = mb

    def mb(self) -> int:
        return self.value

    def close(self) -> None: ...


def test_max_memory_used_leaves_file_cache_out_and_reads_it_only_when_the_peak_says_more():
    from handler.local.resources import EnvMemory

    group, rss = FakeGroup(peak_mb=8, without_cache_mb=8), FakeRss(19)
    meter = EnvMemory(group, rss, 256)
    assert meter.mb() == 19 and group.stat_reads == 0  # the usual case: the resident set, one read
    group.peak_mb, group.without_cache_mb = 255, 30  # /tmp's file cache filled the group
    assert meter.mb() == 30 and group.stat_reads == 1
    group.without_cache_mb = 12  # the cache reclaimed, anonymous memory freed: the largest stays
    assert meter.mb() == 30
    rss.value = 200  # the runtime itself grew
    assert meter.mb() == 200
    group.without_cache_mb = 300
    assert meter.mb() == 255  # never over the peak charge (nor over memory_mb)


class FakeTemplate:
    size_mb = 512

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeImage:
    def close(self) -> None: ...


def _pool_of_fakes(tmp_path, monkeypatch, make) -> tuple[diskimage.ImagePool, FakeTemplate]:
    """A pool whose template and images are fakes and whose DiskImage.make is ``make``."""
    pool, template = diskimage.ImagePool(tmp_path), FakeTemplate()
    pool._templates[512] = template  # as if formatted already
    monkeypatch.setattr(diskimage.DiskImage, "make", staticmethod(make))
    monkeypatch.setattr(diskimage, "REFILL_BACKOFF_S", (0.001, 0.004))
    return pool, template


def test_the_pool_retries_a_failed_refill_and_counts_why(tmp_path, monkeypatch):
    failures = iter([OSError(28, "No space left on device"), diskimage.DiskUnavailable("no loop device")])

    def make(_template, _directory):
        if (failure := next(failures, None)) is not None:
            raise failure
        return FakeImage()

    pool, template = _pool_of_fakes(tmp_path, monkeypatch, make)
    pool.prepare([512])
    try:
        wait_until(lambda: len(pool._ready[512]) == pool.depth, 5)
        assert pool.refill_failures == 2 and pool.refill_error == "DiskUnavailable: no loop device"
    finally:
        pool.close()
    assert template.closed and not pool._thread.is_alive()


def test_a_pool_closed_while_its_thread_copies_keeps_the_templates_open(tmp_path, monkeypatch):
    copying, release = threading.Event(), threading.Event()

    def make(_template, _directory):
        copying.set()
        release.wait(10)
        return FakeImage()

    pool, template = _pool_of_fakes(tmp_path, monkeypatch, make)
    pool.prepare([512])
    try:
        assert copying.wait(5)
        pool.close(join_timeout_s=0.01)
        assert not template.closed  # the thread may still read it
    finally:
        release.set()
        pool._thread.join(5)
    assert not pool._thread.is_alive() and pool._ready[512] == deque()  # it saw the close


def test_a_busy_loop_device_is_retried_a_bounded_number_of_times(monkeypatch):
    if not os.access("/dev/loop-control", os.W_OK):
        pytest.skip("no /dev/loop-control to ask for a free loop device")
    tries = []

    def busy(_fd, _request, _arg=0):
        tries.append(_request)
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(diskimage, "_free_loop", lambda: 0)
    monkeypatch.setattr(diskimage, "fcntl", SimpleNamespace(ioctl=busy))
    with pytest.raises(OSError) as raised:
        diskimage._attach(0)
    assert raised.value.errno == errno.EBUSY and len(tries) == diskimage.ATTACH_TRIES


@pytest.fixture
def disk_root(tmp_path):
    root, reason = TmpRoot.detect(True, base=tmp_path / "lambda-emulator")
    if not root.disk:
        root.close()
        pytest.skip(reason)
    try:
        yield root
    finally:
        root.close()


def loops_under(directory: Path) -> list[str]:
    """Loop devices whose backing file was made in ``directory`` (ours: anonymous files)."""
    found = []
    for entry in Path("/sys/block").glob("loop*"):
        try:
            backing = (entry / "loop" / "backing_file").read_text().strip()
        except OSError:
            continue
        if backing.startswith(f"{directory}/"):
            found.append(entry.name)
    return found


def mounts_of(devices: list[str]) -> int:
    """How many mounts of these loop devices there are in every process's mount namespace."""
    sources = {f"/dev/{device}" for device in devices}
    seen = set()
    for table in Path("/proc").glob("[0-9]*/mountinfo"):
        try:
            rows = table.read_text().splitlines()
            namespace = os.readlink(table.parent / "ns" / "mnt")
        except OSError:  # gone meanwhile
            continue
        for row in rows:
            fields = row.split(" - ", 1)[1].split()
            if fields[1] in sources:
                seen.add((namespace, fields[1], row.split()[4]))
    return len(seen)


def wait_until(check, timeout_s: float) -> float:
    """Seconds until ``check()`` is true; AssertionError with its last value after the deadline."""
    started = time.monotonic()
    while not (result := check()):
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"still not done after {timeout_s} s: {result!r}")
        time.sleep(0.01)
    return time.monotonic() - started


WRITE = (
    "import os, sys\n"
    "path = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'big')\n"
    "print(sorted(os.listdir(os.path.dirname(path))), oct(os.stat(os.path.dirname(path)).st_mode & 0o7777))\n"
    "written = 0\n"
    "try:\n"
    "    with open(path, 'wb') as sink:\n"
    "        while written < int(sys.argv[1]):\n"
    "            sink.write(b'x' * 2**20); sink.flush(); written += 1\n"
    "except OSError as exc:\n"
    "    print(written, exc.errno)\n"
)


@pytest.mark.parametrize("size_mb", [512, 600])
def test_an_image_is_empty_1777_full_at_its_size_and_gone_with_its_last_user(disk_root, size_mb):
    env = disk_root.for_environment("e", size_mb, [sys.prefix])  # on the directory, with TMPDIR
    env.create()
    try:
        done = subprocess.run(
            [sys.executable, "-c", WRITE, str(size_mb + 100)],
            preexec_fn=env.preexec,
            env={**os.environ, **env.variables()},
            capture_output=True,
            text=True,
            timeout=120,
        )
        env.started()
    finally:
        env.remove()
    listing, result = done.stdout.splitlines()
    assert listing == "[] 0o1777"  # no lost+found: an empty /tmp, as a new environment's
    written_mb, errno = map(int, result.split())
    assert errno == 28 and size_mb <= written_mb <= size_mb + 8, done.stdout  # ENOSPC at the size
    wait_until(lambda: loops_under(disk_root.directory) == [], 2)  # the image went with the child
    assert not env.directory.exists()


def test_the_pool_hands_out_images_made_ahead_and_closes_them(disk_root):
    disk_root.prepare([512])
    wait_until(lambda: len(loops_under(disk_root.directory)) >= 2, 10)  # POOL_DEPTH, in the background
    pool = disk_root.pool
    image = pool.take(512)
    assert pool.misses == 0 and image.mount_fd is not None
    image.close()
    disk_root.close()
    wait_until(lambda: loops_under(disk_root.directory) == [], 2)


# -- real emulators ---------------------------------------------------------------------------------
def disk_model(running) -> None:
    import json

    model = json.loads(get(f"{running.base_url}/_emulator/resource-model")[2])
    if model["tmp"] != "disk":
        pytest.skip(f"/tmp is not on disk here: {running.child.text()}")


@pytest.mark.slow
def test_a_256_mb_function_writes_700_mb_to_tmp_gets_enospc_not_oom_and_max_memory_excludes_it(tmp_path):
    need_cgroups()
    text = function("writer", 256, timeout_s=60)
    with emulator_with(tmp_path, "writer", text) as running:
        disk_model(running)
        response, payload, log = invoke(running, "writer", action="tmp", mb=700)
        assert "FunctionError" not in response, payload
        answer = body(payload)
        assert answer["errno"] == 28
        if hides_something([str(PROJECT_ROOT)]):  # this checkout (or its Python) lives under /tmp
            assert answer["tmpdir"].startswith("/tmp/lambda-emulator/"), answer  # the private dir
        else:
            assert answer["tmpdir"] == "/tmp", answer  # over /tmp itself
        assert 512 <= answer["written_mb"] <= 520
        report = parse_report(log)
        assert report.status is None and report.max_memory_used_mb < 128, log  # no /tmp pages
        # The page cache it left is reclaimed for the next allocation: no OOM kill.
        response, payload, log = invoke(running, "writer", action="allocate", mb=180)
        assert "FunctionError" not in response and body(payload)["pid"] == answer["pid"], payload
        assert 180 <= parse_report(log).max_memory_used_mb <= 256


@pytest.mark.slow
def test_after_sigkill_nothing_of_the_emulator_is_left_within_two_seconds(tmp_path):
    """Three environments, one frozen and two busy; SIGKILL; count what is left (no fixed sleep)."""
    need_cgroups()
    text = "freeze = true\n" + function("counter", 512) + function("tmp", 512, timeout_s=60)
    with emulator_with(tmp_path, "crash", text) as running:
        disk_model(running)
        pid = running.process.pid
        invoke(running, "counter", action="counter")  # an environment, frozen once it asks for more
        busy = running.url("tmp", "action=tmp&hold_s=30")
        with ThreadPoolExecutor(max_workers=2) as callers:
            calls = [callers.submit(get, busy) for _ in range(2)]
            runtimes = lambda: [  # noqa: E731
                child for child in running.children() if "awslambdaric" in " ".join(child.cmdline())
            ]
            wait_until(lambda: len(runtimes()) == 3, 30)
            environments = runtimes()
            groups = our_groups(pid)
            frozen = [
                state
                for group in groups
                for state in group.glob("*/freezer.state")
                if state.read_text().strip() == "FROZEN" and state.parent.name != "freeze-keeper"
            ]
            assert groups and frozen, "one environment frozen"  # (cgroup v1's freezer here)
            devices = loops_under(TMP_BASE / str(pid))
            assert len(devices) >= 3  # three /tmp images, and the pool's
            assert mounts_of(devices) == 3  # each in its environment's namespace (the pool's: detached)
            running.process.send_signal(signal.SIGKILL)
            running.process.wait(10)
            took = wait_until(
                lambda: (
                    not any(
                        process.is_running() and process.status() != psutil.STATUS_ZOMBIE
                        for process in environments
                    )
                    and our_groups(pid) == []
                    and loops_under(TMP_BASE / str(pid)) == []
                    and mounts_of(devices) == 0
                    and not (TMP_BASE / str(pid)).exists()
                ),
                2.0,
            )
            for call in calls:  # the callers see the connection drop
                call.exception(timeout=60)
    print(f"everything gone {took:.2f} s after the SIGKILL")


@pytest.mark.slow
def test_after_an_oom_kill_of_the_emulator_nothing_of_it_is_left(tmp_path):
    """The kernel's OOM killer (its SIGKILL) on the emulator: the emulator moved alone into a
    memory group of its own, its limit set just above its use, then a few requests."""
    need_cgroups()
    memory = Path("/sys/fs/cgroup/memory")
    if not (memory / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 memory hierarchy to hold the emulator")
    text = "freeze = true\n" + function("counter", 512)
    group = memory / f"lambda-emulator-test-oom-{os.getpid()}"
    with emulator_with(tmp_path, "oom", text) as running:
        pid = running.process.pid
        invoke(running, "counter", action="counter")  # an environment, frozen
        environments = running.children()
        assert environments and our_groups(pid)
        group.mkdir()
        try:
            (group / "cgroup.procs").write_text(str(pid))
            limit = int((group / "memory.usage_in_bytes").read_text()) + 64 * 1024
            (group / "memory.limit_in_bytes").write_text(str(limit))
            for _ in range(200):
                if running.process.poll() is not None:
                    break
                with contextlib.suppress(OSError):  # the connection drops when it is killed
                    get(running.url("counter", "action=counter"))
            assert running.process.wait(30) == -signal.SIGKILL
            assert "oom_kill 1" in (group / "memory.oom_control").read_text()
        finally:
            wait_until(lambda: not (group / "cgroup.procs").read_text().strip(), 10)
            group.rmdir()
        wait_until(
            lambda: (
                not any(
                    process.is_running() and process.status() != psutil.STATUS_ZOMBIE
                    for process in environments
                )
                and our_groups(pid) == []
                and not (TMP_BASE / str(pid)).exists()
            ),
            2.0,
        )
