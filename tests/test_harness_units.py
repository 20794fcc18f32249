"""The Locust harness's pure parts: verdict arithmetic, recorder merging, schedules, scenarios."""

from __future__ import annotations

import random

import pytest

from bench.load.arrivals import intended_instants, wait_until
from bench.load.options import OptionError, parse_functions, prediction_of
from bench.load.recorder import OUTCOMES, THROTTLED_HEADER, RunRecorder, outcome_of
from bench.load.scenarios import ScenarioOptions, plan, stage_at
from bench.verdict import FAIL, INVALID, PASS, Threshold, binomial_cdf, evaluate, min_samples
from handler.local.pool import THROTTLE_REASON
from handler.local.pool import THROTTLED_HEADER as EMULATOR_THROTTLED_HEADER


def test_binomial_cdf_by_hand():
    # P(X <= 1) for n=3, p=0.5 is (1 + 3) / 8.
    assert binomial_cdf(1, 3, 0.5) == pytest.approx(0.5)
    assert binomial_cdf(0, 459, 0.01) == pytest.approx(0.99**459)
    assert binomial_cdf(3, 3, 0.2) == 1.0
    assert binomial_cdf(-1, 3, 0.2) == 0.0


def test_mlperf_early_stopping_sample_counts():
    # MLPerf LoadGen at p99 and 99% confidence: 459 with none over target, 662 with one.
    assert min_samples(0, 99, 0.99) == 459
    assert min_samples(1, 99, 0.99) == 662
    # The bound is the smallest such n: one fewer is not enough.
    for over in range(4):
        needed = min_samples(over, 99, 0.99)
        assert binomial_cdf(over, needed, 0.01) <= 0.01 < binomial_cdf(over, needed - 1, 0.01)
    assert min_samples(0, 99.9, 0.99) > 10 * min_samples(0, 99, 0.99) - 100


def test_verdict_statuses_and_messages():
    threshold = Threshold(target_us=1000.0)
    passed = evaluate(threshold, samples=1000, over_target=1, observed_us=800.0, field="e2e_us p99")
    assert passed.status == PASS and passed.details["samples_needed"] == 0
    failed = evaluate(threshold, samples=1000, over_target=50, observed_us=1500.0, field="e2e_us p99")
    assert failed.status == FAIL and "1,500 µs" in failed.message and "1,000 µs" in failed.message
    invalid = evaluate(threshold, samples=100, over_target=0, observed_us=500.0, field="e2e_us p99")
    assert invalid.status == INVALID and invalid.details["samples_needed"] == 359
    assert "359 more samples" in invalid.message
    empty = evaluate(threshold, samples=0, over_target=0, observed_us=0.0, field="e2e_us p99")
    assert empty.status == INVALID and empty.details["samples_needed"] == 459
    with pytest.raises(ValueError):
        Threshold(target_us=0)
    with pytest.raises(ValueError):
        Threshold(target_us=1, percentile=100)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "2xx"), (204, "2xx"), (400, "4xx"), (429, "429"), (502, "5xx"), (0, "connection_error")],
)
def test_outcome_classes(status, outcome):
    assert outcome_of(status) == outcome


class Headers(dict):
    def get(self, key, default=None):
        return {k.lower(): v for k, v in self.items()}.get(key.lower(), default)


def test_recorder_records_handler_time_cold_starts_and_outcomes():
    assert THROTTLED_HEADER == EMULATOR_THROTTLED_HEADER  # the emulator's mark, as it writes it
    recorder = RunRecorder()
    for _ in range(5):
        recorder.note_sent("f")
    recorder.record(
        "f",
        status_code=200,
        response_time_ms=0.2345,
        headers=Headers({"server-timing": "predict;dur=0.001, handler;dur=0.004"}),
        wall_second=100,
    )
    recorder.record(
        "f",
        status_code=200,
        response_time_ms=40.0,
        headers=Headers({"X-Emulator-Init-Duration-Ms": "31.5"}),
        wall_second=100,
    )
    recorder.record("f", status_code=0, response_time_ms=1.0, headers=None, wall_second=101)
    throttled = Headers({"X-Emulator-Throttled": THROTTLE_REASON})
    recorder.record("f", status_code=500, response_time_ms=1.0, headers=throttled, wall_second=101)
    recorder.record("f", status_code=500, response_time_ms=1.0, headers=Headers(), wall_second=101)
    record = recorder.endpoints["f"]
    assert record.counters["lambda_throttles"] == 1 and record.outcomes["5xx"] == 2
    assert record.counters["lambda_throttles_429"] == 0
    assert record.counters["sent"] == 5 == sum(record.outcomes.values())
    assert record.outcomes["2xx"] == 2 and record.outcomes["connection_error"] == 1
    assert record.series["e2e"].summary().min == pytest.approx(234.0, abs=1)  # µs, not a whole ms
    assert record.series["handler"].summary().p50 == 4.0
    assert record.series["cold_init_duration"].summary().p50 == pytest.approx(31500, rel=1e-3)
    assert record.series["cold_handler_init"].count == 0  # the header never stands in for it
    assert record.series["cold_e2e"].count == 1
    assert record.timeline[100].requests == 2 and record.timeline[100].cold_starts == 1
    assert record.timeline[101].errors == 3


def test_each_init_figure_has_its_own_series_and_either_makes_a_cold_start():
    recorder = RunRecorder()
    answers = [
        {"Server-Timing": "handler;dur=0.004, init;dur=250.0"},  # the handler's own only
        {"X-Emulator-Init-Duration-Ms": "300.0"},  # the emulator's only
        {"Server-Timing": "handler;dur=0.004, init;dur=200.0", "X-Emulator-Init-Duration-Ms": "400.0"},
        {"Server-Timing": "handler;dur=0.004"},  # warm
    ]
    for headers in answers:
        recorder.note_sent("f")
        recorder.record("f", status_code=200, response_time_ms=500.0, headers=Headers(headers), wall_second=7)
    record = recorder.endpoints["f"]
    handler_init, init_duration = record.series["cold_handler_init"], record.series["cold_init_duration"]
    assert handler_init.count == 2 and init_duration.count == 2
    assert (handler_init.summary().min, handler_init.summary().max) == pytest.approx(
        (200_000, 250_000), rel=1e-3
    )
    assert (init_duration.summary().min, init_duration.summary().max) == pytest.approx(
        (300_000, 400_000), rel=1e-3
    )
    assert record.series["cold_e2e"].count == 3 and record.timeline[7].cold_starts == 3


def test_worker_payloads_add_up_exactly_on_the_master():
    workers = [RunRecorder(), RunRecorder()]
    rng = random.Random(7)
    for index, worker in enumerate(workers):
        for _ in range(500 + index * 100):
            worker.note_sent("f")
            worker.record(
                "f",
                status_code=rng.choice([200, 200, 200, 429, 503]),
                response_time_ms=rng.uniform(0.1, 5.0),
                headers=Headers({"Server-Timing": f"handler;dur={rng.uniform(0.001, 0.05)}"}),
                wall_second=1000 + rng.randrange(3),
            )
    expected_e2e = workers[0].endpoints["f"].series["e2e"].summary().count
    expected_e2e += workers[1].endpoints["f"].series["e2e"].summary().count
    master = RunRecorder()
    # Two reports from each worker: one mid-run (drained) and a final empty one.
    for number, worker in enumerate(workers):
        master.add_payload(f"w{number}", worker.drain())
        master.add_payload(f"w{number}", worker.drain(final=True))
    record = master.endpoints["f"]
    assert record.counters["sent"] == 1100 == sum(record.outcomes.values())
    assert record.series["e2e"].count == expected_e2e == 1100
    assert sum(second.requests for second in record.timeline.values()) == 1100
    assert master.workers_final == {"w0", "w1"}
    assert set(record.outcomes) == set(OUTCOMES)


def test_the_pure_modules_do_not_import_locust():
    # Importing Locust monkey-patches the whole process with gevent: never in the test runner.
    import sys

    assert "locust" not in sys.modules


def test_fixed_and_poisson_schedules_keep_the_rate():
    fixed = intended_instants(1000, "fixed", 0, random.Random(1))
    instants = [next(fixed) for _ in range(5)]
    assert instants == [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000]
    poisson = intended_instants(1000, "poisson", 0, random.Random(1))
    many = [next(poisson) for _ in range(20_001)]
    assert many[-1] / 20_000 == pytest.approx(1_000_000, rel=0.03)
    with pytest.raises(ValueError):
        next(intended_instants(0, "fixed", 0, random.Random(1)))


def test_wait_until_sleeps_coarsely_then_spins_with_a_fake_clock():
    now = [0]
    sleeps: list[float] = []

    def clock() -> int:
        return now[0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += int(seconds * 1e9) if seconds else 100_000

    woke = wait_until(5_000_000, spin_ns=1_000_000, clock=clock, sleep=sleep)
    assert woke >= 5_000_000
    assert sleeps[0] == pytest.approx(0.004)  # coarse: up to the spin window
    assert all(seconds == 0 for seconds in sleeps[1:])  # then yield-and-check


def test_scenario_plans():
    def options(scenario, **overrides):
        base = dict(users=2, spawn_rate=2, run_time_s=10, step_time_s=5, steps=3, spike_users=None)
        return ScenarioOptions(scenario=scenario, **{**base, **overrides})

    assert [s.users for s in plan(options("step"))] == [2, 4, 6]
    assert [s.users for s in plan(options("spike"))] == [2, 20, 2]
    assert plan(options("soak", run_time_s=None))[0].duration_s == 1800
    assert plan(options("steady", run_time_s=None))[0].duration_s is None
    stages = plan(options("step"))
    assert stage_at(stages, 0)[0] == 0 and stage_at(stages, 7)[0] == 1 and stage_at(stages, 15) is None


def test_function_option_and_prediction_parsing():
    assert parse_functions(None) == (("staging/logitModel", 1.0),)
    assert parse_functions(["/staging/a:3", "staging/b"]) == (("staging/a", 3.0), ("staging/b", 1.0))
    assert parse_functions("staging/a,staging/b:2") == (("staging/a", 1.0), ("staging/b", 2.0))
    for bad in (["staging/a:x"], ["staging/a:-1"], [":2"]):
        with pytest.raises(OptionError):
            parse_functions(bad)
    assert prediction_of('{"prediction": 0.25, "model": "abc"}') == 0.25
    assert prediction_of("Prediction 0.10652960571858628") == pytest.approx(0.10652960571858628)
    assert prediction_of("nonsense") is None
    # one parser (bench.requests.prediction) beneath: a non-number prediction is None, not a float
    assert (
        prediction_of('{"prediction": {"a": 0.5}}') is None and prediction_of('{"prediction": true}') is None
    )
    assert prediction_of('[{"prediction": 1}]') is None and prediction_of("{") is None


@pytest.mark.slow
def test_truth_server_busy_waits_and_rejects_bad_input(tmp_path):
    import json
    import urllib.error
    import urllib.request

    from bench.truth.check import start_truth_server

    server, base = start_truth_server(tmp_path / "truth.out")
    with server:
        with urllib.request.urlopen(f"{base}/truth/1500", timeout=10) as response:
            timing = response.headers["Server-Timing"]
        assert timing.startswith("handler;dur=") and 1.5 <= float(timing.split("=")[1]) < 3.0
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{base}/truth/abc", timeout=10)
        assert error.value.code == 400 and "not an integer" in json.load(error.value)["message"]
