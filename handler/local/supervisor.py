"""The emulator's supervisor: nothing of an emulator outlives it, however the emulator ends.

A stopped emulator removes its environments itself (``Emulator.stop``). One that is SIGKILLed
or OOM-killed cannot, and the kernel alone does not finish the job: an environment's
PR_SET_PDEATHSIG SIGKILL (``handler.local.process``) stays pending in a frozen process, and
cgroups are never removed by the kernel. So at start the emulator starts this small process
(``python -m handler.local.supervisor SPEC``), in a session of its own, whose stdin is the read
end of a pipe whose write end only the emulator holds (close-on-exec: no environment inherits
it). The emulator writes ``+ PID`` when an environment's process starts and ``- PID`` when it
is gone. When the read end sees end of file, the emulator's process is gone (exit, crash,
SIGKILL: the kernel closes its fds), and the supervisor:

1. SIGKILLs every environment process it was told about and has not seen go;
2. in each of the emulator's cgroups (``<hierarchy>/<root>/<emulator pid>/...``), SIGKILLs
   what is left and thaws the group (a frozen task dies as it thaws), then removes the groups
   (``cgroups.remove_emulator_groups``);
3. removes the emulator's /tmp directory (``<tempdir>/lambda-emulator/<emulator pid>``).

The environments' /tmp file systems go by themselves once their processes are gone (the mount
with its namespace, the loop device and the image after it: ``handler.local.diskimage``).
After a clean stop there is nothing left to do and it exits at once. It ignores SIGINT (a
Ctrl-C in the terminal reaches the emulator, which stops cleanly). If the supervisor itself is
killed, the next emulator's ``remove_stale`` at start is the second line of defence.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from handler.local import cgroups

CLEANUP_DEADLINE_S = 5.0


class Supervisor:
    """The emulator's end: starts the supervisor and tells it of each environment process."""

    def __init__(self, process: subprocess.Popen, write_fd: int) -> None:
        self.process, self._fd = process, write_fd

    @classmethod
    def start(cls, backend: cgroups.ResourceBackend, tmp_directory: Path, root_name: str) -> Supervisor:
        spec = {"emulator_pid": os.getpid(), "tmp_directory": str(tmp_directory)}
        if isinstance(backend, cgroups.CgroupBackend):
            spec["cgroup_kind"] = backend.kind
            spec["cgroup_tops"] = [str(hierarchy / root_name) for hierarchy in backend.hierarchies]
        read_fd, write_fd = os.pipe()  # both close-on-exec: only the supervisor's stdin is passed
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "handler.local.supervisor", json.dumps(spec)],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # no terminal signal reaches it
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        return cls(process, write_fd)

    def _tell(self, line: str) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # the supervisor is gone: remove_stale remains
                os.write(self._fd, line.encode())

    def started(self, pid: int) -> None:
        self._tell(f"+ {pid}\n")

    def exited(self, pid: int) -> None:
        self._tell(f"- {pid}\n")

    def close(self, timeout_s: float = 10.0) -> None:
        """After a clean stop: close our end (the supervisor finds nothing left) and reap it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        os.close(fd)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def clean_up(spec: dict, pids: set[int]) -> None:
    """What a dead emulator left: its environments' processes, its groups, its /tmp directory."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    kind = spec.get("cgroup_kind")
    if kind is not None:
        dialect = cgroups.V1 if kind == cgroups.V1.kind else cgroups.V2
        tops = tuple(Path(top) for top in spec["cgroup_tops"])
        clock = time.perf_counter_ns
        deadline, emulator = clock() + int(CLEANUP_DEADLINE_S * 1e9), str(spec["emulator_pid"])
        with contextlib.suppress(OSError):
            cgroups.remove_emulator_groups(tops, emulator, dialect, deadline, clock)
        for top in tops:
            with contextlib.suppress(OSError):  # another emulator may still be using it
                os.rmdir(top)
    shutil.rmtree(spec["tmp_directory"], ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(Path(spec["tmp_directory"]).parent)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m handler.local.supervisor SPEC (started by the emulator)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = json.loads(args[0])
    pids: set[int] = set()
    for line in sys.stdin.buffer:  # until end of file: the emulator is gone
        sign, _, number = line.strip().partition(b" ")
        if number.isdigit():
            (pids.add if sign == b"+" else pids.discard)(int(number))
    clean_up(spec, pids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
