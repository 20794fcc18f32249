"""handler.local.process.spawn: an environment's process is started off the event loop (a fork
and exec in a worker thread), heard from through a pidfd, and never left behind by a cancelled
spawn. Real children of ``python -m awslambdaric`` against a socket that never answers."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler.local.process import spawn

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="spawns off the loop only with pidfd")
GATE_TIMEOUT_S = 10.0  # a child waits this long for the loop to open its gate, then fails


@pytest.fixture
def silent_runtime_api() -> Iterator[str]:
    """A Runtime API address that accepts connections and never answers: a runtime started
    against it waits in its first /next until it is killed."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"127.0.0.1:{server.getsockname()[1]}"


def runtime_env(api: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_RUNTIME_API": api, "_HANDLER": "os.getcwd"}


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


async def wait_for(condition, deadline_s: float = 10.0) -> bool:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.01)
    return True


def test_the_event_loop_runs_while_a_child_is_being_spawned_and_its_exit_is_heard(
    tmp_path: Path, silent_runtime_api: str
):
    """The child cannot exec until a callback on the loop opens its gate: a spawn that held
    the loop until the exec would fail here after GATE_TIMEOUT_S."""
    gate_r, gate_w = os.pipe()
    pid_r, pid_w = os.pipe()
    lines: list[str] = []

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.write, gate_w, b"open")
        process = await spawn(
            "os.getcwd",
            tmp_path,
            runtime_env(silent_runtime_api),
            lines.append,
            preexec=gate_preexec(gate_r, pid_w),
        )
        assert process.returncode is None
        process.kill()
        code = await asyncio.wait_for(process.wait(), 10)
        process.close()
        return process.pid, code

    try:
        pid, code = asyncio.run(main())
    finally:
        for fd in (gate_r, gate_w, pid_w):
            os.close(fd)
    assert int(os.read(pid_r, 32)) == pid
    os.close(pid_r)
    assert code == -signal.SIGKILL
    assert gone(pid)


def test_a_spawn_cancelled_before_the_exec_kills_and_reaps_its_child(tmp_path: Path, silent_runtime_api: str):
    gate_r, gate_w = os.pipe()
    pid_r, pid_w = os.pipe()

    async def main() -> int:
        task = asyncio.create_task(
            spawn(
                "os.getcwd",
                tmp_path,
                runtime_env(silent_runtime_api),
                print,
                preexec=gate_preexec(gate_r, pid_w),
            )
        )
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(pid_r, readable.set)
        await asyncio.wait_for(readable.wait(), 10)  # the child is between fork and exec
        loop.remove_reader(pid_r)
        pid = int(os.read(pid_r, 32))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        os.write(gate_w, b"open")  # it execs now, and is killed and reaped off the loop
        assert await wait_for(lambda: gone(pid)), f"pid {pid} outlived its cancelled spawn"
        return pid

    try:
        asyncio.run(main())
    finally:
        for fd in (gate_r, gate_w, pid_r, pid_w):
            os.close(fd)


def test_a_runtime_that_exits_by_itself_is_reaped_with_its_status_and_last_lines(tmp_path: Path):
    """No Runtime API at all: awslambdaric fails and exits; what it wrote reaches ``on_line``."""
    lines: list[str] = []
    env = {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"}

    async def main() -> tuple[int, int]:
        process = await spawn("os.getcwd", tmp_path, env, lines.append)
        code = await asyncio.wait_for(process.wait(), 30)
        process.close()
        return process.pid, code

    pid, code = asyncio.run(main())
    assert code > 0, (code, lines)
    assert lines, "its error output was not delivered"
    assert gone(pid)
