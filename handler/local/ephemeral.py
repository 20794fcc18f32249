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
  the spawn and removed when the environment stops; an emulator that was SIGKILLed leaves its
  directories behind, and the next one removes them at start (:meth:`TmpRoot.remove_stale`);
- **as root on Linux, where a probe shows it works: a tmpfs of ``ephemeral_storage_mb``** in a
  mount namespace of the environment's own (``unshare(CLONE_NEWNS)`` in the child before exec,
  every mount made private so that nothing propagates back to the host). It is mounted over
  ``/tmp``, so that code which writes to ``/tmp/...`` literally (common in Lambda functions) gets
  it; unless something the environment needs lives under ``/tmp`` (its code, its model, the
  Python it runs: test fixtures, say), which a mount over ``/tmp`` would hide: then it is
  mounted on the private directory and ``TMPDIR`` points there (Python's ``tempfile`` honours
  it). Past the size: ENOSPC, as on Lambda. The namespace, and the tmpfs with it, go when the
  environment's last process exits.

Without the tmpfs (not root, the host resource model, a failed probe), ``TMPDIR`` points at the
private directory, which has no size limit. Not as on Lambda: **tmpfs pages are memory**, and
the kernel charges them to the memory cgroup of the environment that writes them (kernel docs,
cgroup-v1 memory: "All mapped anon pages (RSS) and cache pages (Page Cache) are accounted";
cgroup-v2's memory.stat counts them as "shmem ... such as tmpfs"), so a function at 128 MB that
writes 200 MB to /tmp is OOM-killed rather than refused with ENOSPC; Lambda's /tmp is disk,
apart from its memory. Size ``memory_mb`` for what the function keeps in /tmp as well.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x4000, 0x40000
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None  # resolved here,
# in the parent: the child only calls it between fork and exec


def _check(result: int, what: str) -> None:  # pragma: no cover - runs in the child
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount_private_tmpfs(target: bytes, size_mb: int) -> None:  # pragma: no cover - in the child
    """In a new mount namespace (nothing propagated back), a tmpfs of ``size_mb`` at ``target``."""
    assert _LIBC is not None
    _check(_LIBC.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    options = f"size={size_mb}m,mode=1777".encode()
    _check(_LIBC.mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, options), "mount tmpfs")


def _under(path: str, directory: str) -> bool:
    real = os.path.realpath(path)
    return real == directory or real.startswith(directory + os.sep)


def hides_something(paths: Iterable[str]) -> bool:
    """Would a mount over /tmp hide one of ``paths`` (or this Python and its libraries)?"""
    tmp = os.path.realpath("/tmp")
    candidates = [*paths, sys.executable, sys.prefix, *sys.path]
    return any(_under(path, tmp) for path in candidates if path and os.path.isabs(path))


class EnvTmp:
    """One environment's /tmp: a private directory and, maybe, where its tmpfs is mounted."""

    def __init__(self, directory: Path, size_mb: int, mount_at: bytes | None) -> None:
        self.directory, self.size_mb, self.mount_at = directory, size_mb, mount_at

    @property
    def description(self) -> str:
        if self.mount_at is None:
            return f"directory {self.directory} (no size limit)"
        return f"tmpfs {self.size_mb} MB at {os.fsdecode(self.mount_at)}"

    def variables(self) -> dict[str, str]:
        """TMPDIR, unless /tmp itself is the environment's (Lambda sets no TMPDIR)."""
        return {} if self.mount_at == b"/tmp" else {"TMPDIR": str(self.directory)}

    def create(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=False)

    def preexec(self) -> None:  # pragma: no cover - runs in the child between fork and exec
        if self.mount_at is not None:
            mount_private_tmpfs(self.mount_at, self.size_mb)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class TmpRoot:
    """This emulator's directory of environment /tmp directories, and whether tmpfs works."""

    def __init__(self, tmpfs: bool, base: Path | None = None) -> None:
        self.base = base or Path(tempfile.gettempdir()) / "lambda-emulator"
        self.directory = self.base / str(os.getpid())
        self.tmpfs = tmpfs

    @classmethod
    def detect(cls, want_tmpfs: bool, base: Path | None = None) -> tuple[TmpRoot, str]:
        """The root, with tmpfs if wanted and a probe shows it works; and a one-line reason."""
        if not want_tmpfs:
            return cls(False, base), "private TMPDIR only (host resource model)"
        reason = probe_tmpfs()
        if reason is not None:
            return cls(False, base), f"private TMPDIR only: {reason}"
        return cls(True, base), "tmpfs of ephemeral_storage_mb per environment, in its own mount namespace"

    def for_environment(self, env_id: str, size_mb: int, paths: Iterable[str]) -> EnvTmp:
        directory = self.directory / env_id
        if not self.tmpfs:
            return EnvTmp(directory, size_mb, None)
        mount_at = os.fsencode(directory) if hides_something(paths) else b"/tmp"
        return EnvTmp(directory, size_mb, mount_at)

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
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(OSError):  # another emulator may still be using it
            os.rmdir(self.base)


def probe_tmpfs() -> str | None:
    """None if a child can mount a private tmpfs here, else why not (one line)."""
    if _LIBC is None:
        return f"mount namespaces are Linux-only (this is {sys.platform})"
    if os.geteuid() != 0:
        return "not root: a tmpfs per environment needs CAP_SYS_ADMIN"
    true = shutil.which("true") or "/bin/true"
    with tempfile.TemporaryDirectory(prefix="lambda-emulator-probe-") as folder:
        target = os.fsencode(folder)
        try:
            subprocess.run([true], preexec_fn=lambda: mount_private_tmpfs(target, 1), check=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"a private tmpfs could not be mounted ({exc})".replace("\n", " ")
    return None
