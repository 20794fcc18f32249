"""/tmp per execution environment: ``ephemeral_storage_mb`` of its own, as on Lambda.

On Lambda each environment has a /tmp of its function's ephemeral storage size: "The size of
the function's /tmp directory in MB. The default value is 512, but can be any whole number
between 512 and 10,240 MB" (Lambda API reference, ``EphemeralStorage``). Writing past it fails
with ENOSPC, "[Errno 28] No space left on device" (captured from Lambda in
cloud-custodian/cloud-custodian#8577 and humanmade/linter-bot#158). It lasts as long as the
environment ("The Lambda reset does not clear the /tmp directory content", DG, runtimes-context)
and no other environment sees it.

Here every environment gets:

- **a private directory**, ``<tempdir>/lambda-emulator/<emulator pid>/<env id>``, created before
  the spawn and removed when the environment stops (after a SIGKILL of the emulator, by its
  supervisor, ``handler.local.supervisor``; and by the next emulator at start,
  :meth:`TmpRoot.remove_stale`);
- **as root on Linux, where a probe shows it works: a file system of its own on the host's disk,
  of ``ephemeral_storage_mb``** (``handler.local.diskimage``: an ext4 image on a loop device,
  made ahead of the spawn), in a mount namespace of the environment's own. It is mounted over
  ``/tmp``, so that code which writes to ``/tmp/...`` literally (common in Lambda functions) gets
  it; unless something the environment needs lives under ``/tmp`` (its code, its model, the
  Python it runs: test fixtures, say), which a mount over ``/tmp`` would hide: then it is
  mounted on the private directory and ``TMPDIR`` points there (Python's ``tempfile`` honours
  it). Past the size: ENOSPC, as on Lambda; its page cache is reclaimable, so no OOM kill, and
  Max Memory Used leaves it out. The mount goes with the environment's last process, and the
  loop device and image with it.

Without it (not root, no loop devices, the host resource model, a failed probe), ``TMPDIR``
points at the private directory, whose size is NOT enforced.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from handler.local.diskimage import DiskImage, DiskUnavailable, ImagePool


def _under(path: str, directory: str) -> bool:
    real = os.path.realpath(path)
    return real == directory or real.startswith(directory + os.sep)


def hides_something(paths: Iterable[str]) -> bool:
    """Would a mount over /tmp hide one of ``paths`` (or this Python and its libraries)?"""
    tmp = os.path.realpath("/tmp")
    candidates = [*paths, sys.executable, sys.prefix, *sys.path]
    return any(_under(path, tmp) for path in candidates if path and os.path.isabs(path))


class EnvTmp:
    """One environment's /tmp: a private directory and, on disk, where its file system goes."""

    def __init__(self, directory: Path, size_mb: int, mount_at: bytes | None, pool: ImagePool | None) -> None:
        self.directory, self.size_mb, self.mount_at, self._pool = directory, size_mb, mount_at, pool
        self.image: DiskImage | None = None

    @property
    def description(self) -> str:
        if self.mount_at is None:
            return f"directory {self.directory} (size not enforced)"
        return f"ext4 of {self.size_mb} MB on disk at {os.fsdecode(self.mount_at)}"

    def variables(self) -> dict[str, str]:
        """TMPDIR, unless /tmp itself is the environment's (Lambda sets no TMPDIR)."""
        return {} if self.mount_at == b"/tmp" else {"TMPDIR": str(self.directory)}

    def create(self) -> None:
        """Before the spawn: the directory, and an image from the pool (made ahead)."""
        self.directory.mkdir(parents=True, exist_ok=False)
        if self._pool is not None and self.mount_at is not None:
            try:
                self.image = self._pool.take(self.size_mb)
            except BaseException:
                self.remove()
                raise

    def preexec(self) -> None:  # pragma: no cover - runs in the child between fork and exec
        if self.image is not None and self.mount_at is not None:
            self.image.mount_in_new_namespace(self.mount_at)

    def started(self) -> None:
        """After the spawn: the environment's namespace holds the mount; let go of ours (once)."""
        image, self.image = self.image, None
        if image is not None:
            image.close()
        if self._pool is not None:
            self._pool.refill()

    def remove(self) -> None:
        """Idempotent: a failed start may remove it twice (``EnvResources.create``, then ``close``);
        after ``started`` the image is the environment's, and the pool was refilled then."""
        image, self.image = self.image, None
        if image is not None:
            image.close()
            if self._pool is not None:
                self._pool.refill()  # should the spawn have failed before ``started``
        shutil.rmtree(self.directory, ignore_errors=True)


class TmpRoot:
    """This emulator's directory of environment /tmp directories, and its pool of disk images."""

    def __init__(self, disk: bool, base: Path | None = None) -> None:
        self.base = base or Path(tempfile.gettempdir()) / "lambda-emulator"
        self.directory = self.base / str(os.getpid())
        self.pool: ImagePool | None = ImagePool(self.directory) if disk else None

    @property
    def disk(self) -> bool:
        return self.pool is not None

    @classmethod
    def detect(cls, want_disk: bool, base: Path | None = None) -> tuple[TmpRoot, str]:
        """The root, on disk if wanted and a probe shows it works; and a one-line reason."""
        if not want_disk:
            return cls(False, base), "private TMPDIR, size NOT enforced (host resource model)"
        root = cls(True, base)
        reason = root.probe()
        if reason is not None:
            root.close()
            return cls(False, base), f"private TMPDIR, size NOT enforced: {reason}"
        return root, "ext4 on disk of ephemeral_storage_mb per environment (loop device), own mount namespace"

    def prepare(self, sizes: Iterable[int]) -> None:
        """Start making images of these sizes ahead of the first spawns."""
        if self.pool is not None:
            self.pool.prepare(sizes)

    def for_environment(self, env_id: str, size_mb: int, paths: Iterable[str]) -> EnvTmp:
        directory = self.directory / env_id
        if self.pool is None:
            return EnvTmp(directory, size_mb, None, None)
        mount_at = os.fsencode(directory) if hides_something(paths) else b"/tmp"
        return EnvTmp(directory, size_mb, mount_at, self.pool)

    def probe(self) -> str | None:
        """None if a child can mount an image here, else why not (one line)."""
        if sys.platform != "linux":
            return f"loop devices and mount namespaces are Linux-only (this is {sys.platform})"
        if os.geteuid() != 0:
            return "not root: a file system per environment needs CAP_SYS_ADMIN"
        if not os.path.exists("/dev/loop-control"):
            return "no /dev/loop-control (no loop devices)"
        true = shutil.which("true") or "/bin/true"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            assert self.pool is not None
            image = self.pool.take(512)
            target = os.fsencode(self.directory)
            try:
                subprocess.run(
                    [true], preexec_fn=lambda: image.mount_in_new_namespace(target), check=True, timeout=10
                )
            finally:
                image.close()
        except (OSError, subprocess.SubprocessError, DiskUnavailable) as exc:
            return f"an ext4 image could not be mounted ({exc})".replace("\n", " ")
        self.pool.misses = 0
        return None

    def remove_stale(self) -> int:
        """Remove what emulators no longer alive left here; the number of their directories."""
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.base):
                name = entry.name
                if name.isdigit() and name != str(os.getpid()) and not Path(f"/proc/{name}").exists():
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed += 1
        return removed

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(OSError):  # another emulator may still be using it
            os.rmdir(self.base)
