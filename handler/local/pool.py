"""Execution environments and their lifecycle, as Lambda runs them.

Each environment is a separate OS process, ``python -m awslambdaric <module.function>``,
started in the function's code directory (its task root) with the variables Lambda sets, and
talking to its own Runtime API endpoint (``runtime_api``). An invocation goes to an idle warm
environment (the most recently used); if there is none and the function's concurrency limit
allows, a new environment starts (a cold start: spawn + init + invoke); beyond the limit the
invocation is throttled. Init is limited to ``init_timeout_s`` and each invocation to the
function's timeout; an environment that overruns, exits or is killed fails its invocation
and is discarded, and the next invocation starts a new one. No invocation ever waits for a
dead environment: a process-exit watcher and two timers settle every invocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property

from handler.local.config import EmulatorConfig, FunctionConfig
from handler.local.logs import LogSink
from handler.local.reportline import ReportLine

MAX_RESPONSE_BYTES = 6_291_556  # Lambda's synchronous response limit
MAX_REQUEST_BYTES = 6_291_456  # Lambda's synchronous invocation payload limit
MAX_LOG_LINES = 200
ACCOUNT_ID = "123456789012"


class Throttled(Exception):
    """The function is at its concurrency limit (Lambda's TooManyRequestsException)."""


class UnknownFunction(KeyError):
    pass


class DeadlineExceeded(TimeoutError):
    """The caller's deadline (API Gateway's integration timeout) passed first."""


@dataclass(frozen=True)
class Outcome:
    """What an invocation returned: the payload and, for an error, its type.

    ``report`` (the REPORT line's figures) is computed on first use: Max Memory Used reads
    ``/proc``, and that read belongs after the caller's reply, not before it.
    """

    request_id: str
    payload: bytes
    function_error: str | None
    cold: bool
    init_duration_ms: float | None = None
    logs: tuple[str, ...] = ()
    measure: Callable[[], ReportLine] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def report(self) -> ReportLine | None:
        return self.measure() if self.measure is not None else None

    @property
    def error_type(self) -> str | None:
        if self.function_error is None:
            return None
        try:
            return str(json.loads(self.payload).get("errorType"))
        except (ValueError, AttributeError):
            return None


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class PeakRss:
    """A process's peak resident set (VmHWM), in MB, as Lambda's Max Memory Used.

    ``/proc/<pid>/status`` is opened once and re-read with ``pread`` (3 µs here, against 11 µs
    for open + read + close): it is read once per invocation. 0 where there is no procfs.
    """

    __slots__ = ("_fd",)

    def __init__(self, pid: int) -> None:
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        except OSError:
            self._fd = None

    def mb(self) -> int:
        if self._fd is None:
            return 0
        try:
            status = os.pread(self._fd, 8192, 0)
            start = status.index(b"VmHWM:") + 6
            kib = int(status[start : status.index(b"kB", start)])
        except (OSError, ValueError):
            return 0
        return -(-kib // 1024)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the environment is killed if the emulator dies, so none is ever orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Invocation:
    __slots__ = (
        "cold",
        "dispatched_ns",
        "future",
        "init_duration_ms",
        "logs",
        "payload",
        "request_id",
        "timer",
    )

    def __init__(self, payload: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.future: asyncio.Future[Outcome] = loop.create_future()
        self.cold = False
        self.init_duration_ms: float | None = None
        self.dispatched_ns = 0
        self.logs: list[str] = []
        self.timer: asyncio.TimerHandle | None = None


class FunctionState:
    """A function's configuration and its environments."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.environments: set[Environment] = set()
        self.idle: list[Environment] = []
        self.generation = 0
        self.last_modified = time.time()


class Environment:
    """One execution environment: a process running AWS's runtime client."""

    def __init__(self, pool: Pool, function: FunctionState) -> None:
        self.pool = pool
        self.function = function
        self.config = function.config
        self.generation = function.generation
        self.id = uuid.uuid4().hex[:12]
        self.function_arn = f"arn:aws:lambda:{pool.config.region}:{ACCOUNT_ID}:function:{self.config.name}"
        self.state = "init"
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.spawned_ns = time.perf_counter_ns()
        self.init_duration_ms: float | None = None
        self.init_error: bytes | None = None
        self.pending: Invocation | None = None
        self.current: Invocation | None = None
        self.next_waiter: asyncio.Future[Invocation] | None = None
        self.last_used = time.monotonic()
        self._init_timer: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task] = []
        self._output_fd: int | None = None
        self._output_buffer = b""
        self._peak_rss: PeakRss | None = None

    # -- start and stop -------------------------------------------------------------------
    def environment_variables(self) -> dict[str, str]:
        config = self.config
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
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{self.id}",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
            "AWS_REGION": self.pool.config.region,
            "AWS_DEFAULT_REGION": self.pool.config.region,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": os.path.dirname(os.path.dirname(os.__file__)),
            "_HANDLER": config.handler,
            "PYTHONPATH": task_root,
            "PYTHONUNBUFFERED": "1",
            "TZ": ":UTC",
            **config.env,
        }

    async def start(self) -> None:
        self.port = await self.pool.runtime.open_endpoint(self)
        self.spawned_ns = time.perf_counter_ns()
        # Our own pipe rather than asyncio's, so that output can be drained synchronously when
        # the response arrives: a line printed before the handler returned is in the pipe by
        # then, and belongs in that invocation's log tail.
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "awslambdaric",
                self.config.handler,
                cwd=self.config.code_dir,
                env=self.environment_variables(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        self._peak_rss = PeakRss(self.process.pid)
        self._output_fd = read_fd
        loop.add_reader(read_fd, self._drain_output)
        self._init_timer = loop.call_later(self.pool.config.init_timeout_s, self._init_timed_out)
        self._tasks = [asyncio.create_task(self._watch_exit())]

    def stop(self) -> None:
        """Discard the environment: kill its process; the exit watcher cleans up."""
        if self.state in ("stopping", "dead"):
            return
        self.state = "stopping"
        self.function.environments.discard(self)
        if self in self.function.idle:
            self.function.idle.remove(self)
        if self.next_waiter is not None and not self.next_waiter.done():
            self.next_waiter.cancel()
        if self._init_timer is not None:
            self._init_timer.cancel()
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _drain_output(self) -> None:
        """Read whatever the process has written so far; on end of file, close the pipe."""
        fd = self._output_fd
        if fd is None:
            return
        name = self.config.name
        eof = False
        while True:
            try:
                chunk = os.read(fd, 65_536)
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
                self._log(name, raw.decode("utf-8", "replace"))
            if len(buffer) > 65_536:
                self._log(name, buffer.decode("utf-8", "replace"))
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
            self._log(self.config.name, self._output_buffer.decode("utf-8", "replace"))
            self._output_buffer = b""

    def _log(self, name: str, line: str) -> None:
        invocation = self.current or self.pending
        if invocation is not None and len(invocation.logs) < MAX_LOG_LINES:
            invocation.logs.append(line)
        self.pool.logs.function_line(name, line)

    async def _watch_exit(self) -> None:
        assert self.process is not None
        code = await self.process.wait()
        self._drain_output()  # what it printed before dying belongs to the failed invocation
        self._close_output()
        self.function.environments.discard(self)
        if self in self.function.idle:
            self.function.idle.remove(self)
        if self._init_timer is not None:
            self._init_timer.cancel()
        was_stopping = self.state == "stopping"
        self.state = "dead"
        reason = f"signal: {signal.Signals(-code).name.lower()}" if code < 0 else f"exit status {code}"
        for invocation in (self.current, self.pending):
            if invocation is None or invocation.future.done():
                continue
            if self.init_error is not None:
                self._finish(invocation, self.init_error, "Unhandled")
            else:
                message = f"RequestId: {invocation.request_id} Error: Runtime exited with error: {reason}"
                self._finish(invocation, _error_payload("Runtime.ExitError", message), "Unhandled")
        self.current = self.pending = None
        if self.next_waiter is not None and not self.next_waiter.done():
            self.next_waiter.cancel()
        if self._peak_rss is not None:
            self._peak_rss.close()
        await self.pool.runtime.close_endpoint(self.port)
        if not was_stopping and self.init_error is None and code != 0:
            self.pool.logs.function_line(self.config.name, f"environment {self.id} {reason}")

    # -- the Lambda lifecycle -------------------------------------------------------------
    def assign(self, invocation: Invocation) -> None:
        if self.next_waiter is not None and not self.next_waiter.done():
            self.next_waiter.set_result(invocation)
        else:
            self.pending = invocation

    async def next_invocation(self) -> Invocation:
        """Runtime API /next: block until there is work, then dispatch it."""
        if self.state == "init":
            self._init_done()
        elif self.state in ("stopping", "dead"):
            raise asyncio.CancelledError
        if self.pending is not None:
            invocation, self.pending = self.pending, None
        else:
            self.next_waiter = asyncio.get_running_loop().create_future()
            invocation = await self.next_waiter
            self.next_waiter = None
        self.state = "busy"
        self.current = invocation
        invocation.dispatched_ns = time.perf_counter_ns()
        invocation.timer = asyncio.get_running_loop().call_later(
            self.config.timeout_s, self._invocation_timed_out, invocation
        )
        return invocation

    def _init_done(self) -> None:
        self.init_duration_ms = (time.perf_counter_ns() - self.spawned_ns) / 1e6
        if self._init_timer is not None:
            self._init_timer.cancel()
        self.state = "ready"
        if self.pending is not None:
            self.pending.init_duration_ms = self.init_duration_ms

    def _init_timed_out(self) -> None:
        if self.state != "init":
            return
        invocation = self.pending
        if invocation is not None and not invocation.future.done():
            message = f"INIT phase timed out after {self.pool.config.init_timeout_s:.2f} seconds"
            self._finish(invocation, _error_payload("Sandbox.Timedout", message), "Unhandled")
        self.pending = None
        self.stop()

    def _invocation_timed_out(self, invocation: Invocation) -> None:
        if invocation.future.done():
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        message = f"{stamp} {invocation.request_id} Task timed out after {self.config.timeout_s:.2f} seconds"
        self._finish(invocation, _error_payload("Sandbox.Timedout", message), "Unhandled")
        self.current = None
        self.stop()

    def response(
        self, request_id: str, payload: bytes, function_error: str | None, size: int | None = None
    ) -> bool:
        """Runtime API /response or /error; False when the request id is not the current one.

        Settles the invocation and returns the environment to the idle stack at once, then the
        Runtime API writes its 202 in the same step: the runtime's next ``/next`` overlaps with
        the caller's reply, written when the caller's task runs next. (Replying to the caller
        before the 202 was measured too: the next invocation then waits for the ``/next``.)
        """
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            return False
        finished_ns = time.perf_counter_ns()
        self._drain_output()
        size = len(payload) if size is None else size
        oversize = function_error is None and size > MAX_RESPONSE_BYTES
        if oversize:
            message = (
                f"Response payload size ({size} bytes) exceeded maximum allowed "
                f"payload size ({MAX_RESPONSE_BYTES} bytes)."
            )
            payload = _error_payload("Function.ResponseSizeTooLarge", message)
            function_error = "Unhandled"
        self.current = None
        self.state = "finishing"
        if not invocation.future.done():
            self._finish(invocation, payload, function_error, finished_ns, measure_now=False)
        if oversize:  # the runtime client fails on our 413 and exits: do not hand it more work
            self.stop()
        else:
            self.pool.release(self)
        return True

    def init_failed(self, payload: bytes) -> None:
        """Runtime API /init/error: the runtime reports it then exits; the watcher fails the work."""
        self.init_error = payload

    def _finish(
        self,
        invocation: Invocation,
        payload: bytes,
        function_error: str | None,
        finished_ns: int | None = None,
        measure_now: bool = True,
    ) -> None:
        """Settle the invocation. Its REPORT figures are read after the reply when the runtime
        answered (``measure_now=False``); on a timeout or a crash, now, before the process is
        killed or reaped (a zombie's ``/proc`` has no peak RSS)."""
        if invocation.timer is not None:
            invocation.timer.cancel()
        now = finished_ns or time.perf_counter_ns()
        duration_ms = (now - invocation.dispatched_ns) / 1e6 if invocation.dispatched_ns else 0.0
        init_duration_ms = invocation.init_duration_ms if invocation.cold else None
        memory_mb, peak_rss = self.config.memory_mb, self._peak_rss

        def measure() -> ReportLine:
            return ReportLine.measured(
                request_id=invocation.request_id,
                duration_ms=duration_ms,
                memory_size_mb=memory_mb,
                max_memory_used_mb=peak_rss.mb() if peak_rss is not None else 0,
                init_duration_ms=init_duration_ms,
            )

        outcome = Outcome(
            request_id=invocation.request_id,
            payload=payload,
            function_error=function_error,
            cold=invocation.cold,
            init_duration_ms=init_duration_ms,
            logs=tuple(invocation.logs),
            measure=measure,
        )
        if measure_now:
            _ = outcome.report
        if not invocation.future.done():
            invocation.future.set_result(outcome)
        # After the caller's task (scheduled first by set_result) has written its reply.
        asyncio.get_running_loop().call_soon(self._log_report, outcome)

    def _log_report(self, outcome: Outcome) -> None:
        if outcome.report is not None:
            self.pool.logs.report(self.config.name, outcome.report)


class Pool:
    """Every function's environments; ``invoke`` is Lambda's synchronous Invoke."""

    def __init__(self, config: EmulatorConfig, runtime, logs: LogSink) -> None:
        self.config = config
        self.runtime = runtime
        self.logs = logs
        self.functions = {
            function.name: FunctionState(function) for function in config.functions if function.available()
        }
        self.in_flight = 0
        self._reaper: asyncio.Task | None = None
        self._idle_changed: Callable[[], None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle())

    def function(self, name: str) -> FunctionState:
        try:
            return self.functions[name]
        except KeyError:
            raise UnknownFunction(name) from None

    async def invoke(self, name: str, payload: bytes, deadline_s: float | None = None) -> Outcome:
        """Lambda's synchronous Invoke. Throttled at the concurrency limit; DeadlineExceeded
        when ``deadline_s`` passes first (the invocation itself runs on to its own timeout)."""
        state = self.function(name)
        invocation = Invocation(payload, asyncio.get_running_loop())
        environment = state.idle.pop() if state.idle else None
        if environment is None:
            if len(state.environments) >= state.config.reserved_concurrency:
                raise Throttled(name)
            environment = Environment(self, state)
            state.environments.add(environment)
            invocation.cold = True
            environment.pending = invocation
            self.in_flight += 1
            try:
                await environment.start()
            except BaseException:
                environment.stop()
                self.in_flight -= 1
                raise
        else:
            self.in_flight += 1
            environment.state = "busy"
            environment.assign(invocation)
        # Every path settles the future (timers, exit watcher); the guard is for a live process
        # that never asks for its next invocation, and for the caller's own deadline. A timer,
        # not asyncio.wait_for: on Python 3.11 that wraps each await in an extra task.
        guard_s = self.config.init_timeout_s + environment.config.timeout_s + 5.0
        expires_first = deadline_s is not None and deadline_s < guard_s
        guard = asyncio.get_running_loop().call_later(
            min(guard_s, deadline_s) if deadline_s is not None else guard_s,
            self._guard_expired,
            environment,
            invocation,
            expires_first,
        )
        try:
            return await invocation.future
        finally:
            guard.cancel()
            self.in_flight -= 1

    def _guard_expired(self, environment: Environment, invocation: Invocation, caller_deadline: bool) -> None:
        if invocation.future.done():
            return
        if caller_deadline:
            invocation.future.set_exception(DeadlineExceeded(invocation.request_id))
            return
        environment.stop()
        message = f"RequestId: {invocation.request_id} Error: environment did not respond"
        invocation.future.set_result(
            Outcome(
                invocation.request_id,
                _error_payload("Sandbox.Timedout", message),
                "Unhandled",
                invocation.cold,
            )
        )

    def release(self, environment: Environment) -> None:
        """An environment finished an invocation: back to the idle stack, or retired."""
        state = environment.function
        if environment.generation != state.generation or environment.state != "finishing":
            environment.stop()
            return
        environment.state = "idle"
        environment.last_used = time.monotonic()
        state.idle.append(environment)

    def update_configuration(
        self,
        name: str,
        env: dict[str, str] | None = None,
        memory_mb: int | None = None,
        timeout_s: float | None = None,
    ) -> FunctionState:
        """UpdateFunctionConfiguration: new settings, and every environment recycled."""
        state = self.function(name)
        changes: dict = {}
        if env is not None:
            changes["env"] = dict(env)
        if memory_mb is not None:
            changes["memory_mb"] = memory_mb
        if timeout_s is not None:
            changes["timeout_s"] = timeout_s
        state.config = replace(state.config, **changes)
        state.generation += 1
        state.last_modified = time.time()
        for environment in list(state.idle):
            environment.stop()
        return state

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(1.0, self.config.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(interval)
            deadline = time.monotonic() - self.config.idle_timeout_s
            for state in self.functions.values():
                for environment in list(state.idle):
                    if environment.last_used < deadline:
                        environment.stop()

    async def drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        environments = [env for state in self.functions.values() for env in state.environments]
        for environment in environments:
            environment.stop()
        await asyncio.gather(*(env.wait_closed() for env in environments), return_exceptions=True)
