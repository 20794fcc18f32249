"""The OS process of an execution environment: spawn, output, memory, kill, wait.

``spawn`` starts ``python -m awslambdaric <module.function>`` in the function's task root with
the variables it is given, stdin from ``/dev/null`` and stdout + stderr into one pipe of our
own, in a session of its own, and (Linux) with PR_SET_PDEATHSIG so that the kernel kills it
if the emulator dies (a frozen one only once thawed: ``handler.local.supervisor`` does that;
the signal follows the thread that forked it: ``handler.local.spawner``'s live as long).
Its output is cut into lines for a callback; ``drain`` reads what has been written so far,
synchronously. ``memory`` reads its peak RSS (Max Memory Used).

Nothing here knows Lambda's lifecycle (``handler.local.lifecycle``). Two seams are for
per-environment isolation and accounting: ``preexec`` runs in the child between fork and
exec (after PR_SET_PDEATHSIG; e.g. to move it into a cgroup), and ``meter`` builds the
``MemoryMeter`` that the REPORT line's Max Memory Used is read from (``PeakRss`` by default;
e.g. a cgroup's ``memory.peak`` instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from handler.local import spawner

READ_BYTES = 65_536  # one os.read; also the longest line kept whole (a longer one is cut)


class MemoryMeter(Protocol):
    def mb(self) -> int: ...

    def close(self) -> None: ...


class PeakRss:
    """A process's peak resident set (VmHWM), in MB, as Lambda's Max Memory Used.

    ``/proc/<pid>/status`` is opened once and re-read with ``pread`` (3 µs here, against 11 µs
    for open + read + close; 9 µs with the kernel's formatting of the whole file). A reading at
    most ``reuse_ns`` old (default 1 ms) is answered again: an invocation's end reads it twice
    within microseconds (the memory limit's check, then its REPORT line). 0 where there is no
    procfs.
    """

    __slots__ = ("_clock", "_fd", "_read_ns", "_reuse_ns", "_value")

    def __init__(
        self, pid: int, reuse_ns: int = 1_000_000, clock: Callable[[], int] = time.perf_counter_ns
    ) -> None:
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        except OSError:
            self._fd = None
        self._clock, self._reuse_ns = clock, reuse_ns
        self._read_ns: int | None = None
        self._value = 0

    def mb(self) -> int:
        if self._fd is None:
            return 0
        now = self._clock()
        if self._read_ns is not None and now - self._read_ns <= self._reuse_ns:
            return self._value
        try:
            status = os.pread(self._fd, 8192, 0)
            start = status.index(b"VmHWM:") + 6
            kib = int(status[start : status.index(b"kB", start)])
        except (OSError, ValueError):
            return 0
        self._read_ns, self._value = now, -(-kib // 1024)
        return self._value

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# Loaded here, not between fork and exec: a dlopen in a child forked beside other threads could
# find the loader's lock held by one of them (handler.local.spawner forks in threads).
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the environment is killed if the emulator dies, so none is ever orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child_setup(preexec: Callable[[], None] | None) -> Callable[[], None] | None:
    if sys.platform != "linux":
        return preexec
    if preexec is None:
        return _die_with_parent

    def setup() -> None:  # pragma: no cover - runs in the child between fork and exec
        _die_with_parent()
        preexec()

    return setup


# Go's names for signals (syscall.Signal.String()), which Lambda's "signal: killed" comes from.
GO_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
}


def lambda_variables(config, env_id: str, port: int, region: str) -> dict[str, str]:
    """The variables Lambda sets for a runtime (``config``: a FunctionConfig), and the few of
    the emulator's own that a process needs (PATH, HOME, LANG, the virtualenv, AWS credentials)."""
    task_root = str(config.code_dir)
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "SYSTEMROOT")
        or key.startswith(("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION", "AWS_ENDPOINT"))
    }
    return {
        **inherited,
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{env_id}",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(os.__file__)),
        "_HANDLER": config.handler,
        "PYTHONPATH": task_root,
        "PYTHONUNBUFFERED": "1",
        "TZ": ":UTC",
    }


def exit_reason(code: int) -> str:
    """As Lambda words a runtime's exit, after Go's ``ProcessState.String()``: ``signal:
    killed`` (SIGKILL), ``signal: segmentation fault`` ..., or ``exit status N``."""
    if code >= 0:
        return f"exit status {code}"
    try:
        number = signal.Signals(-code)
    except ValueError:
        return f"signal: {-code}"
    return f"signal: {GO_SIGNAL_NAMES.get(number, number.name.lower())}"


class RuntimeProcess:
    """A running ``awslambdaric`` child, its output pipe and its memory meter."""

    def __init__(
        self,
        process: ChildProcess,
        output_fd: int,
        on_line: Callable[[str], None],
        memory: MemoryMeter,
    ) -> None:
        self._process = process
        self._output_fd: int | None = output_fd
        self._output_buffer = b""
        self._on_line = on_line
        self.memory = memory
        asyncio.get_running_loop().add_reader(output_fd, self.drain)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def drain(self) -> None:
        """Read whatever the process has written so far; on end of file, close the pipe."""
        fd = self._output_fd
        if fd is None:
            return
        eof = False
        while True:
            try:
                chunk = os.read(fd, READ_BYTES)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                eof = True
                break
            buffer = self._output_buffer + chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                self._on_line(raw.decode("utf-8", "replace"))
            if len(buffer) > READ_BYTES:
                self._on_line(buffer.decode("utf-8", "replace"))
                buffer = b""
            self._output_buffer = buffer
        if eof:
            self._close_output()

    def _close_output(self) -> None:
        fd, self._output_fd = self._output_fd, None
        if fd is None:
            return
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        if self._output_buffer:
            self._on_line(self._output_buffer.decode("utf-8", "replace"))
            self._output_buffer = b""

    def kill(self) -> None:
        """SIGKILL, if it is still running; ``wait`` then returns."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    async def wait(self) -> int:
        """Its exit status (negative: the signal), once every line it wrote has been delivered."""
        code = await self._process.wait()
        self.drain()  # what it printed before dying belongs to the failed invocation
        self._close_output()
        return code

    def close(self) -> None:
        """Release the memory meter (after the last reading)."""
        self.memory.close()


async def spawn(
    handler: str,
    cwd: Path,
    env: Mapping[str, str],
    on_line: Callable[[str], None],
    *,
    preexec: Callable[[], None] | None = None,
    meter: Callable[[int], MemoryMeter] = PeakRss,
) -> RuntimeProcess:
    """Start ``python -m awslambdaric handler``; ``on_line`` gets each line it writes.

    Started off the event loop where a pidfd can be opened (``handler.local.spawner``: until
    its exec a spawn held every invocation in flight), else on the loop."""
    # Our own pipe rather than asyncio's, so that output can be drained synchronously when
    # the response arrives: a line printed before the handler returned is in the pipe by
    # then, and belongs in that invocation's log tail.
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    argv = (sys.executable, "-m", "awslambdaric", handler)
    options = {
        "cwd": cwd,
        "env": dict(env),
        "stdin": subprocess.DEVNULL,
        "stdout": write_fd,
        "stderr": write_fd,
        "start_new_session": True,
        "preexec_fn": _child_setup(preexec),
    }
    try:
        if spawner.usable():
            process: ChildProcess = await spawner.spawn(argv, options, write_fd)
        else:  # pragma: no cover - no pidfd here
            try:
                process = await asyncio.create_subprocess_exec(*argv, **options)
            finally:
                os.close(write_fd)
    except BaseException:
        os.close(read_fd)
        raise
    return RuntimeProcess(process, read_fd, on_line, meter(process.pid))


class ChildProcess(Protocol):
    """What :class:`RuntimeProcess` needs of a child (``asyncio.subprocess.Process`` has it)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def kill(self) -> None: ...

    async def wait(self) -> int: ...
