"""An execution environment's lifecycle, as Lambda runs it: states, transitions, deadlines.

Pure: no asyncio, no processes, no I/O. ``handler.local.environment`` is the wiring: it
reports what happened (the runtime's first ``/next``, a dispatch, a result, the process's
exit) as events, sets its asyncio timers to the deadlines computed here, and when a timer
fires asks ``init_timer``/``invocation_timer`` what to do. ``handler.local.pool`` reaps idle
environments with ``idle_expired``.

Time is one injected clock, ``clock() -> int`` in nanoseconds, by default
``time.perf_counter_ns`` (STYLE rule 6; on Linux it is CLOCK_MONOTONIC, the clock asyncio's
timers run on). Every instant here (spawn, dispatch, idle since) and every deadline is an
integer on that clock, so a test steps it exactly. Not timed here: wall-clock timestamps
(log stream names, ``Lambda-Runtime-Deadline-Ms``), which are ``time.time()``.

The lifecycle (every event and the state it moves from and to is in ``TRANSITIONS``)::

    INIT --init_done--> READY --dispatch--> BUSY --result--> FINISHING --release--> IDLE
                                             ^  \\__dispatch (a claimed warm environment)
                                             |                                        |
                                             +----------------- claim ----------------+
    INIT, READY, BUSY, FINISHING, IDLE --stop--> STOPPING --exit--> DEAD
    INIT, READY, BUSY, FINISHING, IDLE --exit--> DEAD  (the process died on its own)

STOPPING and DEAD are terminal: nothing leaves them but STOPPING's exit. An event not in the
table for the current state raises ``IllegalTransition``.

**An init over the limit is retried, not failed** (:class:`InitPhase`). "The Init phase is limited
to 10 seconds. If all three tasks do not complete within 10 seconds, Lambda retries the Init phase
at the time of the first function invocation with the configured function timeout" (AWS Lambda
DG, "Understanding the Lambda execution environment lifecycle", lambda-runtime-environment.html,
"Init phase"). So an environment's init runs in one of two phases. ``InitPhase.INIT``: the first
init, limited to ``Timeouts.init_ns``; when its timer expires, ``init_timer`` answers
``Fired.RETRY``: the environment is stopped and replaced by one whose lifecycle runs in
``InitPhase.INVOKE`` (a "suppressed init", logged ``INIT_REPORT ... Phase: invoke``). There the
init and the invocation that follows it share the function's timeout, counted from that
environment's spawn: its init deadline is ``spawned + invocation_ns`` (``Fired.EXPIRED`` then
fails the invocation with the function's timeout error) and so is its first invocation's
deadline. A replaced environment's init is never retried again, and the host-saturation
deferral below applies to the 10 s limit only (the function's timeout is never deferred).

**The init limit is the function's, not the host's** (:func:`init_allowance_ns`). When the init
timer expires, the environment asks whether the function or an oversubscribed host used the
time. The host is to blame when it was saturated over the init (host CPU pressure, PSI "some",
at least ``SATURATED`` of the wall time) and the init's own needs fit in the limit by both
measures: its CPU time at its allowed share (the time it would have taken had it had that
share), and its wall time less the host's pressure time (which bounds the time it spent
waiting for a CPU; without this bound an init that sleeps would be excused; the init's own
run-queue wait, where the kernel keeps schedstats, bounds it more tightly still). Then the deadline
moves on by what is left of the limit, never past ``INIT_CAP`` times the limit, so a stuck
process is still killed. Without CPU or pressure figures the limit is wall time, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum


class EnvState(Enum):
    INIT = "init"  # spawned; the runtime has not asked for work yet
    READY = "ready"  # init done (first /next); the cold invocation not yet dispatched
    BUSY = "busy"  # an invocation is assigned (claimed) or running (dispatched)
    FINISHING = "finishing"  # the runtime posted its result; to idle or retired next
    IDLE = "idle"  # warm, on the function's idle stack
    STOPPING = "stopping"  # killed; waiting for the process to exit
    DEAD = "dead"  # the process exited

    @property
    def terminal(self) -> bool:
        return self in (EnvState.STOPPING, EnvState.DEAD)


class Event(Enum):
    INIT_DONE = "init_done"  # the runtime's first GET /next
    DISPATCH = "dispatch"  # /next hands the runtime its invocation
    CLAIM = "claim"  # a warm invocation takes the environment from the idle stack
    RESULT = "result"  # the runtime posted /response or /error
    RELEASE = "release"  # back on the idle stack
    STOP = "stop"  # discarded: its process is killed
    EXIT = "exit"  # its process exited


_LIVE = (EnvState.INIT, EnvState.READY, EnvState.BUSY, EnvState.FINISHING, EnvState.IDLE)

TRANSITIONS: Mapping[Event, Mapping[EnvState, EnvState]] = {
    Event.INIT_DONE: {EnvState.INIT: EnvState.READY},
    Event.DISPATCH: {EnvState.READY: EnvState.BUSY, EnvState.BUSY: EnvState.BUSY},
    Event.CLAIM: {EnvState.IDLE: EnvState.BUSY},
    Event.RESULT: {EnvState.BUSY: EnvState.FINISHING},
    Event.RELEASE: {EnvState.FINISHING: EnvState.IDLE},
    Event.STOP: dict.fromkeys(_LIVE, EnvState.STOPPING),
    Event.EXIT: dict.fromkeys((*_LIVE, EnvState.STOPPING), EnvState.DEAD),
}


class IllegalTransition(RuntimeError):
    """An event that the current state does not allow (a bug in the wiring, not the function)."""


class InitPhase(Enum):
    """Which Lambda phase an environment's init runs in (the ``Phase:`` of its INIT_REPORT)."""

    INIT = "init"  # the first init: limited to the init limit (10 s on Lambda)
    INVOKE = "invoke"  # retried at the invocation: init + invocation limited to the function timeout


class Fired(Enum):
    """What to do when a deadline's timer fires."""

    MOOT = "moot"  # the environment moved on (or this is an earlier dispatch's timer): nothing
    EARLY = "early"  # the deadline has not passed on the lifecycle's clock: set the timer again
    RETRY = "retry"  # the first init ran out its limit: replace the environment, init again
    EXPIRED = "expired"  # fail the work and stop the environment


SATURATED = 0.5  # host CPU pressure over a phase's wall time at which the host counts as saturated
INIT_CAP = 6  # the init deadline never moves past 6 x the limit
MIN_ALLOWANCE_NS = 10_000_000  # a re-arm for less than 10 ms is not worth a timer: expire


def judged_vcpus(share_vcpus: float) -> float:
    """The share a phase is judged at: never over 1 vCPU, since the runtime's main thread, which
    runs the init and the handler, uses one CPU at a time (a share of 2 vCPUs does not make it
    faster; multi-threaded work at a share over 1 vCPU is judged as if it had 1)."""
    return min(share_vcpus, 1.0)


def init_allowance_ns(
    elapsed_ns: int,
    cpu_ns: int | None,
    share_vcpus: float,
    pressure_ns: int | None,
    limit_ns: int,
    cap_ns: int,
    waited_ns: int | None = None,
) -> int:
    """How much longer an init that ran ``elapsed_ns`` (past its limit) may run; 0: expire now.

    ``cpu_ns`` is the environment's CPU time so far, ``share_vcpus`` its allowed share during
    init, ``pressure_ns`` the host's CPU pressure time (PSI "some") since the spawn; None for an
    unknown figure; ``waited_ns`` the init's own time waiting for a CPU (its threads' run-queue
    wait), which bounds the excused time more tightly than the host-wide pressure: on a host
    saturated the whole time, pressure alone would excuse an init that only sleeps. The rule
    is the module docstring's.
    """
    if cpu_ns is None or pressure_ns is None or elapsed_ns <= 0 or elapsed_ns >= cap_ns:
        return 0
    if pressure_ns < SATURATED * elapsed_ns:
        return 0  # the host was not saturated: the function used its time
    waiting_ns = pressure_ns if waited_ns is None else min(pressure_ns, waited_ns)
    needed_ns = max(cpu_ns / judged_vcpus(share_vcpus), elapsed_ns - waiting_ns)
    allowance = min(limit_ns - needed_ns, cap_ns - elapsed_ns)
    return int(allowance) if allowance >= MIN_ALLOWANCE_NS else 0


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


@dataclass(frozen=True)
class Timeouts:
    """The three limits, in ns: init (spawn to first ``/next``), one invocation (dispatch to
    result), idle (on the idle stack before it is reaped)."""

    init_ns: int
    invocation_ns: int
    idle_ns: int

    @classmethod
    def from_seconds(cls, init_s: float, invocation_s: float, idle_s: float) -> Timeouts:
        return cls(_ns(init_s), _ns(invocation_s), _ns(idle_s))


class Lifecycle:
    """One environment's state and the instants that its deadlines are counted from."""

    def __init__(
        self,
        timeouts: Timeouts,
        clock: Callable[[], int] = time.perf_counter_ns,
        init_phase: InitPhase = InitPhase.INIT,
    ) -> None:
        self.timeouts = timeouts
        self.clock = clock
        self.init_phase = init_phase
        self.state = EnvState.INIT
        self.spawned_ns = clock()
        self.init_duration_ns: int | None = None
        self.dispatched_ns = 0
        self.dispatches = 0  # numbers each dispatch, so that a stale timer is told MOOT
        self.running: int | None = None  # the number of the dispatch awaiting its result
        self.idle_since_ns = self.spawned_ns
        self.init_extension_ns = 0  # granted by extend_init: the host, not the function, was slow

    def fire(self, event: Event) -> EnvState:
        """Move on ``event``; IllegalTransition when the current state does not allow it."""
        target = TRANSITIONS[event].get(self.state)
        if target is None:
            raise IllegalTransition(f"{event.value} in state {self.state.value}")
        self.state = target
        return target

    # -- events with their instants -------------------------------------------------------
    def spawning(self) -> int:
        """The process is being spawned now (init is timed from here); the init deadline."""
        if self.state is not EnvState.INIT:
            raise IllegalTransition(f"spawning in state {self.state.value}")
        self.spawned_ns = self.clock()
        return self.init_deadline_ns

    def init_done(self) -> int:
        """The runtime's first ``/next``: INIT -> READY; Init Duration in ns."""
        self.fire(Event.INIT_DONE)
        self.init_duration_ns = self.clock() - self.spawned_ns
        return self.init_duration_ns

    def dispatch(self) -> int:
        """The runtime takes an invocation: READY or BUSY -> BUSY; its number (for its timer)."""
        self.fire(Event.DISPATCH)
        self.dispatched_ns = self.clock()
        self.dispatches += 1
        self.running = self.dispatches
        return self.dispatches

    def claim(self) -> None:
        self.fire(Event.CLAIM)

    def result(self) -> None:
        self.fire(Event.RESULT)
        self.running = None

    def release(self) -> None:
        self.fire(Event.RELEASE)
        self.idle_since_ns = self.clock()

    def stop(self) -> bool:
        """Discard the environment: True if this moved it to STOPPING, False if it already was
        STOPPING or DEAD (stopping twice is not an error; every other event there is)."""
        if self.state.terminal:
            return False
        self.fire(Event.STOP)
        return True

    def exited(self) -> bool:
        """The process exited: -> DEAD; True if it had been stopped (killed by us)."""
        was_stopping = self.state is EnvState.STOPPING
        self.fire(Event.EXIT)
        return was_stopping

    # -- the timing rules -----------------------------------------------------------------
    @property
    def suppressed_init(self) -> bool:
        """The init runs in the invoke phase: it is a retry after the first one ran out."""
        return self.init_phase is InitPhase.INVOKE

    @property
    def init_deadline_ns(self) -> int:
        if self.suppressed_init:  # the function's timeout bounds the retried init
            return self.spawned_ns + self.timeouts.invocation_ns
        return self.spawned_ns + self.timeouts.init_ns + self.init_extension_ns

    @property
    def init_cap_ns(self) -> int:
        """The init deadline's hard limit: ``INIT_CAP`` times the init limit, from the spawn."""
        return INIT_CAP * self.timeouts.init_ns

    def extend_init(self, allowance_ns: int) -> int:
        """Move the init deadline to ``allowance_ns`` from now (see :func:`init_allowance_ns`),
        never past the cap; the new deadline. Only the first init's limit is deferred."""
        if self.suppressed_init:
            raise IllegalTransition("extend_init in the invoke phase: the function timeout is not deferred")
        cap = self.spawned_ns + self.init_cap_ns
        deadline = min(self.clock() + allowance_ns, cap)
        self.init_extension_ns = max(0, deadline - self.spawned_ns - self.timeouts.init_ns)
        return self.init_deadline_ns

    @property
    def invocation_deadline_ns(self) -> int:
        """The running invocation's deadline: the function timeout from its dispatch, or, for
        the first invocation after a suppressed init, from the spawn (the init used part of it)."""
        started_ns = self.spawned_ns if self.suppressed_init and self.dispatches <= 1 else self.dispatched_ns
        return started_ns + self.timeouts.invocation_ns

    @property
    def idle_deadline_ns(self) -> int:
        return self.idle_since_ns + self.timeouts.idle_ns

    def seconds_until(self, deadline_ns: int) -> float:
        """The delay to give a timer for ``deadline_ns`` (0 once it has passed)."""
        return max(0, deadline_ns - self.clock()) / 1e9

    def init_timer(self) -> Fired:
        """The init timer fired, still in INIT at or after the init deadline: RETRY in the init
        phase (Lambda retries the init at the invocation), EXPIRED in the invoke phase."""
        if self.state is not EnvState.INIT:
            return Fired.MOOT
        if self.clock() < self.init_deadline_ns:
            return Fired.EARLY
        return Fired.EXPIRED if self.suppressed_init else Fired.RETRY

    def invocation_timer(self, dispatch: int) -> Fired:
        """Dispatch number ``dispatch``'s timer fired: EXPIRED while that dispatch is still the
        one running (BUSY) at or after its deadline, whether or not its caller still waits."""
        if self.state is not EnvState.BUSY or dispatch != self.running:
            return Fired.MOOT
        return Fired.EXPIRED if self.clock() >= self.invocation_deadline_ns else Fired.EARLY

    def idle_expired(self) -> bool:
        """Idle for longer than the idle timeout: the reaper stops it."""
        return self.state is EnvState.IDLE and self.clock() - self.idle_since_ns > self.timeouts.idle_ns
