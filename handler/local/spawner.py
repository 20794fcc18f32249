"""Start an environment's process off the event loop, and hear of its exit through a pidfd.

Why. A spawn returns only once the child has exec'd (``subprocess`` and uvloop both wait on an
error pipe), and an environment's child first moves itself into its cgroups and its /tmp mount
(``preexec``). On cgroup v1 the first write to ``cgroup.procs`` after a quiet spell waits for an
RCU grace period (the kernel's ``cgroup_threadgroup_rwsem``; 13 ms at p50 here with one
CPU-bound job beside it), and the child's later steps run at an initialising environment's low
CPU weight. Done on the event loop, that held every invocation in flight, and their late
answers opened more environments whose spawns held it again: the stall in docs/benchmarks.md,
"The spawn held the event loop". Lambda starts an environment without pausing the others.

How. ``subprocess.Popen`` runs in a thread of this module's own, and the loop watches a pidfd
(``pidfd_open(2)``, Linux 5.3+: readable once the process has exited) and reaps the child then,
at once. The fork itself still holds the GIL for its duration (CPython's ``_posixsubprocess``),
a far shorter pause than waiting for the exec.

The threads live as long as this process: the children are started with PR_SET_PDEATHSIG, which
the kernel fires when the *thread* that forked them exits (prctl(2)), so a pool that retired
its threads (or the loop's default executor, shut down when ``asyncio.run`` ends) would kill
live environments.

A spawn cancelled before the exec waits for it (for the child's steps before the exec, which run
at its low CPU weight: unbounded in principle; a whole spawn took 18-26 ms here beside one
CPU-bound job, up to 290 beside two), then kills the child (reaped in a thread), so that the
caller's cleanup (its cgroup, its /tmp image) never runs under a child still moving in;
cancelled a second time meanwhile, it leaves the kill to a callback and the cleanup may run
first (a cgroup's removal then kills what moved in). ``usable()`` is False where there is no
pidfd (not Linux, a kernel before 5.3, a seccomp filter that refuses the call): callers then
spawn on the loop as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

THREADS = 4  # spawns at once; a burst of cold starts queues behind them (a spawn: 18-290 ms here)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_threads() -> None:
    """In a forked child: the parent's threads are not here; start new ones on first use."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


@functools.cache
def usable() -> bool:
    """Can this process open a pidfd (``os.pidfd_open`` exists and the kernel allows it)?"""
    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return False
    os.close(fd)
    return True


def _threads() -> ThreadPoolExecutor:
    """The spawning threads, started on first use and never shut down (see the docstring)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="environment-spawn")
        return _pool


def _reap(popen: subprocess.Popen) -> None:
    """SIGKILL and reap, in a daemon thread of its own (nothing here waits for it)."""
    with contextlib.suppress(ProcessLookupError):
        popen.kill()
    threading.Thread(target=popen.wait, name="environment-reap", daemon=True).start()


async def spawn(argv: tuple[str, ...], options: dict, write_fd: int) -> PidfdProcess:
    """``subprocess.Popen(argv, **options)`` in a spawning thread; ``write_fd`` (the child's
    output pipe) is closed once it has returned."""
    loop = asyncio.get_running_loop()

    def start() -> subprocess.Popen:
        try:
            return subprocess.Popen(argv, **options)
        finally:
            os.close(write_fd)

    try:
        started = loop.run_in_executor(_threads(), start)
    except BaseException:
        os.close(write_fd)
        raise
    try:
        popen = await asyncio.shield(started)
    except asyncio.CancelledError:
        # Cancelled while the child may be between fork and exec: wait for the exec (or its
        # failure) before anyone tears down what the child is moving into, then end it. A
        # second cancellation meanwhile leaves the killing to a callback.
        try:
            await asyncio.wait({started})
        except asyncio.CancelledError:
            started.add_done_callback(_discard)
            raise
        _discard(started)
        raise
    except BaseException:  # the coroutine closed (GeneratorExit): no awaiting now
        started.add_done_callback(_discard)
        raise
    try:
        return PidfdProcess(popen)
    except BaseException:  # no pidfd after all (EMFILE, ...): the child must not outlive this
        _reap(popen)
        raise


def _discard(started: asyncio.Future) -> None:
    if not started.cancelled() and started.exception() is None:
        _reap(started.result())


class PidfdProcess:
    """A ``subprocess.Popen`` child whose exit the event loop hears through a pidfd; it is
    reaped then, at once. What ``handler.local.process.RuntimeProcess`` needs: ``pid``,
    ``returncode``, ``kill``, ``wait``."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self._popen = popen
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = os.pidfd_open(popen.pid)  # a zombie has one: not reaped yet
        try:
            loop.add_reader(self._pidfd, self._on_exit)
        except BaseException:
            os.close(self._pidfd)
            raise

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def _on_exit(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        code = self._popen.wait()  # it has exited: no waiting (or kill() polled it already)
        if not self._exited.done():
            self._exited.set_result(code)

    def kill(self) -> None:
        """SIGKILL unless it has been reaped (``Popen.kill`` polls first)."""
        self._popen.kill()

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)
