"""A /tmp on disk for an execution environment: an ext4 image on a loop device, mounted detached.

Lambda's /tmp is storage apart from the function's memory: "ephemeral storage ... at /tmp in
the file system ... a fast file system-based scratch area that is scoped to a specific instance
of a Lambda function", configured apart from memory, "512 MB ... up to 10 GB" (AWS Compute
Blog, "Using larger ephemeral storage for AWS Lambda", 2022); "The size of the function's /tmp
directory in MB. The default value is 512, but can be any whole number between 512 and 10,240
MB" (Lambda API reference, ``EphemeralStorage``). So here each environment gets a file system
of its own on the host's disk, never a tmpfs (whose pages are memory, charged to the writer's
memory cgroup: a 256 MB function writing 700 MB was OOM-killed instead of refused with ENOSPC).

A :class:`DiskImage` is made ahead of the spawn (:class:`ImagePool`), in four steps:

1. **the image**: an anonymous file (``O_TMPFILE``: it has no name, so nothing is left on disk
   once the last reference goes), a sparse copy of a template that ``mkfs.ext4`` made once per
   size for this emulator (no journal, no reserved blocks, no ``lost+found``, root mode 1777),
   sized so that ``size_mb`` MiB are free for files (ext4 keeps back its inode tables and
   ``min(2 %, 4,096)`` blocks of "reserved clusters", fs/ext4/super.c,
   ``ext4_calculate_resv_clusters``);
2. **a loop device** for it (``LOOP_CONFIGURE``) with ``LO_FLAGS_AUTOCLEAR`` (the device lets go
   of the image when its last user closes it) and ``LO_FLAGS_DIRECT_IO`` (the image is written
   past the host's page cache: the data is not cached twice);
3. **a detached mount** of it (``fsopen``/``fsmount``, Linux 5.2+): a mount in no namespace yet;
4. in the child, between fork and exec: a mount namespace of its own (``unshare(CLONE_NEWNS)``,
   every mount made private so that nothing propagates back to the host), and ``move_mount``
   puts the detached mount at its /tmp. The spawn pays only this step.

Nothing outlives its users, whatever kills the emulator: the mount lives as long as the
environment's namespace (its last process), the loop device as long as the mount or the
emulator's fd, the image as long as the loop device. A pool's images go with the emulator's fds.

Memory: the page cache of files in /tmp is charged to the memory cgroup of the process that
writes them (kernel docs, cgroup-v1 memory, "cache pages (Page Cache) are accounted"), but it
is reclaimable: the kernel writes it back and reclaims it at the limit instead of OOM-killing
(measured: 700 MB written by a 256 MB group, ENOSPC after 512 MiB, ``oom_kill 0``). Max Memory
Used leaves file cache out (``handler.local.resources.EnvMemory``).

Costs on this machine (2-core VM, kernel 6.18; docs/benchmarks.md, "/tmp on disk"): a template
~20 ms once per size; an image (copy + loop device + detached mount) ~10 ms, off the spawn's path
while the pool has one; the step in the child: ``move_mount`` after the ``unshare``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path

MIB = 1 << 20
LOOP_CTL_GET_FREE, LOOP_CONFIGURE = 0x4C82, 0x4C0A  # linux/loop.h
LO_FLAGS_AUTOCLEAR, LO_FLAGS_DIRECT_IO = 4, 16
LOOP_CONFIG_BYTES, LOOP_FLAGS_OFFSET = 304, 60  # struct loop_config; loop_info64.lo_flags in it
SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432  # the same on every arch
FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC, FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 1, 1, 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 0x2, 0x4, 0x4, -100
CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 0x40000
MKFS_OPTIONS = ("-q", "-F", "-O", "^has_journal,^resize_inode", "-m", "0", "-E", "lazy_itable_init=0")
TEMPLATE_EDIT = b"rmdir lost+found\nsif / mode 041777\n"  # debugfs: an empty /tmp, mode 1777
POOL_DEPTH = 2  # images kept ready per size

_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class DiskUnavailable(RuntimeError):
    """A disk-backed /tmp cannot be made here; the message is the one-line reason."""


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


def usable_bytes(superblock: bytes) -> int:
    """What ext4 lets files use (statfs's f_bavail): free blocks less reserved clusters."""
    blocks, reserved, free = struct.unpack_from("<III", superblock, 4)
    block_size = 1024 << struct.unpack_from("<I", superblock, 24)[0]
    return (free - reserved - min(blocks // 50, 4096)) * block_size


class Template:
    """One size's formatted image (an anonymous file), copied sparsely for each environment."""

    def __init__(self, directory: Path, size_mb: int) -> None:
        self.size_mb = size_mb
        image_bytes = size_mb * MIB
        for _ in range(4):  # grow the image until ``size_mb`` MiB are free (twice, in practice)
            self.fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                self._format(image_bytes)
                shortfall = size_mb * MIB + MIB - usable_bytes(os.pread(self.fd, 1024, 1024))
            except BaseException:
                os.close(self.fd)
                raise
            if shortfall <= 0:
                self.bytes = image_bytes
                return
            os.close(self.fd)
            image_bytes += -(-shortfall // (4 * MIB)) * 4 * MIB
        raise DiskUnavailable(f"mkfs.ext4 left less than {size_mb} MiB free in a {image_bytes} byte image")

    def _format(self, image_bytes: int) -> None:
        os.ftruncate(self.fd, image_bytes)
        path = f"/proc/self/fd/{self.fd}"
        mkfs, debugfs = shutil.which("mkfs.ext4"), shutil.which("debugfs")
        if mkfs is None or debugfs is None:
            raise DiskUnavailable("mkfs.ext4 and debugfs (e2fsprogs) are needed")
        steps = (([mkfs, *MKFS_OPTIONS, path], None), ([debugfs, "-w", "-f", "-", path], TEMPLATE_EDIT))
        for command, stdin in steps:
            done = subprocess.run(command, input=stdin, pass_fds=(self.fd,), capture_output=True, timeout=60)
            if done.returncode != 0:
                why = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
                last = why[-1] if why else f"exit status {done.returncode}"
                raise DiskUnavailable(f"{Path(command[0]).name} failed: {last}")

    def copy(self, directory: Path) -> int:
        """A new anonymous file with the template's data extents (a few hundred KiB), sparse."""
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, self.bytes)
            offset = 0
            while True:
                try:
                    start = os.lseek(self.fd, offset, os.SEEK_DATA)
                except OSError:  # ENXIO: no data past offset
                    break
                end = os.lseek(self.fd, start, os.SEEK_HOLE)
                at = start
                while at < end:
                    at += os.copy_file_range(self.fd, fd, end - at, at, at)
                offset = end
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _attach(image_fd: int) -> tuple[int, str]:
    """A free loop device backed by ``image_fd`` (autoclear, direct I/O): its open fd and path."""
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
    finally:
        os.close(control)
    device = f"/dev/loop{number}"
    fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    config = bytearray(LOOP_CONFIG_BYTES)
    struct.pack_into("<I", config, 0, image_fd)
    struct.pack_into("<I", config, LOOP_FLAGS_OFFSET, LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO)
    try:
        fcntl.ioctl(fd, LOOP_CONFIGURE, bytes(config))
    except OSError as exc:
        os.close(fd)
        if exc.errno == 16:  # EBUSY: another process took it between GET_FREE and CONFIGURE
            return _attach(image_fd)
        raise
    return fd, device


def _detached_mount(device: str) -> int:
    """An ext4 mount of ``device`` in no namespace yet (nosuid, nodev): its fd."""
    assert _LIBC is not None
    context = _check(_LIBC.syscall(SYS_FSOPEN, b"ext4", FSOPEN_CLOEXEC), "fsopen(ext4)")
    try:
        set_source = _LIBC.syscall(SYS_FSCONFIG, context, FSCONFIG_SET_STRING, b"source", device.encode(), 0)
        _check(set_source, "fsconfig(source)")
        _check(_LIBC.syscall(SYS_FSCONFIG, context, FSCONFIG_CMD_CREATE, None, None, 0), "fsconfig(create)")
        attributes = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        return _check(_LIBC.syscall(SYS_FSMOUNT, context, FSMOUNT_CLOEXEC, attributes), "fsmount")
    finally:
        os.close(context)


class DiskImage:
    """One environment's /tmp, ready: a loop device and a detached mount of its file system."""

    def __init__(self, size_mb: int, device: str, device_fd: int, mount_fd: int) -> None:
        self.size_mb, self.device = size_mb, device
        self.device_fd: int | None = device_fd
        self.mount_fd: int | None = mount_fd

    @classmethod
    def make(cls, template: Template, directory: Path) -> DiskImage:
        image_fd = template.copy(directory)
        try:
            device_fd, device = _attach(image_fd)
        finally:
            os.close(image_fd)  # the loop device holds the image now
        try:
            mount_fd = _detached_mount(device)
        except BaseException:
            os.close(device_fd)
            raise
        return cls(template.size_mb, device, device_fd, mount_fd)

    def mount_in_new_namespace(self, target: bytes) -> None:  # pragma: no cover - in the child
        """Between fork and exec: a private mount namespace, and this file system at ``target``."""
        assert _LIBC is not None and self.mount_fd is not None
        _check(_LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _check(_LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        moved = _LIBC.syscall(SYS_MOVE_MOUNT, self.mount_fd, b"", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
        _check(moved, "move_mount")

    def close(self) -> None:
        """Let go of the emulator's references (once the child has it mounted, or never will)."""
        for name in ("mount_fd", "device_fd"):
            fd = getattr(self, name)
            setattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)


class ImagePool:
    """Images made ahead, ``depth`` per size, by a thread of their own; ``take`` hands one out
    (made on the spot when none is ready: a ``miss``, which costs the spawn ~10 ms)."""

    def __init__(self, directory: Path, depth: int = POOL_DEPTH) -> None:
        self.directory, self.depth = directory, depth
        self._templates: dict[int, Template] = {}
        self._ready: dict[int, deque[DiskImage]] = {}
        self._lock = threading.Condition()
        self._closed = False
        self.misses = 0
        self._thread: threading.Thread | None = None

    def _template(self, size_mb: int) -> Template:
        template = self._templates.get(size_mb)
        if template is None:
            template = self._templates[size_mb] = Template(self.directory, size_mb)
        return template

    def prepare(self, sizes: Iterable[int]) -> None:
        """Keep ``depth`` images of each size ready from now on (made in the background)."""
        with self._lock:
            for size_mb in sizes:
                self._ready.setdefault(size_mb, deque())
            self._lock.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._refill, name="tmp-images", daemon=True)
                self._thread.start()

    def take(self, size_mb: int) -> DiskImage:
        with self._lock:
            ready = self._ready.setdefault(size_mb, deque())
            if ready:  # refilled after the spawn (``refill``): making one slows a spawn beside it
                return ready.popleft()
            self.misses += 1
            template = self._template(size_mb)
        return DiskImage.make(template, self.directory)  # outside the lock: the refill goes on

    def refill(self) -> None:
        """Make up for what was taken: call once the spawn that took it is done."""
        with self._lock:
            self._lock.notify()

    def _wanted(self) -> int | None:
        return next((size for size, ready in self._ready.items() if len(ready) < self.depth), None)

    def _refill(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (size_mb := self._wanted()) is None:
                    self._lock.wait()
                if self._closed:
                    return
                template = self._template(size_mb)
            try:
                image = DiskImage.make(template, self.directory)
            except (OSError, DiskUnavailable):
                return  # take() makes them on the spot, and says why if it cannot
            with self._lock:
                if self._closed:
                    image.close()
                    return
                self._ready[size_mb].append(image)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        with self._lock:
            for ready in self._ready.values():
                while ready:
                    ready.popleft().close()
            for template in self._templates.values():
                template.close()
            self._templates.clear()


def loop_devices_backed_by_deleted_images() -> list[str]:
    """Loop devices whose backing file has no name (ours are ``O_TMPFILE``): for tests."""
    found = []
    for entry in Path("/sys/block").glob("loop*"):
        with contextlib.suppress(OSError):
            backing = (entry / "loop" / "backing_file").read_text().strip()
            if backing:
                found.append(f"/dev/{entry.name} {backing}")
    return found
