"""An environment's lifecycle and API Gateway's token bucket, with a fake clock: no processes,
no event loop. The expected transition table is written out here, not read from the module,
so that a changed rule fails a test."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from handler.local.config import EmulatorConfig, FunctionConfig
from handler.local.environment import Environment
from handler.local.lifecycle import (
    EnvState,
    Event,
    Fired,
    IllegalTransition,
    InitPhase,
    Lifecycle,
    Timeouts,
)
from handler.local.logs import LogSink
from handler.local.pool import FunctionState, Pool
from handler.local.throttle import TokenBucket

MS = 1_000_000
S = 1_000 * MS
TIMEOUTS = Timeouts(init_ns=10 * S, invocation_ns=3 * S, idle_ns=600 * S)

E = EnvState
EXPECTED = {
    (Event.INIT_DONE, E.INIT): E.READY,
    (Event.DISPATCH, E.READY): E.BUSY,
    (Event.DISPATCH, E.BUSY): E.BUSY,  # a claimed warm environment's runtime takes its work
    (Event.CLAIM, E.IDLE): E.BUSY,
    (Event.RESULT, E.BUSY): E.FINISHING,
    (Event.RELEASE, E.FINISHING): E.IDLE,
    **{(Event.STOP, state): E.STOPPING for state in (E.INIT, E.READY, E.BUSY, E.FINISHING, E.IDLE)},
    **{(Event.EXIT, state): E.DEAD for state in (E.INIT, E.READY, E.BUSY, E.FINISHING, E.IDLE, E.STOPPING)},
}


class FakeClock:
    def __init__(self, start_ns: int = 1_000 * S) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, ns: int) -> None:
        self.now_ns += ns


def in_state(state: EnvState, clock: FakeClock | None = None) -> Lifecycle:
    lifecycle = Lifecycle(TIMEOUTS, clock or FakeClock())
    lifecycle.state = state
    return lifecycle


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_cold_then_warm_path_with_its_instants(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock)
    assert lifecycle.state is E.INIT
    clock.advance(5 * MS)  # the Runtime API endpoint opens
    assert lifecycle.spawning() == clock.now_ns + 10 * S
    clock.advance(250 * MS)
    assert lifecycle.init_done() == 250 * MS and lifecycle.init_duration_ns == 250 * MS
    assert lifecycle.state is E.READY
    assert lifecycle.dispatch() == 1 and lifecycle.state is E.BUSY
    assert lifecycle.dispatched_ns == clock.now_ns
    assert lifecycle.invocation_deadline_ns == clock.now_ns + 3 * S
    clock.advance(2 * MS)
    lifecycle.result()
    assert lifecycle.state is E.FINISHING
    lifecycle.release()
    assert lifecycle.state is E.IDLE and lifecycle.idle_since_ns == clock.now_ns
    assert lifecycle.idle_deadline_ns == clock.now_ns + 600 * S
    for number in (2, 3):
        clock.advance(40 * MS)
        lifecycle.claim()
        assert lifecycle.state is E.BUSY
        clock.advance(1 * MS)
        assert lifecycle.dispatch() == number and lifecycle.dispatched_ns == clock.now_ns
        assert lifecycle.state is E.BUSY
        lifecycle.result()
        lifecycle.release()
        assert lifecycle.state is E.IDLE
    assert lifecycle.init_duration_ns == 250 * MS  # warm invocations do not touch it


def test_timeouts_from_seconds_are_exact_nanoseconds():
    assert Timeouts.from_seconds(10, 3.0, 0.25) == Timeouts(10 * S, 3 * S, 250 * MS)
    assert Timeouts.from_seconds(0.001, 900, 600).init_ns == 1 * MS


def test_an_init_over_the_limit_is_retried(clock):
    # lambda-runtime-environment.html: "If all three tasks do not complete within 10 seconds,
    # Lambda retries the Init phase at the time of the first function invocation"
    lifecycle = Lifecycle(TIMEOUTS, clock)
    assert lifecycle.init_phase is InitPhase.INIT and not lifecycle.suppressed_init
    deadline = lifecycle.spawning()
    assert lifecycle.seconds_until(deadline) == 10.0
    clock.advance(10 * S - 1)
    assert lifecycle.init_timer() is Fired.EARLY  # the timer fired a nanosecond early: again
    assert lifecycle.seconds_until(deadline) == 1e-9
    clock.advance(1)
    assert lifecycle.init_timer() is Fired.RETRY
    assert lifecycle.seconds_until(deadline) == 0.0
    clock.advance(S)
    assert lifecycle.init_timer() is Fired.RETRY
    assert lifecycle.stop() is True and lifecycle.state is E.STOPPING
    assert lifecycle.init_timer() is Fired.MOOT


def test_a_retried_init_and_its_invocation_share_the_function_timeout(clock):
    # "... with the configured function timeout": the init in the invoke phase and the first
    # invocation both end by spawn + timeout; later (warm) invocations by dispatch + timeout.
    lifecycle = Lifecycle(TIMEOUTS, clock, InitPhase.INVOKE)
    assert lifecycle.suppressed_init
    spawned = clock.now_ns
    assert lifecycle.spawning() == spawned + 3 * S  # the function's timeout, not the init limit
    clock.advance(2 * S)
    assert lifecycle.init_timer() is Fired.EARLY
    lifecycle.init_done()
    assert lifecycle.init_timer() is Fired.MOOT
    first = lifecycle.dispatch()
    assert lifecycle.invocation_deadline_ns == spawned + 3 * S  # 1 s left, not 3 s from now
    clock.advance(1 * S - 1)
    assert lifecycle.invocation_timer(first) is Fired.EARLY
    lifecycle.result()
    lifecycle.release()
    lifecycle.claim()
    clock.advance(10 * S)
    second = lifecycle.dispatch()
    assert lifecycle.invocation_deadline_ns == clock.now_ns + 3 * S  # warm: a timeout of its own
    clock.advance(3 * S)
    assert lifecycle.invocation_timer(second) is Fired.EXPIRED


def test_a_retried_init_that_runs_out_the_timeout_expires_and_is_not_retried_again(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock, InitPhase.INVOKE)
    lifecycle.spawning()
    clock.advance(3 * S - 1)
    assert lifecycle.init_timer() is Fired.EARLY
    clock.advance(1)
    assert lifecycle.init_timer() is Fired.EXPIRED  # the invocation fails with the timeout error
    with pytest.raises(IllegalTransition, match="function timeout is not deferred"):
        lifecycle.extend_init(5 * S)  # the host-saturation rule is for the 10 s limit only
    assert lifecycle.init_deadline_ns == lifecycle.spawned_ns + 3 * S


def test_a_deferred_init_limit_retries_at_its_new_deadline(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock)
    lifecycle.spawning()
    clock.advance(10 * S)
    assert lifecycle.init_timer() is Fired.RETRY
    assert lifecycle.extend_init(4 * S) == lifecycle.spawned_ns + 14 * S  # resources.extend_init
    assert lifecycle.init_timer() is Fired.EARLY
    clock.advance(4 * S)
    assert lifecycle.init_timer() is Fired.RETRY


def test_init_done_in_time_makes_the_init_timer_moot(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock)
    lifecycle.spawning()
    clock.advance(9 * S)
    lifecycle.init_done()
    clock.advance(5 * S)
    assert lifecycle.init_timer() is Fired.MOOT


def test_init_is_timed_from_the_spawn_not_from_construction(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock)
    clock.advance(2 * S)
    lifecycle.spawning()
    clock.advance(10 * S - 1)
    assert lifecycle.init_timer() is Fired.EARLY
    clock.advance(1)
    assert lifecycle.init_timer() is Fired.RETRY


def test_invocation_timeout(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock)
    lifecycle.spawning()
    lifecycle.init_done()
    dispatch = lifecycle.dispatch()
    assert lifecycle.seconds_until(lifecycle.invocation_deadline_ns) == 3.0
    clock.advance(3 * S - 1)
    assert lifecycle.invocation_timer(dispatch) is Fired.EARLY
    clock.advance(1)
    assert lifecycle.invocation_timer(dispatch) is Fired.EXPIRED
    lifecycle.stop()
    assert lifecycle.invocation_timer(dispatch) is Fired.MOOT


def test_a_result_in_time_makes_that_dispatchs_timer_moot_even_on_the_next_dispatch(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock)
    lifecycle.spawning()
    lifecycle.init_done()
    first = lifecycle.dispatch()
    clock.advance(1 * S)
    lifecycle.result()
    assert lifecycle.invocation_timer(first) is Fired.MOOT
    lifecycle.release()
    lifecycle.claim()  # BUSY again, not yet dispatched: the old timer is still moot
    clock.advance(5 * S)
    assert lifecycle.invocation_timer(first) is Fired.MOOT
    second = lifecycle.dispatch()
    assert second != first
    clock.advance(5 * S)
    assert lifecycle.invocation_timer(first) is Fired.MOOT
    assert lifecycle.invocation_timer(second) is Fired.EXPIRED


def test_idle_expiry(clock):
    lifecycle = Lifecycle(TIMEOUTS, clock)
    lifecycle.spawning()
    lifecycle.init_done()
    lifecycle.dispatch()
    clock.advance(700 * S)  # busy for long (a long timeout): never reaped while busy
    assert not lifecycle.idle_expired()
    lifecycle.result()
    lifecycle.release()
    clock.advance(600 * S)
    assert not lifecycle.idle_expired()  # idle exactly the idle timeout: not yet
    clock.advance(1)
    assert lifecycle.idle_expired()
    lifecycle.claim()  # a warm invocation took it first
    assert not lifecycle.idle_expired()
    lifecycle.dispatch()
    lifecycle.result()
    lifecycle.release()  # idle counts again from here
    clock.advance(600 * S)
    assert not lifecycle.idle_expired()
    clock.advance(1)
    assert lifecycle.idle_expired()
    lifecycle.stop()
    assert not lifecycle.idle_expired()


@pytest.mark.parametrize(("event", "state"), list(itertools.product(Event, EnvState)))
def test_every_event_in_every_state(event, state):
    lifecycle = in_state(state)
    expected = EXPECTED.get((event, state))
    if expected is None:
        with pytest.raises(IllegalTransition, match=f"{event.value} in state {state.value}"):
            lifecycle.fire(event)
        assert lifecycle.state is state
    else:
        assert lifecycle.fire(event) is expected
        assert lifecycle.state is expected


@pytest.mark.parametrize(
    ("state", "method"),
    [
        (E.READY, "init_done"),
        (E.IDLE, "dispatch"),
        (E.FINISHING, "dispatch"),
        (E.BUSY, "claim"),
        (E.READY, "claim"),
        (E.IDLE, "result"),
        (E.BUSY, "release"),
        (E.IDLE, "release"),
        (E.READY, "spawning"),
        (E.DEAD, "exited"),
    ],
)
def test_illegal_transitions_raise(state, method):
    lifecycle = in_state(state)
    with pytest.raises(IllegalTransition):
        getattr(lifecycle, method)()
    assert lifecycle.state is state


@pytest.mark.parametrize("state", [E.STOPPING, E.DEAD])
def test_stopping_and_dead_are_terminal(state):
    lifecycle = in_state(state)
    assert state.terminal
    assert lifecycle.stop() is False  # stopping again is no error, and changes nothing
    assert lifecycle.state is state
    for method in ("init_done", "dispatch", "claim", "result", "release"):
        with pytest.raises(IllegalTransition):
            getattr(lifecycle, method)()
        assert lifecycle.state is state
    assert lifecycle.init_timer() is Fired.MOOT
    assert lifecycle.invocation_timer(lifecycle.dispatches) is Fired.MOOT
    assert not lifecycle.idle_expired()


def test_only_stopping_and_dead_are_terminal():
    assert {state for state in EnvState if state.terminal} == {E.STOPPING, E.DEAD}


def test_exit_says_whether_the_environment_was_stopped():
    stopped = in_state(E.IDLE)
    assert stopped.stop() is True
    assert stopped.exited() is True and stopped.state is E.DEAD
    crashed = in_state(E.BUSY)
    assert crashed.exited() is False and crashed.state is E.DEAD


# -- the pool's reaper, with the same clock, and no process ---------------------------------
def test_the_pool_reaps_only_environments_idle_past_the_timeout(tmp_path: Path, clock):
    function = FunctionConfig(name="f", handler="app.handler", code_dir=tmp_path)
    config = EmulatorConfig(functions=(function,), idle_timeout_s=60.0)
    pool = Pool(config, runtime=None, logs=LogSink(None, quiet=True), clock=clock)
    state = pool.function("f")
    environments = []
    for _ in range(3):
        environment = pool_environment(pool, state)
        environments.append(environment)
        clock.advance(20 * S)
    old, middle, recent = environments  # idle for 60 s + 1 ns, 40 s + 1 ns and 20 s + 1 ns
    clock.advance(1)
    pool.reap_idle()
    assert old.state is E.STOPPING and state.idle == [middle, recent]
    assert state.environments == {middle, recent}
    clock.advance(20 * S)
    pool.reap_idle()
    assert middle.state is E.STOPPING and state.idle == [recent]
    assert recent.state is E.IDLE


def pool_environment(pool: Pool, state: FunctionState) -> Environment:
    environment = Environment(pool, state)
    state.environments.add(environment)
    lifecycle = environment.lifecycle
    lifecycle.spawning()
    lifecycle.init_done()
    lifecycle.dispatch()
    lifecycle.result()
    pool.release(environment)
    assert environment.state is E.IDLE and state.idle[-1] is environment
    return environment


def test_release_retires_an_environment_of_an_older_generation(tmp_path: Path, clock):
    function = FunctionConfig(name="f", handler="app.handler", code_dir=tmp_path)
    pool = Pool(EmulatorConfig(functions=(function,)), runtime=None, logs=LogSink(None), clock=clock)
    state = pool.function("f")
    environment = pool_environment(pool, state)
    assert state.idle.pop() is environment  # as Pool.invoke takes it
    environment.lifecycle.claim()
    environment.lifecycle.dispatch()
    pool.update_configuration("f", env={"A": "1"})
    environment.lifecycle.result()
    pool.release(environment)
    assert environment.state is E.STOPPING
    assert state.idle == [] and state.environments == set()


# -- API Gateway's token bucket ---------------------------------------------------------------
def test_token_bucket_starts_full_and_refuses_when_empty(clock):
    bucket = TokenBucket(rate=4, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert not bucket.take()  # still empty: the clock has not moved


def test_token_bucket_refills_at_its_rate(clock):
    bucket = TokenBucket(rate=4, burst=3, clock=clock)
    for _ in range(3):
        assert bucket.take()
    clock.advance(250 * MS - 1)  # just under one token
    assert not bucket.take()
    clock.advance(1)  # a refused take did not cost anything
    assert bucket.take()
    assert not bucket.take()
    clock.advance(125 * MS)  # half a token, twice
    assert not bucket.take()
    clock.advance(125 * MS)
    assert bucket.take()
    clock.advance(500 * MS)  # two tokens
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_token_bucket_never_holds_more_than_its_burst(clock):
    bucket = TokenBucket(rate=4, burst=3, clock=clock)
    clock.advance(3600 * S)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    bucket_with_fractional_rate = TokenBucket(rate=0.5, burst=1, clock=clock)
    assert bucket_with_fractional_rate.take()
    clock.advance(1 * S)
    assert not bucket_with_fractional_rate.take()
    clock.advance(1 * S)
    assert bucket_with_fractional_rate.take()


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 5), (10, 0)])
def test_token_bucket_rejects_a_bucket_that_could_never_pass(rate, burst):
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        TokenBucket(rate=rate, burst=burst)
