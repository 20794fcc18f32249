"""Every verdict is decidable or says why not: the early-stopping wording, power tuning's
recommendation when no size passes (none met the target vs none could be judged), cold figures
from the trials that have an Init Duration, the floor beside a Duration, and Locust failures
the host's slow inits made (the estimate of what Lambda would have answered). Pure: recorded
figures, no processes."""

from __future__ import annotations

import dataclasses

import pytest

from bench.hostmade import InitNeeds, during_inits, estimate
from bench.load.recorder import CONTENDED_HEADER, INIT_HEADER, THROTTLED_HEADER, RunRecorder
from bench.load.results import host_made
from bench.powertune.config import PowertuneConfig
from bench.powertune.measure import (
    ColdTrial,
    Invocation,
    SizeSamples,
    floor_figures,
    summarize_size,
    with_floor,
)
from bench.powertune.sweep import (
    function_status,
    recommend,
    size_line,
    verdict_line,
    why_not_judged,
    with_floors,
)
from bench.results.gate import FAIL, INVALID, PASS, judge
from bench.results.powertune import FunctionSweep
from bench.verdict import Limits, Threshold, error_gate, evaluate, floor_gate, min_samples
from handler.local.reportline import EmulatorLine, ReportLine


# -- the early-stopping bound, in words --------------------------------------------------------
def test_a_size_that_cannot_be_judged_says_how_many_samples_p99_needs():
    threshold = Threshold(target_us=1_000)
    assert (min_samples(0, 99, 0.99), min_samples(1, 99, 0.99)) == (459, 662)
    gate = evaluate(
        threshold, samples=200, over_target=0, observed_us=710, field="f 256 MB warm Duration p99"
    )
    assert gate.status == INVALID and gate.details["samples_needed"] == 259
    assert gate.message.startswith("INVALID: 200 samples; p99 needs ≥ 459 (none over) for a claim at 99% ")
    one = evaluate(threshold, samples=500, over_target=1, observed_us=800, field="f")
    assert one.status == INVALID and one.message.startswith(
        "INVALID: 500 samples; p99 needs ≥ 662 (one over)"
    )
    assert evaluate(threshold, 662, 1, 800, "f").status == PASS  # one over, 662 samples: the claim holds
    assert evaluate(threshold, 200, 5, 1_200, "f").status == FAIL  # over the target: no more samples help


# -- power tuning: one size, synthetic REPORT lines ----------------------------------------------
def _call(duration_ms: float, memory_mb: int, init_ms: float | None = None) -> Invocation:
    report = ReportLine.measured("id", duration_ms, memory_mb, 40, init_ms, None, None)
    emulator = EmulatorLine("id", duration_ms, memory_mb / 1769, "boost", 50.0 if init_ms else None, ())
    return Invocation("2xx", int(duration_ms * 1e6) + 100_000, report, emulator, None)


def _samples(memory_mb: int, warm_ms: float, warm: int, inits_ms: tuple[float | None, ...] = (80.0, 90.0)):
    samples = SizeSamples(memory_mb, {"2xx": 0}, [], [])
    for init_ms in inits_ms:
        first = _call(warm_ms, memory_mb, init_ms=init_ms)
        samples.count(first)
        samples.cold_run += 1
        samples.cold.append(ColdTrial(first.client_ns, first.report, 50.0, False))
    for _ in range(warm):
        call = _call(warm_ms, memory_mb)
        samples.count(call)
        samples.warm.append(call)
    return samples


def _sweep(sizes, config) -> FunctionSweep:
    recommendations, theirs = recommend(sizes, config, "x86_64")
    status = function_status(sizes, recommendations, config.strategy)
    return FunctionSweep("f", "x86_64", 128, True, sizes, recommendations, theirs, status)


def test_the_recommendation_tells_none_met_the_target_from_none_could_be_judged():
    config = PowertuneConfig(target_ms=1.0, warm=200, floor_function=None)
    unjudged = [summarize_size("f", _samples(mb, 0.7, 200), config, "x86_64") for mb in (256, 1769)]
    sweep = _sweep(unjudged, config)
    cost = sweep.recommendations[0]
    assert sweep.status == INVALID and cost.memory_mb is None
    assert cost.message.startswith(
        "cost: no size could be judged against warm p99 ≤ 1 ms (256 MB INVALID: 200 samples; p99 needs ≥ 459 "
        "(none over); 1769 MB INVALID: 200 samples; p99 needs ≥ 459 (none over))"
    )
    assert "no size passes" not in cost.message and "meets the target" not in cost.message
    assert verdict_line(sweep, "cost").startswith("cannot be judged: cost: no size could be judged")
    failed = [summarize_size("f", _samples(mb, 1.5, 700), config, "x86_64") for mb in (256, 1769)]
    sweep = _sweep(failed, config)
    assert sweep.status == FAIL
    assert verdict_line(sweep, "cost").startswith(
        "FAIL: cost: no size meets the target warm p99 ≤ 1 ms (256 MB FAIL, 1769 MB FAIL)"
    )
    mixed = _sweep([failed[0], unjudged[1]], config)  # the unjudged size might have met it
    assert mixed.status == INVALID and "no judged size meets the target" in mixed.recommendations[0].message
    passed = _sweep([summarize_size("f", _samples(1024, 0.5, 700), config, "x86_64")], config)
    assert verdict_line(passed, "cost").startswith("PASS: cost: 1024 MB, warm p99")


def test_cold_figures_use_only_trials_with_an_init_duration_and_say_how_many():
    config = PowertuneConfig(target_ms=1.0, warm=700, floor_function=None)
    # three trials run; the second's init was suppressed (retried): its REPORT has no Init Duration
    samples = _samples(256, 0.5, 700, inits_ms=(80.0, None, 100.0))
    size = summarize_size("f", samples, config, "x86_64")
    assert size.cold_trials_run == 3 and len(size.cold_trials) == 2
    assert size.init_duration_us.count == 2 and size.init_duration_us.min >= 79_000  # no 0 ms init among them
    assert size.cold_start_us.count == 2 and size.cold_start_us.min >= 80_000
    assert size.init_cpu_us.count == 2  # the Init CPU of the same two trials, not of all three
    assert "cold p50 " in size_line("f", size, config, "x86_64")
    assert "ms from 2 of 3 trials" in size_line("f", size, config, "x86_64")
    none = summarize_size("f", _samples(256, 0.5, 700, inits_ms=(None, None)), config, "x86_64")
    assert none.cold_start_us is None and none.init_duration_us is None and none.init_cpu_us is None
    assert "none of 2 trials reported an Init Duration" in size_line("f", none, config, "x86_64")


# -- the floor ------------------------------------------------------------------------------------
def _latency(status: str, observed_us: float, samples: int = 700):
    return evaluate(Threshold(1_000), samples, 0 if status != FAIL else 20, observed_us, "f 256 MB p99")


def test_a_verdict_the_floor_alone_decides_is_invalid_with_the_reason():
    # the no-op itself misses the target: a FAIL within the target of the floor is the floor's
    gate = floor_gate("f 256 MB", _latency(FAIL, 2_300), "floor-noop", [1_150.0, 1_350.0], 1_250.0)
    assert gate.status == INVALID and gate.check == "floor" and "the no-op itself misses" in gate.message
    # ... but 38 ms against a 3 ms floor and a 1 ms target is the function's own FAIL
    gate = floor_gate("f 256 MB", _latency(FAIL, 38_000), "floor-noop", [2_900.0, 3_100.0], 3_000.0)
    assert gate.status == PASS and "not decisive: over the floor's reach (3,300 µs" in gate.message
    # rounds of 3.5 and 8.1 ms: a third could land at 12.7, so 12 ms is within the floor's spread
    gate = floor_gate("f 256 MB", _latency(FAIL, 12_000), "floor-noop", [3_500.0, 8_100.0], 7_700.0)
    assert gate.status == INVALID and "within the floor's run-to-run spread (up to 12,700 µs)" in gate.message
    # within the floor's run-to-run spread (not above its highest round)
    gate = floor_gate("f 256 MB", _latency(FAIL, 1_100), "floor-noop", [700.0, 1_150.0], 950.0)
    assert gate.status == INVALID and "within the floor's run-to-run spread" in gate.message
    # well above a floor under the target: the function's FAIL stands
    gate = floor_gate("f 256 MB", _latency(FAIL, 5_000), "floor-noop", [600.0, 700.0], 650.0)
    assert gate.status == PASS and gate.details["decisive"] is False
    assert judge([_latency(FAIL, 5_000), gate]) == FAIL
    # a PASS stands: the floor only adds time
    assert floor_gate("f", _latency(PASS, 600), "floor-noop", [550.0, 700.0], 650.0).status == PASS


def test_a_fail_over_a_floor_that_meets_the_target_says_so_not_by_more_than_the_target():
    # target 1,000 µs, floor reach 400 µs, observed 1,100 µs: 700 µs over the reach, less than the
    # target, but the no-op meets the target, so the FAIL is the function's
    gate = floor_gate("f 256 MB", _latency(FAIL, 1_100), "floor-noop", [300.0, 350.0], 340.0)
    assert gate.status == PASS and gate.details["floor_misses_target"] is False
    assert "not decisive: over the floor's reach (400 µs" in gate.message
    assert "and the no-op meets the 1,000 µs target" in gate.message
    assert "by more than" not in gate.message
    # the no-op misses the target and the FAIL is far over its reach: "by more than the target"
    gate = floor_gate("f 256 MB", _latency(FAIL, 38_000), "floor-noop", [2_900.0, 3_100.0], 3_000.0)
    assert "by more than the 1,000 µs target" in gate.message


def test_a_floor_not_measured_does_not_read_as_a_check_that_passed():
    gate = floor_gate("f warm_us", _latency(FAIL, 5_000), "floor-noop", [], 0.0)
    assert gate.message.startswith("floor: not measured") and "PASS" not in gate.message
    assert gate.details["measured"] is False and gate.observed is None and gate.check == "floor"
    assert judge([_latency(FAIL, 5_000), gate]) == FAIL  # it neither passes nor invalidates the run


def test_why_a_size_is_not_judged_comes_from_the_gates_details_not_their_words():
    config = PowertuneConfig(target_ms=1.0, warm=700)
    size = summarize_size("f", _samples(256, 1.3, 700), config, "x86_64")
    misses = with_floor("f", size, floor_figures("floor-noop", [[1.2] * 300, [1.5] * 300], 99.0))
    floor = misses.gates[-1]
    assert floor.details["within_spread"] is True and misses.status == INVALID
    reworded = dataclasses.replace(misses, gates=[*misses.gates[:-1], dataclasses.replace(floor, message="")])
    within = "the floor decides it: within the floor's run-to-run spread (up to 1,800 µs)"
    assert why_not_judged(reworded) == within
    few = summarize_size("f", _samples(256, 0.5, 200), config, "x86_64")
    latency = next(gate for gate in few.gates if gate.check == "latency")
    few = dataclasses.replace(few, gates=[dataclasses.replace(latency, message="reworded")])
    assert why_not_judged(few) == "200 samples; p99 needs ≥ 459 (none over)"


def test_power_tuning_shows_the_floor_beside_each_size_and_judges_with_it():
    config = PowertuneConfig(target_ms=1.0, warm=700)
    size = summarize_size("f", _samples(256, 1.3, 700), config, "x86_64")
    assert size.status == FAIL
    floor = floor_figures("floor-noop", [[1.2] * 300, [1.25] * 300], 99.0)
    assert floor.rounds_us == [pytest.approx(1_200, rel=0.01), pytest.approx(1_250, rel=0.01)]
    judged = with_floor("f", size, floor)
    assert judged.floor is floor and judged.status == INVALID and judged.gates[-1].check == "floor"
    sweep = with_floors(_sweep([size], config), {256: floor}, config)
    assert (
        sweep.status == INVALID
        and "INVALID: the floor decides it: within the floor's run-to-run spread (up to 1,300 µs)"
        in sweep.recommendations[0].message
    )
    assert floor_figures("floor-noop", [[], []], 99.0) is None
    assert with_floor("f", size, None) is size


# -- failures the host's slow inits made (Locust) ------------------------------------------------
# The case measured: Locust against the tutorial's function from cold at 100 req/s, no warm-up:
# 553 of 2,002 requests answered 5xx, all marked Lambda throttles, while all 9 inits were
# contended and took 14.5 s at p50 (about 1.2 s alone: a contention factor of 12.1).
INIT_MS, FACTOR, THROTTLES, REQUESTS, INITS = 14_500.0, 12.1, 553, 2_002, 9


def _recorded_case() -> RunRecorder:
    recorder = RunRecorder()
    name = "staging/logitModel"
    for n in range(THROTTLES):  # while the inits ran: seconds 0–14
        recorder.record(name, status_code=500, response_time_ms=20.0, headers={THROTTLED_HEADER: "x"},
                        wall_second=1_000 + n * 14 // THROTTLES)  # fmt: skip
    for _ in range(INITS):  # the inits end at second 14 or 15
        headers = {INIT_HEADER: f"{INIT_MS:.3f}", CONTENDED_HEADER: f"init {FACTOR:.1f}"}
        recorder.record(
            name, status_code=200, response_time_ms=INIT_MS + 30, headers=headers, wall_second=1_015
        )
    for n in range(REQUESTS - THROTTLES - INITS):
        recorder.record(name, status_code=200, response_time_ms=8.0, headers={}, wall_second=1_015 + n // 100)
    return recorder


def test_the_recorder_keeps_what_each_init_needed_and_the_estimate_follows():
    record = _recorded_case().endpoints["staging/logitModel"]
    assert record.counters["init_figures"] == INITS == record.counters["init_figures_contended"]
    assert record.counters["init_wall_us"] == INITS * 14_500_000
    assert record.counters["init_needed_us"] == pytest.approx(INITS * 14_500_000 / FACTOR, abs=INITS)
    made = host_made(record)
    assert made is not None and made.during_inits == THROTTLES
    # 553 throttles × (Σ needed / Σ wall = 1 / 12.1): about 45.7 on Lambda
    assert made.on_lambda == pytest.approx(THROTTLES / FACTOR, abs=0.1)


def test_throttles_the_host_made_are_judged_on_what_lambda_would_have_answered():
    record = _recorded_case().endpoints["staging/logitModel"]
    made = host_made(record)
    outcomes = dict(record.outcomes)
    throttles = record.counters["lambda_throttles"]
    # At the default 0.1 %: about 46 of 2,002 (2.3 %) would be throttled on Lambda too (the
    # function's own cold starts at 100 req/s and 10 environments): FAIL, naming the estimate.
    strict = error_gate("tutorial", outcomes, Limits(), lambda_throttles=throttles, host_made=made)
    assert strict.status == FAIL and "Lambda would have throttled about 46 (an estimate)" in strict.message
    assert "of the 553 throttles while inits ran" in strict.message and "count in full" not in strict.message
    assert "still over" in strict.message and strict.details["share_on_lambda"] == pytest.approx(
        0.0228, abs=1e-3
    )
    # At 5 %, the measured 27.6 % fails and the estimate passes: the host decided, INVALID
    loose = error_gate(
        "tutorial", outcomes, Limits(max_error_rate=0.05), lambda_throttles=throttles, host_made=made
    )
    assert loose.status == INVALID and judge([loose]) == INVALID
    assert "553 of 2,002 requests failed (27.62%)" in loose.message
    assert (
        "the host slowed 9 of 9 inits (14.5 s each on average here, 1.2 s at their own CPU share)"
        in loose.message
    )
    assert "warm the function first" in loose.message and "a bigger machine" in loose.message
    # Without the estimate the same run FAILs as before
    assert (
        error_gate("tutorial", outcomes, Limits(max_error_rate=0.05), lambda_throttles=throttles).status
        == FAIL
    )


def test_the_case_measured_through_the_emulator_still_fails_as_lambda_would():
    # Recorded 2026-12-07 (load 3.4–4.9): the tutorial's function from cold at 100 req/s, 20 s,
    # 697 of 2,000 throttled while its 10 inits ran, 7.7 s each here, 1.3 s at their share
    needs = InitNeeds(inits=10, wall_us=76_576_903, needed_us=13_478_067, contended=10)
    made = estimate(697, 697, needs)
    assert made.on_lambda == pytest.approx(122.7, abs=0.1)  # 100 req/s over 1.3 s inits, 10 environments
    outcomes = {"2xx": 1_303, "5xx": 697, "cancelled": 0}
    gate = error_gate("tutorial", outcomes, Limits(), lambda_throttles=697, host_made=made, inits_finished=10)
    assert gate.status == FAIL and gate.details["share_on_lambda"] == pytest.approx(0.0614, abs=1e-4)
    assert "(7.7 s each on average here, 1.3 s at their own CPU share)" in gate.message


def test_the_estimate_needs_contended_inits_and_counts_later_throttles_in_full():
    needs = InitNeeds(inits=4, wall_us=4_000_000, needed_us=1_000_000, contended=4)
    assert estimate(100, 60, needs).on_lambda == pytest.approx(60 / 4 + 40)
    assert (
        "about 15 (an estimate); the 40 after the last init count in full"
        in estimate(100, 60, needs).describe()
    )
    assert estimate(0, 0, needs) is None
    assert estimate(100, 100, InitNeeds(4, 4_000_000, 4_000_000, 0)) is None  # no init slowed
    # the throttles up to the last second in which an init finished, at most the throttles
    assert during_inits({10: (5, 0), 11: (7, 2), 12: (9, 0)}, throttles=20) == 12
    assert during_inits({10: (5, 0)}, throttles=20) == 0


def test_only_lambda_throttles_count_as_throttles_while_inits_ran():
    recorder, name = RunRecorder(), "staging/logitModel"
    for _ in range(30):  # the function's own failures while the inits ran: not throttles
        recorder.record(name, status_code=400, response_time_ms=5.0, headers={}, wall_second=1_000)
        recorder.record(name, status_code=200, response_time_ms=5.0, headers={}, wall_second=1_000,
                        verify_failed=True)  # fmt: skip
        recorder.record(name, status_code=502, response_time_ms=5.0, headers={}, wall_second=1_001)
    for _ in range(10):
        recorder.record(name, status_code=500, response_time_ms=5.0, headers={THROTTLED_HEADER: "x"},
                        wall_second=1_001)  # fmt: skip
    for _ in range(3):  # the inits end at second 1,002
        headers = {INIT_HEADER: "4000.000", CONTENDED_HEADER: "init 4.0"}
        recorder.record(name, status_code=200, response_time_ms=4_030.0, headers=headers, wall_second=1_002)
    for _ in range(10):  # after the last init: the function's own, counted in full
        recorder.record(name, status_code=500, response_time_ms=5.0, headers={THROTTLED_HEADER: "x"},
                        wall_second=1_005)  # fmt: skip
    record = recorder.endpoints[name]
    assert record.timeline[1_001].errors == 40 and record.timeline[1_001].lambda_throttles == 10
    assert record.timeline[1_000].lambda_throttles == 0
    made = host_made(record)
    # 100 failed answers up to the inits' end, but only 10 throttles: 10 of the 20 during inits
    assert made is not None and made.throttles == 20 and made.during_inits == 10
    assert made.on_lambda == pytest.approx(10 / 4 + 10)
    # the count survives a worker's report to the master
    merged = RunRecorder()
    merged.add_payload("w1", recorder.drain())
    assert merged.endpoints[name].timeline[1_001].lambda_throttles == 10


# -- the floor beside the cold-start profiler's warm calls (endpoint mode) ------------------------
def test_the_endpoint_modes_warm_calls_get_the_floor_beside_them():
    import itertools
    from pathlib import Path

    from bench.coldstart.config import ColdstartConfig
    from bench.coldstart.endpoint import floor_round, summarize_endpoint
    from bench.coldstart.profiler import format_table
    from bench.latency import LatencyRecorder
    from bench.results.coldstart import EndpointTrial
    from bench.results.metadata import Metadata

    class Answering:  # an Invoke API that answers every call; the clock steps 1.2 ms a reading
        def invoke(self, FunctionName, Payload, **_kwargs):
            class Body:
                def read(self):
                    return b"{}"

            return {"Payload": Body()}

    clock = itertools.count(step=1_200_000).__next__
    rounds = [floor_round(Answering(), "floor-noop", 50, clock) for _ in range(2)]
    assert [len(values) for values in rounds] == [50, 50] and set(rounds[0]) == {1_200_000}
    config = ColdstartConfig(
        variants=(), trials=1, warm=700, models_dir=Path("/nonexistent"), memory_mb=128, cold_fraction=0.01,
        target_ms=1.0, cold_target_ms=None, results=Path("/nonexistent/r.json"), progress=False,
        function="f", lambda_endpoint="http://127.0.0.1:1", floor_function="floor-noop",
    )  # fmt: skip
    warm = LatencyRecorder("us")
    for _ in range(700):
        warm.record_ns(1_250_000)  # 1.25 ms: over the 1 ms target, within the floor's target of it
    trials = [EndpointTrial(90_000_000, ReportLine.measured("c", 2.0, 128, 30, init_duration_ms=80.0))]
    metadata = Metadata("2026-01-01T00:00:00+00:00", "test", None, "host", "cpu", 2, 1.0, "linux", {})
    document = summarize_endpoint(trials, warm, config, metadata, {"2xx": 701}, rounds)
    floor = document.gates[-1]
    assert floor.check == "floor" and floor.status == INVALID and document.status == INVALID
    assert floor.details["floor_rounds_us"] == [pytest.approx(1_200, rel=0.01)] * 2
    assert "the no-op itself misses the 1,000 µs target" in format_table(document)


def test_the_main_jobs_sweep_takes_enough_warm_invocations_for_a_p99_pass():
    from bench.pipeline import Plan

    plan = Plan.default(target_ms=1.0)
    # a function clearly under its target PASSes at p99 with 99 % confidence, one slow call allowed
    assert plan.powertune_warm >= min_samples(1, 99.0, 0.99) == 662
    config = PowertuneConfig(target_ms=1.0, warm=plan.powertune_warm, floor_function=None)
    size = summarize_size("f", _samples(256, 0.4, plan.powertune_warm), config, "x86_64")
    assert size.status == PASS


def test_a_run_that_saw_only_environments_starting_cannot_be_judged():
    # Measured: Locust against the tutorial's function from cold at 100 req/s for 20 s on a
    # saturated host (load 15): no init finished, every answer a throttle, 12 requests in flight
    outcomes = {
        "2xx": 0,
        "4xx": 0,
        "429": 0,
        "5xx": 1_990,
        "other": 0,
        "connection_error": 0,
        "cancelled": 12,
    }
    gate = error_gate("tutorial", outcomes, Limits(), lambda_throttles=1_990, inits_finished=0)
    assert gate.status == INVALID and "no init finished and no request succeeded" in gate.message
    assert "warm the function first" in gate.message
    # one error that is not a throttle (an init that crashed) is the function's: FAIL
    crashed = {**outcomes, "5xx": 1_991}
    assert error_gate("tutorial", crashed, Limits(), lambda_throttles=1_990, inits_finished=0).status == FAIL
    # a run that succeeded once, or saw an init finish, is judged on its figures
    served = {**outcomes, "2xx": 1}
    assert error_gate("tutorial", served, Limits(), lambda_throttles=1_990, inits_finished=0).status == FAIL
    assert error_gate("tutorial", outcomes, Limits(), lambda_throttles=1_990, inits_finished=1).status == FAIL
