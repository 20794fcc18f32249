"""One execution environment: its process, wired to its lifecycle and its Runtime API endpoint.

The wiring between three pure or self-contained parts: ``handler.local.lifecycle`` (states,
transitions, deadlines), ``handler.local.process`` (the OS process and its output) and the
Runtime API (``handler.local.runtime_api``), which calls ``next_invocation``, ``response``
and ``init_failed``. Every invocation is settled exactly once: by the runtime's result, by
the init or invocation timer, or by the process-exit watcher; the pool's guard covers a
live process that never asks for work. Its REPORT line is logged after the caller's reply.

As Lambda (docs/conformance.md): a timeout (:meth:`_time_out`), Max Memory Used once the process
is gone (``KeptPeak``), an init over the limit retried at the invocation (:meth:`_retry_init`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from bench.results.reportline import ReportLine
from handler.local.invocation import (
    MAX_RESPONSE_BYTES,
    Invocation,
    KeptPeak,
    Outcome,
    error_payload,
    init_report_line,
    oversize_payload,
    timeout_payload,
)
from handler.local.lifecycle import EnvState, Fired, IllegalTransition, InitPhase, Lifecycle, Timeouts
from handler.local.process import RuntimeProcess, exit_reason, lambda_variables, spawn

if TYPE_CHECKING:
    from handler.local.pool import FunctionState, Pool

__all__ = ["ACCOUNT_ID", "MAX_LOG_LINES", "MAX_RESPONSE_BYTES", "Environment", "Invocation", "error_payload"]

MAX_LOG_LINES = 200
ACCOUNT_ID = "123456789012"
OUT_OF_MEMORY = "Runtime.OutOfMemory"


class Environment:
    """One execution environment: a process running AWS's runtime client."""

    def __init__(self, pool: Pool, function: FunctionState, init_phase: InitPhase = InitPhase.INIT) -> None:
        self.pool, self.function, self.config = pool, function, function.config
        self.generation = function.generation
        self.id = uuid.uuid4().hex[:12]
        self.function_arn = f"arn:aws:lambda:{pool.config.region}:{ACCOUNT_ID}:function:{self.config.name}"
        timeouts = Timeouts.from_seconds(
            pool.config.init_timeout_s, self.config.timeout_s, pool.config.idle_timeout_s
        )
        self.lifecycle = Lifecycle(timeouts, pool.clock, init_phase)
        self.process: RuntimeProcess | None = None
        self.port = 0
        self.init_error: bytes | None = None
        self.pending: Invocation | None = None
        self.current: Invocation | None = None
        self.next_waiter: asyncio.Future[Invocation] | None = None
        self.exit_reason: str | None = None
        self._init_timer: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Future] = []
        self.replaced_by: Environment | None = None  # the environment its init is retried in
        self.resources = pool.resources.environment(self.id, self.config)

    @property
    def state(self) -> EnvState:
        return self.lifecycle.state

    # -- start and stop -------------------------------------------------------------------
    def environment_variables(self) -> dict[str, str]:
        region, port = self.pool.config.region, self.port
        variables = lambda_variables(self.config, self.id, port, region)
        return {**variables, **self.resources.variables(), **self.config.env}

    async def start(self) -> None:
        """Its endpoint, group and /tmp, then its process; stopped or failing before it, none stays open."""
        starting = asyncio.ensure_future(self._start())
        self._tasks.append(starting)  # a shutdown waits for the start itself, from its first step
        await starting

    async def _start(self) -> None:
        self.port = await self.pool.runtime.open_endpoint(self)
        resources = self.resources
        try:
            if self.lifecycle.state.terminal:  # stopped while its endpoint opened (a shutdown)
                raise IllegalTransition(f"environment {self.id} was stopped before its spawn")
            resources.create()  # its group and /tmp, before the spawn
            init_deadline_ns = self.lifecycle.spawning()
            preexec = resources.preexec if resources.needs_preexec else None
            args = (self.config.handler, self.config.code_dir, self.environment_variables(), self._log)
            spawning = asyncio.ensure_future(spawn(*args, preexec=preexec, meter=self._meter))
            self._tasks.append(spawning)
            self.process = await spawning
        except BaseException:
            with contextlib.suppress(RuntimeError):  # the Runtime API is closed: nothing listens
                await self.pool.runtime.close_endpoint(self.port)  # never suspends (aiohttp)
            resources.close()  # none made, or its child, if forked, was killed (handler.local.spawner)
            raise
        resources.started(self.process.pid)
        self._tasks.append(asyncio.create_task(self._watch_exit()))
        if self.lifecycle.state.terminal:  # stopped while it was being spawned (a shutdown)
            self.process.kill()
        else:
            self._init_timer = self._timer(init_deadline_ns, self._init_timer_fired)

    def _meter(self, pid: int) -> KeptPeak:
        return KeptPeak(self.resources.meter(pid))

    def _timer(self, deadline_ns: int, callback: Callable[..., None], *args) -> asyncio.TimerHandle:
        delay_s = self.lifecycle.seconds_until(deadline_ns)
        return asyncio.get_running_loop().call_later(delay_s, callback, *args)

    def stop(self) -> None:
        """Discard the environment: kill its process; the exit watcher cleans up."""
        if not self.lifecycle.stop():
            return
        self.pool.forget(self)
        if self.next_waiter is not None and not self.next_waiter.done():
            self.next_waiter.cancel()
        if self._init_timer is not None:
            self._init_timer.cancel()
        if self.process is not None:
            self.process.kill()
        self.resources.thaw()  # a frozen process dies of its SIGKILL as it thaws, running no code

    async def wait_closed(self) -> None:
        while pending := [task for task in self._tasks if not task.done()]:  # a spawn adds one
            await asyncio.gather(*pending, return_exceptions=True)

    def _log(self, line: str) -> None:
        invocation = self.current or self.pending
        if invocation is not None and len(invocation.logs) < MAX_LOG_LINES:
            invocation.logs.append(line)
        self.pool.logs.function_line(self.config.name, line)

    async def _watch_exit(self) -> None:
        assert self.process is not None
        code = await self.process.wait()
        self.pool.forget(self)
        if self._init_timer is not None:
            self._init_timer.cancel()
        was_stopping = self.lifecycle.exited()
        self.exit_reason = exit_reason(code)
        for invocation in (self.current, self.pending):
            if invocation is not None and not invocation.future.done():
                self._fail_exited(invocation)
        self.current = self.pending = None
        if self.next_waiter is not None and not self.next_waiter.done():
            self.next_waiter.cancel()
        out_of_memory = not was_stopping and self.resources.oom_killed()
        self.process.close()
        self.resources.close()  # what is left in its group, the group, its /tmp
        await self.pool.runtime.close_endpoint(self.port)
        if not was_stopping and self.init_error is None and code != 0:
            why = f" (out of memory: over {self.config.memory_mb} MB)" if out_of_memory else ""
            self.pool.logs.function_line(self.config.name, f"environment {self.id} {self.exit_reason}{why}")

    def _fail_exited(self, invocation: Invocation) -> None:
        """The process died with the invocation in hand: AWS's error for how it died. Killed by
        the kernel over its memory limit: Runtime.OutOfMemory, Max Memory Used = Memory Size."""
        if self.init_error is not None:
            return self._finish(invocation, self.init_error, "Unhandled")
        message = f"RequestId: {invocation.request_id} Error: Runtime exited with error: {self.exit_reason}"
        error_type = OUT_OF_MEMORY if self.resources.oom_killed() else "Runtime.ExitError"
        self._finish(
            invocation, error_payload(error_type, message), "Unhandled", status="error", error_type=error_type
        )

    # -- the Lambda lifecycle -------------------------------------------------------------
    def claim(self, invocation: Invocation) -> None:
        """A warm invocation takes this environment off the idle stack and thaws it. A frozen
        runtime is waiting in its ``/next``: the thaw is queued after the task that writes the
        reply (scheduled by ``set_result``), so the runtime thaws with its event already in its
        socket and wakes once, not twice (measured: docs/benchmarks.md, "Resource model")."""
        self.lifecycle.claim()
        if self.next_waiter is not None and not self.next_waiter.done():
            self.next_waiter.set_result(invocation)
            asyncio.get_running_loop().call_soon(self.resources.thaw)
        else:
            self.resources.thaw()  # not frozen: it has not asked for its next event yet
            self.pending = invocation

    async def next_invocation(self) -> Invocation:
        """Runtime API /next: block until there is work, then dispatch it."""
        if self.lifecycle.state is EnvState.INIT:
            self._init_done()
            if self.resources.over_memory():  # the exit watcher fails the pending invocation
                self._kill_over_memory()
                raise asyncio.CancelledError
        elif self.lifecycle.state.terminal:
            raise asyncio.CancelledError
        if self.pending is not None:
            invocation, self.pending = self.pending, None
        else:
            self.next_waiter = asyncio.get_running_loop().create_future()
            self.resources.freeze()  # until claim() hands it an event
            invocation = await self.next_waiter
            self.next_waiter = None
        if self.lifecycle.state.terminal:  # stopped after the claim, before this task ran
            if self.lifecycle.state is EnvState.DEAD:
                self._fail_exited(invocation)
            else:
                self.current = invocation  # the exit watcher fails it
            raise asyncio.CancelledError
        self.current = invocation
        dispatch = self.lifecycle.dispatch()
        invocation.dispatched_ns = self.lifecycle.dispatched_ns
        invocation.cpu_start = self.resources.invoke_started()
        invocation.timer = self._timer(
            self.lifecycle.invocation_deadline_ns, self._invocation_timer_fired, invocation, dispatch
        )
        return invocation

    def _init_done(self) -> None:
        init_ns = self.lifecycle.init_done()
        self._read_memory()  # the init's peak, kept should the process die in its invocation
        self.resources.init_finished(init_ns)  # the init's CPU; then the invocation's share
        if self._init_timer is not None:
            self._init_timer.cancel()
        if self.pending is not None:
            self.pending.init_duration_ms = init_ns / 1e6

    def _init_timer_fired(self) -> None:
        """RETRY: the first init ran out its limit (unless the host was to blame: deferred);
        EXPIRED: a retried init ran out the function's timeout (lifecycle.InitPhase)."""
        lifecycle = self.lifecycle
        fired = lifecycle.init_timer()
        if fired is Fired.RETRY and (line := self.resources.extend_init(lifecycle)) is not None:
            self.pool.logs.emulator_line(self.config.name, line)  # the host was the reason
            fired = Fired.EARLY
        if fired is Fired.EARLY:
            self._init_timer = self._timer(lifecycle.init_deadline_ns, self._init_timer_fired)
        if fired not in (Fired.RETRY, Fired.EXPIRED):
            return
        elapsed_ms = (lifecycle.clock() - lifecycle.spawned_ns) / 1e6
        self._log(init_report_line(elapsed_ms, lifecycle.init_phase, "timeout"))
        invocation = self.pending
        waiting = invocation is not None and not invocation.future.done()
        if fired is Fired.EXPIRED and waiting:
            self._time_out(invocation)
        self.pending = None
        self.stop()  # before the replacement: it takes this environment's place in the count
        if fired is Fired.RETRY and waiting:
            self._retry_init(invocation)

    def _retry_init(self, invocation: Invocation) -> None:
        """Lambda "retries the Init phase at the time of the first function invocation with the
        configured function timeout" (lambda-runtime-environment.html): in a new environment."""
        replacement = Environment(self.pool, self.function, InitPhase.INVOKE)
        self.replaced_by = replacement
        self.function.environments.add(replacement)
        replacement.pending, invocation.init_duration_ms = invocation, None
        self._tasks.append(
            asyncio.get_running_loop().create_task(self.pool.start_for(replacement, invocation))
        )

    def _invocation_timer_fired(self, invocation: Invocation, dispatch: int) -> None:
        fired = self.lifecycle.invocation_timer(dispatch)
        if fired is Fired.EARLY:
            deadline_ns = self.lifecycle.invocation_deadline_ns
            invocation.timer = self._timer(deadline_ns, self._invocation_timer_fired, invocation, dispatch)
        if fired is not Fired.EXPIRED:
            return
        if not invocation.future.done():  # done: the caller's deadline passed first
            self._time_out(invocation)
        self.current = None
        self.stop()

    def _time_out(self, invocation: Invocation) -> None:
        """Lambda's timeout: ``Sandbox.Timedout`` with :func:`invocation.timeout_message`, no log
        line of its own, a REPORT whose Duration is the timeout (``Duration: 3000.00 ms`` …
        ``Status: timeout`` in current captures), measured before the process is killed."""
        payload, duration_ms = timeout_payload(invocation.request_id, self.config.timeout_s)
        self._finish(invocation, payload, "Unhandled", status="timeout", duration_ms=duration_ms)

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
        finished_ns = self.lifecycle.clock()
        if invocation.cpu_start is not None:
            invocation.phase = self.resources.invoke_finished(
                invocation.cpu_start, finished_ns - invocation.dispatched_ns
            )
        if self.process is not None:
            self.process.drain()
        size = len(payload) if size is None else size
        too_large = oversize_payload(size) if function_error is None else None
        if oversize := too_large is not None:
            payload, function_error = too_large, "Unhandled"
        self.current = None
        if invocation.timer is not None:
            invocation.timer.cancel()
        stopped = self.lifecycle.state.terminal  # killed while it ran; its answer still counts
        if not stopped:
            self.lifecycle.result()
            if self.resources.over_memory():  # Lambda's kernel would have killed it: no answer
                message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
                payload, function_error = error_payload(OUT_OF_MEMORY, message), "Unhandled"
                self._finish(invocation, payload, function_error, finished_ns, True, "error", OUT_OF_MEMORY)
                self._kill_over_memory()
                return True
        if not invocation.future.done():
            self._finish(invocation, payload, function_error, finished_ns, measure_now=stopped)
        if stopped:
            return True
        if oversize:  # the runtime client fails on our 413 and exits: do not hand it more work
            self._read_memory()  # now, while it lives: its REPORT is read after the kill
            self.stop()
        else:
            self.pool.release(self)
        return True

    def check_memory(self) -> None:
        """The pool's watchdog, every 0.1 s while initialising or invoking: kill the environment
        once its resident set is over its memory (resources.EnvResources.over_memory)."""
        if self.state not in (EnvState.INIT, EnvState.BUSY):
            return
        self._read_memory()
        if self.resources.over_memory():
            self._kill_over_memory()

    def _read_memory(self) -> None:  # KeptPeak keeps it for a REPORT read once it is gone
        if self.process is not None:
            self.process.memory.mb()

    def _kill_over_memory(self) -> None:
        self.resources.memory_exceeded = True
        self.exit_reason = "signal: killed"
        self.pool.logs.function_line(
            self.config.name,
            f"environment {self.id} killed: its resident set went over {self.config.memory_mb} MB "
            "(shared library pages included, as on Lambda; see handler/local/resources.py)",
        )
        self.stop()

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
        status: str | None = None,
        error_type: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Settle the invocation. Its REPORT figures are read after the reply when the runtime
        answered (``measure_now=False``); on a timeout or a crash, now, before the process is
        killed or reaped. ``status``/``error_type``: the REPORT line's, as Lambda writes them
        for a platform failure (timeout, runtime exit, out of memory). A cold invocation that
        never ran lasted from the end of its init (from the spawn if the init failed).
        ``duration_ms``: instead of the measured Duration (a timeout's). After a suppressed init,
        no Init Duration and a Duration from the retried init's start (docs/conformance.md)."""
        if invocation.timer is not None:
            invocation.timer.cancel()
        now = finished_ns or self.lifecycle.clock()
        lifecycle = self.lifecycle
        init_end_ns = lifecycle.spawned_ns + (lifecycle.init_duration_ns or 0)
        suppressed = invocation.cold and lifecycle.suppressed_init
        ran_ns = invocation.dispatched_ns or (init_end_ns if invocation.cold else now)
        started_ns = lifecycle.spawned_ns if suppressed else ran_ns
        duration_ms = (now - started_ns) / 1e6 if duration_ms is None else duration_ms
        init_duration_ms = invocation.init_duration_ms if invocation.cold and not suppressed else None
        memory_mb = self.config.memory_mb
        meter = self.process.memory if self.process is not None else None
        out_of_memory = error_type == OUT_OF_MEMORY
        if invocation.phase is None and invocation.cpu_start is not None:  # timed out or died
            invocation.phase = self.resources.invoke_finished(invocation.cpu_start, now - started_ns)

        def measure() -> ReportLine:
            return ReportLine.measured(
                request_id=invocation.request_id,
                duration_ms=duration_ms,
                memory_size_mb=memory_mb,
                max_memory_used_mb=memory_mb if out_of_memory else meter.mb() if meter is not None else 0,
                init_duration_ms=init_duration_ms,
                status=status,
                error_type=error_type,
            )

        outcome = Outcome(
            request_id=invocation.request_id,
            payload=payload,
            function_error=function_error,
            cold=invocation.cold,
            init_duration_ms=init_duration_ms,
            logs=tuple(invocation.logs),
            measure=measure,
            emulator=self.resources.line(invocation.request_id, invocation.cold, invocation.phase),
            cold_init_ms=invocation.init_duration_ms if invocation.cold else None,
        )
        if measure_now:
            _ = outcome.report
        if not invocation.future.done():
            invocation.future.set_result(outcome)
        # After the caller's task (scheduled first by set_result) has written its reply.
        asyncio.get_running_loop().call_soon(self._log_report, outcome)

    def _log_report(self, outcome: Outcome) -> None:
        if outcome.report is not None:
            self.pool.logs.report(self.config.name, outcome.report, outcome.emulator)
