"""Execution environments and their scheduling, as Lambda runs them.

Each environment is a separate OS process, ``python -m awslambdaric <module.function>``,
started in the function's code directory (its task root) with the variables Lambda sets, and
talking to its own Runtime API endpoint (``runtime_api``). An invocation goes to an idle warm
environment (the most recently used); if there is none and the function's concurrency limit
allows, a new environment starts (a cold start: spawn + init + invoke); beyond the limit the
invocation is throttled. Init is limited to ``init_timeout_s`` (an init over it is retried
in a new environment under the function's timeout, as Lambda does) and each invocation to the
function's timeout; an environment that overruns, exits or is killed fails its invocation
and is discarded, and the next invocation starts a new one. No invocation ever waits for a
dead environment: a process-exit watcher and two timers settle every invocation.

This module schedules (the idle stack, throttling, configuration updates, reaping, drain and
close); one environment's wiring is ``handler.local.environment``, its lifecycle (states,
transitions, deadlines) ``handler.local.lifecycle``, its process ``handler.local.process``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from handler.local.config import EmulatorConfig, FunctionConfig
from handler.local.environment import (
    ACCOUNT_ID,
    MAX_LOG_LINES,
    MAX_RESPONSE_BYTES,
    Environment,
    Invocation,
    Outcome,
    error_payload,
)
from handler.local.lifecycle import INIT_CAP
from handler.local.logs import LogSink
from handler.local.resources import ResourceModel

__all__ = [
    "ACCOUNT_ID",
    "MAX_LOG_LINES",
    "MAX_REQUEST_BYTES",
    "MAX_RESPONSE_BYTES",
    "THROTTLED_HEADER",
    "THROTTLE_REASON",
    "DeadlineExceeded",
    "Environment",
    "FunctionState",
    "Invocation",
    "Outcome",
    "Pool",
    "Throttled",
    "UnknownFunction",
    "throttle_line",
]

MAX_REQUEST_BYTES = 6_291_456  # Lambda's synchronous invocation payload limit
MEMORY_CHECK_S = 0.1  # how often initialising and invoking environments' memory is checked


class Throttled(Exception):
    """The function is at its concurrency limit (Lambda's TooManyRequestsException); ``request_id``:
    the throttled invocation's (its log line's, the Invoke API reply's ``x-amzn-RequestId``)."""

    def __init__(self, function: str, request_id: str) -> None:
        super().__init__(function)
        self.request_id = request_id


# Invoke's 429 TooManyRequestsException at a function's reserved concurrency: its Reason (one of
# ThrottleReason's values, https://docs.aws.amazon.com/botocore/latest/reference/services/lambda/
# client/exceptions/TooManyRequestsException.html).
THROTTLE_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
# On the gateway's and the Invoke API's reply to a throttled invocation (the emulator's own: AWS
# shows throttles only in the Throttles metric), so that a client can tell it from other errors.
THROTTLED_HEADER = "X-Emulator-Throttled"


def throttle_line(request_id: str, config: FunctionConfig) -> str:
    """The emulator's log line for a throttled invocation. Lambda writes no log line for one: the
    function never ran, and only the Throttles metric counts it (https://repost.aws/knowledge-center/
    lambda-troubleshoot-throttling). This one is the emulator's own, so that a 500 from API Gateway
    (how it answers a Lambda throttle) explains itself in the log."""
    return (
        f"EMULATOR Throttled RequestId: {request_id}\tReason: {THROTTLE_REASON}\t"
        f"Reserved concurrency: {config.reserved_concurrency} (every environment busy or starting)"
    )


class UnknownFunction(KeyError):
    pass


class DeadlineExceeded(TimeoutError):
    """The caller's deadline (API Gateway's integration timeout) passed first."""


class FunctionState:
    """A function's configuration and its environments."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.environments: set[Environment] = set()
        self.idle: list[Environment] = []  # a stack: the most recently used last
        self.generation = 0
        self.last_modified = time.time()


class Pool:
    """Every function's environments; ``invoke`` is Lambda's synchronous Invoke.

    ``clock`` (ns, ``time.perf_counter_ns``) is the one clock of every environment's
    lifecycle (Duration, Init Duration, the init, invocation and idle deadlines) and of drain.
    ``resources`` is the resource model (``handler.local.resources``); without one, the host's
    (nothing enforced), as unit tests with no processes want.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        runtime,
        logs: LogSink,
        clock: Callable[[], int] = time.perf_counter_ns,
        resources: ResourceModel | None = None,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.logs = logs
        self.clock = clock
        self.resources = resources or ResourceModel.host()
        self.functions = {
            function.name: FunctionState(function) for function in config.functions if function.available()
        }
        self.in_flight = 0
        self._reaper: asyncio.Task | None = None
        self._memory_watch: asyncio.Task | None = None

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle())
        if self.resources.enforced:
            self._memory_watch = asyncio.create_task(self._watch_memory())

    def function(self, name: str) -> FunctionState:
        try:
            return self.functions[name]
        except KeyError:
            raise UnknownFunction(name) from None

    async def invoke(
        self,
        name: str,
        payload: bytes,
        deadline_s: float | None = None,
        client_context: str | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Lambda's synchronous Invoke. Throttled at the concurrency limit; DeadlineExceeded
        when ``deadline_s`` passes first (the invocation itself runs on to its own timeout).
        ``client_context``: Invoke's ClientContext, decoded, for the runtime's context object.
        ``request_id``: the invocation's (default a new one; an async event keeps its own)."""
        state = self.function(name)
        invocation = Invocation(payload, asyncio.get_running_loop(), client_context, request_id)
        environment = state.idle.pop() if state.idle else None
        if environment is None:
            if len(state.environments) >= state.config.reserved_concurrency:
                self.logs.emulator_line(name, throttle_line(invocation.request_id, state.config))
                raise Throttled(name, invocation.request_id)
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
            environment.claim(invocation)
            self.in_flight += 1
        # Every path settles the future (timers, exit watcher); the guard is for a live process
        # that never asks for its next invocation, and for the caller's own deadline. A timer,
        # not asyncio.wait_for: on Python 3.11 that wraps each await in an extra task.
        # A cold one allows for an init deadline moved by a saturated host (lifecycle.INIT_CAP).
        init_s = self.config.init_timeout_s * (INIT_CAP if invocation.cold else 1)
        guard_s = init_s + environment.config.timeout_s + 5.0
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

    async def start_for(self, environment: Environment, invocation: Invocation) -> None:
        """Start ``environment`` for ``invocation`` (a retried init); a failure answers it, as
        :meth:`invoke` answers a start that failed: with the error."""
        try:
            await environment.start()
        except Exception as error:
            environment.pending = None
            environment.stop()
            if not invocation.future.done():
                invocation.future.set_exception(error)

    def _guard_expired(self, environment: Environment, invocation: Invocation, caller_deadline: bool) -> None:
        if invocation.future.done():
            return
        if caller_deadline:
            invocation.future.set_exception(DeadlineExceeded(invocation.request_id))
            return
        while environment.replaced_by is not None:  # its init was retried in another one
            environment = environment.replaced_by
        environment.stop()
        message = f"RequestId: {invocation.request_id} Error: environment did not respond"
        invocation.future.set_result(
            Outcome(
                invocation.request_id,
                error_payload("Sandbox.Timedout", message),
                "Unhandled",
                invocation.cold,
            )
        )

    def release(self, environment: Environment) -> None:
        """An environment finished an invocation: back to the idle stack, or retired."""
        state = environment.function
        if environment.generation != state.generation:
            environment.stop()
            return
        environment.lifecycle.release()
        state.idle.append(environment)

    def forget(self, environment: Environment) -> None:
        """An environment is stopping or has exited: it no longer counts or takes work."""
        state = environment.function
        state.environments.discard(environment)
        if environment in state.idle:
            state.idle.remove(environment)

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

    def reap_idle(self) -> None:
        """Stop every environment idle for longer than ``idle_timeout_s``."""
        for state in self.functions.values():
            for environment in list(state.idle):
                if environment.lifecycle.idle_expired():
                    environment.stop()

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(1.0, self.config.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(interval)
            self.reap_idle()

    async def _watch_memory(self) -> None:
        """Where limits are enforced: an environment whose resident set goes over its memory is
        killed, as on Lambda (``handler.local.resources``, "Memory"), not left to thrash."""
        while True:
            await asyncio.sleep(MEMORY_CHECK_S)
            for state in self.functions.values():
                for environment in list(state.environments):
                    environment.check_memory()

    async def drain(self, timeout_s: float) -> None:
        deadline_ns = self.clock() + round(timeout_s * 1e9)
        while self.in_flight and self.clock() < deadline_ns:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        for task in (self._reaper, self._memory_watch):
            if task is not None:
                task.cancel()
        environments = [env for state in self.functions.values() for env in state.environments]
        for environment in environments:
            environment.stop()
        await asyncio.gather(*(env.wait_closed() for env in environments), return_exceptions=True)
