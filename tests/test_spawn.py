"""handler.local.spawner (through handler.local.process.spawn): an environment's process is
started off the event loop, heard from through a pidfd, and never left behind by a spawn that
was cancelled or could not watch it. Real children of ``python -m awslambdaric`` against a
socket that never answers, on asyncio's loop and on uvloop (the emulator's)."""

from __future__ import annotations

import asyncio
import errno
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvloop

from handler.local import spawner
from handler.local.process import spawn

pytestmark = pytest.mark.skipif(not spawner.usable(), reason="spawns go off the loop only with a pidfd")
GATE_TIMEOUT_S = 10.0  # a child waits this long for the loop to open its gate, then fails
RUNNERS = {"asyncio": asyncio.run, "uvloop": uvloop.run}
PDEATHSIG_WINDOW_S = 1.0  # a SIGKILLed child blocked in recv() exits within ms


@pytest.fixture(params=sorted(RUNNERS))
def run(request) -> Callable:
    return RUNNERS[request.param]


@pytest.fixture
def silent_runtime_api() -> Iterator[str]:
    """A Runtime API address that accepts connections and never answers: a runtime started
    against it waits in its first /next until it is killed."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def pipes() -> Iterator[tuple[int, int, int, int]]:
    """(gate read, gate write, pid read, pid write), all closed afterwards."""
    fds = (*os.pipe(), *os.pipe())
    yield fds
    for fd in fds:
        os.close(fd)


def runtime_env(api: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_RUNTIME_API": api}


def gate_preexec(gate: int, pid_out: int):
    """Between fork and exec: say our pid, then wait for the gate (the parent's event loop
    writes it); past GATE_TIMEOUT_S the spawn fails."""

    def preexec() -> None:  # pragma: no cover - runs in the child
        os.write(pid_out, str(os.getpid()).encode())
        if not select.select([gate], [], [], GATE_TIMEOUT_S)[0]:
            raise RuntimeError("the event loop never opened the gate: it was blocked by the spawn")

    return preexec


def gone(pid: int) -> bool:
    """Neither running nor a zombie: reaped."""
    return not Path(f"/proc/{pid}").exists()


def wait_gone(pid: int, deadline_s: float = 10.0) -> bool:
    end = time.monotonic() + deadline_s
    while not gone(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


async def read_pid(fd: int) -> int:
    """The child's pid, once it has written it (it is between fork and exec then)."""
    loop, readable = asyncio.get_running_loop(), asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        await asyncio.wait_for(readable.wait(), 10)
    finally:
        loop.remove_reader(fd)
    return int(os.read(fd, 32))


def test_the_event_loop_runs_while_a_child_is_being_spawned_and_its_exit_is_heard(
    run, tmp_path: Path, silent_runtime_api: str, pipes
):
    """The child cannot exec until a callback on the loop opens its gate: a spawn that held
    the loop until the exec fails here after GATE_TIMEOUT_S."""
    gate_r, gate_w, pid_r, pid_w = pipes

    async def main() -> tuple[int, int, int]:
        asyncio.get_running_loop().call_later(0.05, os.write, gate_w, b"open")
        env = runtime_env(silent_runtime_api)
        process = await spawn("os.getcwd", tmp_path, env, print, preexec=gate_preexec(gate_r, pid_w))
        try:
            assert process.returncode is None
            process.kill()
            code = await asyncio.wait_for(process.wait(), 10)
        finally:
            process.close()
        return process.pid, code, int(os.read(pid_r, 32))

    pid, code, pid_from_child = run(main())
    assert pid_from_child == pid
    assert code == -signal.SIGKILL
    assert gone(pid)


def test_a_cancelled_spawn_waits_for_the_exec_then_kills_and_reaps_its_child(
    run, tmp_path: Path, silent_runtime_api: str, pipes
):
    """Cancelled between fork and exec, the spawn returns only once the child has exec'd (so
    that its cgroup and /tmp are not torn down under it), and the child is then killed."""
    gate_r, gate_w, pid_r, pid_w = pipes
    opened: list[float] = []

    def open_gate() -> None:
        opened.append(time.monotonic())
        os.write(gate_w, b"open")

    async def main() -> int:
        env = runtime_env(silent_runtime_api)
        task = asyncio.ensure_future(
            spawn("os.getcwd", tmp_path, env, print, preexec=gate_preexec(gate_r, pid_w))
        )
        pid = await read_pid(pid_r)
        task.cancel()
        asyncio.get_running_loop().call_later(0.2, open_gate)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert opened, "the cancelled spawn returned before its child could exec"
        return pid

    pid = run(main())
    assert wait_gone(pid), f"pid {pid} outlived its cancelled spawn"


def test_a_child_that_cannot_be_watched_is_killed_not_left_running(
    run, tmp_path: Path, silent_runtime_api: str, pipes, monkeypatch
):
    gate_r, gate_w, pid_r, pid_w = pipes
    os.write(gate_w, b"open")

    def no_pidfd(pid: int) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    async def main() -> None:
        env = runtime_env(silent_runtime_api)
        await spawn("os.getcwd", tmp_path, env, print, preexec=gate_preexec(gate_r, pid_w))

    monkeypatch.setattr(spawner.os, "pidfd_open", no_pidfd)
    with pytest.raises(OSError, match="Too many open files"):
        run(main())
    pid = int(os.read(pid_r, 32))
    assert wait_gone(pid), f"pid {pid} was left running when its pidfd could not be opened"


def test_a_child_outlives_the_loops_default_executor(run, tmp_path: Path, silent_runtime_api: str):
    """PR_SET_PDEATHSIG follows the thread that forked the child: spawned from the loop's
    default executor, it would be killed when that executor's threads end (as ``asyncio.run``
    ends them); the spawner's own threads live on."""

    async def main() -> None:
        process = await spawn("os.getcwd", tmp_path, runtime_env(silent_runtime_api), print)
        try:
            await asyncio.get_running_loop().shutdown_default_executor()
            with pytest.raises(asyncio.TimeoutError):  # killed, it would exit within the window
                await asyncio.wait_for(process.wait(), PDEATHSIG_WINDOW_S)
        finally:
            process.kill()
            await asyncio.wait_for(process.wait(), 10)
            process.close()

    run(main())


def test_a_runtime_that_exits_by_itself_is_reaped_with_its_status_and_last_lines(run, tmp_path: Path):
    """No Runtime API at all: awslambdaric fails and exits; what it wrote reaches ``on_line``."""
    lines: list[str] = []
    env = {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"}

    async def main() -> tuple[int, int]:
        process = await spawn("os.getcwd", tmp_path, env, lines.append)
        try:
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            process.close()
        return process.pid, code

    pid, code = run(main())
    assert code > 0, (code, lines)
    assert lines, "its error output was not delivered"
    assert gone(pid)
