"""Verdicts that tell the whole truth, end to end: failed requests FAIL a run whatever its latency,
with the error share as the first reason (Locust, the cold-start profiler, the report), and a
load generator that fell behind its schedule makes the run INVALID (exit 3), not FAIL.

Against the emulator (tests/emulator.toml): ``always-fails`` raises on every request (API
Gateway answers 502, the Invoke API a function error), ``staging/no-such-function`` is 4xx.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.load.command import LocustCommand
from bench.results import LocustRun
from bench.results.gate import Gate, judge
from bench.verdict import Limits, contention_gate, error_gate, schedule_gate
from tests.conftest import run_command, run_module

LEAN = "staging/logit-lean"


def _locust(emulator, tmp_path: Path, *args: str) -> tuple[int, dict]:
    results = tmp_path / "locust.json"
    completed = run_command(LocustCommand(emulator.base_url, results=results, extra=args).argv(), timeout=90)
    assert results.is_file(), completed.stderr[-3000:]
    return completed.returncode, json.loads(results.read_text())


def test_the_error_gate_by_hand():
    outcomes = {
        "2xx": 1_442,
        "4xx": 0,
        "429": 0,
        "5xx": 564,
        "other": 0,
        "connection_error": 0,
        "cancelled": 3,
    }
    gate = error_gate("logitModel", outcomes, Limits())
    assert gate.status == "FAIL" and gate.samples == 2_006 and gate.details["failed"] == 564
    assert gate.message.startswith("FAIL: logitModel: 564 of 2,006 requests failed (5xx 564)")
    assert error_gate("f", {**outcomes, "5xx": 1, "2xx": 2_005}, Limits()).status == "PASS"  # 0.05 %
    assert error_gate("f", {**outcomes, "5xx": 1, "2xx": 2_005}, Limits(max_error_rate=0)).status == "FAIL"
    throttled = {**outcomes, "5xx": 0, "429": 500}
    assert error_gate("f", throttled, Limits()).status == "FAIL"
    assert error_gate("f", throttled, Limits(throttling_expected=True)).status == "PASS"
    assert error_gate("f", {"2xx": 10}, Limits(), wrong_predictions=1).status == "FAIL"  # always
    # The emulator's marked Lambda throttles are named, and fail the run all the same.
    marked = error_gate("logitModel", outcomes, Limits(), lambda_throttles=8)
    assert marked.status == "FAIL" and marked.details["lambda_throttles"] == 8
    assert marked.message.startswith(
        "FAIL: logitModel: 564 of 2,006 requests failed (5xx 564); 8 of them Lambda concurrency throttles; "
    )
    assert "lambda_throttles" not in gate.details and "throttles" not in gate.message
    # A throttle answered 429 under --throttling-expected is no failure, so it is not named.
    expected = Limits(throttling_expected=True)
    both = {**outcomes, "429": 500, "5xx": 8}
    only_5xx = error_gate("f", both, expected, lambda_throttles=508, lambda_throttles_429=500)
    assert only_5xx.details["lambda_throttles"] == 8 and "; 8 of them Lambda concurrency" in only_5xx.message
    none = error_gate("f", {**outcomes, "429": 500, "5xx": 0}, expected, lambda_throttles=500,
                      lambda_throttles_429=500)  # fmt: skip
    assert (
        none.status == "PASS" and "throttles" not in none.message and "lambda_throttles" not in none.details
    )
    counted = error_gate("f", both, Limits(), lambda_throttles=508, lambda_throttles_429=500)
    assert counted.details["lambda_throttles"] == 508  # without the option, the 429s are failures too


def _latency(status: str, observed_us: float) -> Gate:
    return Gate("f e2e p99", status, observed_us, 1_000.0, "µs", 2_000, status, {"percentile": 99.0})


def test_the_schedule_gate_by_hand():
    kept = schedule_gate("f", sent=10_000, late=5, lag_p99_us=80.0, target_us=1_000.0, limits=Limits())
    assert kept.status == "PASS" and kept.threshold == 100.0  # a tenth of the target by default
    assert kept.details["kept"] is True
    behind = schedule_gate("f", sent=2_000, late=661, lag_p99_us=15_911.0, target_us=1_000.0, limits=Limits())
    assert behind.status == "INVALID" and behind.check == "schedule"  # no verdicts to compare: decisive
    assert "fewer users per process" in behind.message and "661 of 2,000 sends late" in behind.message


def test_a_missed_schedule_is_invalid_only_where_it_could_decide_the_verdict():
    missed = {"sent": 2_000, "late": 30, "lag_p99_us": 1_220.0, "target_us": 1_000.0, "limits": Limits()}
    # FAIL from the intended instants and from the actual sends: a 40 ms p99 is the function's.
    fail = schedule_gate("f", **missed, from_sent=_latency("FAIL", 39_000.0),
                         from_intended=_latency("FAIL", 40_500.0), interval_us=10_000.0)  # fmt: skip
    assert fail.status == "PASS" and fail.details == {**fail.details, "kept": False, "decisive": False}
    assert "does not decide the verdict: FAIL from the intended instants" in fail.message
    # The lag turns a PASS into a FAIL: the verdict would be the generator's.
    decided = schedule_gate("f", **missed, from_sent=_latency("PASS", 900.0),
                            from_intended=_latency("FAIL", 2_100.0), interval_us=10_000.0)  # fmt: skip
    assert decided.status == "INVALID" and "could be the generator's" in decided.message
    # Same verdicts, but a lag over the interval between sends: not the load that was planned.
    gross = schedule_gate("f", **{**missed, "lag_p99_us": 12_000.0}, from_sent=_latency("FAIL", 39_000.0),
                          from_intended=_latency("FAIL", 51_000.0), interval_us=10_000.0)  # fmt: skip
    assert gross.status == "INVALID" and "the load was not the one planned" in gross.message
    # Kept: PASS whatever the verdicts say.
    on_time = {**missed, "late": 1, "lag_p99_us": 50.0}
    kept = schedule_gate(
        "f", **on_time, from_sent=_latency("PASS", 900.0), from_intended=_latency("FAIL", 1_100.0)
    )
    assert kept.status == "PASS" and kept.details["decisive"] is False


def test_contention_flagged_by_the_resource_model_makes_the_run_invalid_but_errors_still_fail():
    quiet = contention_gate(
        "f", measured=1_000, contended_invokes=10, inits=4, contended_inits=0, limits=Limits()
    )
    assert quiet.status == "PASS"
    busy = contention_gate(
        "f", measured=1_000, contended_invokes=80, inits=4, contended_inits=0, limits=Limits()
    )
    assert busy.status == "INVALID" and "80 of 1,000 invocations (8.0%)" in busy.message
    cold = contention_gate(
        "f", measured=1_000, contended_invokes=0, inits=4, contended_inits=3, limits=Limits()
    )
    assert cold.status == "INVALID" and "3 of 4 inits" in cold.message
    errors = error_gate("f", {"2xx": 10, "5xx": 10}, Limits())
    assert judge([busy]) == "INVALID" and judge([errors, busy]) == "FAIL"
    # Where it cannot decide the verdict, it is reported, not judged: every one of 2,001 requests
    # over a 1 ms target FAILs even were the 71 contended ones within it (p99 allows 20 over).
    counts = {
        "measured": 2_001,
        "contended_invokes": 68,
        "inits": 3,
        "contended_inits": 3,
        "limits": Limits(),
    }
    failing = Gate(
        "f e2e p99",
        "FAIL",
        51_007.0,
        1_000.0,
        "µs",
        2_001,
        "FAIL",
        {"percentile": 99.0, "over_target": 2_001},
    )
    stands = contention_gate("f", **counts, latency=failing)
    assert stands.status == "PASS" and stands.details["decisive"] is False
    assert "not decisive: FAIL even were all 71 contended requests within the target" in stands.message
    # 60 over target, 50 of them contended: without them 10, within the 20 that p99 allows.
    close = Gate(
        "f e2e p99", "FAIL", 1_200.0, 1_000.0, "µs", 2_001, "FAIL", {"percentile": 99.0, "over_target": 60}
    )
    decided = contention_gate("f", **{**counts, "contended_invokes": 47}, latency=close)
    assert decided.status == "INVALID" and decided.details["decisive"] is True
    passing = Gate(
        "f e2e p99", "PASS", 900.0, 1_000.0, "µs", 2_001, "PASS", {"percentile": 99.0, "over_target": 5}
    )
    assert contention_gate("f", **counts, latency=passing).status == "PASS"  # contention only slows down


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "outcome"), [("staging/always-fails", "5xx"), ("staging/no-such-function", "4xx")]
)
def test_locust_fails_a_run_whose_requests_fail_with_the_error_share_first(
    emulator, tmp_path, function, outcome
):
    code, document = _locust(emulator, tmp_path, "-u", "1", "-r", "1", "-t", "3s", "--function", function,
                             "--target-ms", "5")  # fmt: skip
    assert document["verdict"]["status"] == "FAIL" and code == 1
    endpoint = document["endpoints"][function]
    failed = endpoint["outcomes"][outcome]
    assert failed > 0 and endpoint["status"] == "FAIL"
    first = document["verdict"]["reasons"][0]
    assert first.startswith(
        f"FAIL: {function}: {failed:,} of {failed:,} requests failed ({outcome} {failed:,})"
    )
    headline = LocustRun.from_dict(document).headline(function)
    assert f"{failed:,}/{failed:,} failed (100.0%)" in headline and " FAIL " in headline
    report = run_module("reports", str(tmp_path / "locust.json"), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    verdicts = page[page.index("<h2>Verdicts</h2>") :]
    assert verdicts.index("requests failed") < verdicts.index("e2e_us p99")  # errors first


@pytest.mark.slow
def test_locust_names_the_lambda_throttles_among_its_failures(emulator, tmp_path):
    function = "staging/one-at-a-time"  # reserved_concurrency 1, each request sleeps 1 s
    code, document = _locust(emulator, tmp_path, "-u", "3", "-r", "3", "-t", "3s", "--function", function,
                             "--target-ms", "5")  # fmt: skip
    assert code == 1
    endpoint = document["endpoints"][function]
    (errors,) = [gate for gate in endpoint["gates"] if gate["check"] == "errors"]
    throttles = errors["details"]["lambda_throttles"]
    assert throttles > 0 and throttles == endpoint["outcomes"]["429"]  # the emulator's marked ones
    assert (
        errors["status"] == "FAIL"
        and f"; {throttles:,} of them Lambda concurrency throttles; " in (errors["message"])
    )
    headline = LocustRun.from_dict(document).headline(function)
    assert f", {throttles:,} of them Lambda concurrency throttles (see the emulator's log)" in headline


@pytest.mark.slow
def test_the_cold_start_profiler_fails_a_function_that_always_fails(emulator, tmp_path):
    results = tmp_path / "cold.json"
    completed = run_module(
        "bench.coldstart", "--endpoint", emulator.base_url, "--function", "always-fails",
        "--trials", "2", "--warm", "3", "--results", str(results), "--no-progress",
    )  # fmt: skip
    assert completed.returncode == 1, completed.stdout + completed.stderr
    document = json.loads(results.read_text())
    assert document["kind"] == "coldstart-endpoint" and document["status"] == "FAIL"
    first = document["gates"][0]
    assert first["check"] == "errors" and first["status"] == "FAIL"
    assert first["message"].startswith("FAIL: always-fails: 8 of 8 requests failed (function_error 8)")
    assert completed.stdout.splitlines()[1] == first["message"]


@pytest.mark.slow
def test_a_generator_that_cannot_keep_its_schedule_makes_the_run_invalid(emulator, tmp_path):
    # One user, one request in flight at a time, asked for 4,000 req/s from a function that
    # answers in a millisecond or more: the sends fall behind their schedule (and the function
    # is never asked for more concurrency than it has), so the figures measure the generator.
    code, document = _locust(emulator, tmp_path, "-u", "1", "-r", "1", "-t", "3s", "--function", LEAN,
                             "--arrival", "open", "--rate", "4000", "--max-inflight", "1",
                             "--target-ms", "10000")  # fmt: skip
    endpoint = document["endpoints"][LEAN]
    assert endpoint["outcomes"]["5xx"] == 0 and endpoint["missed_sends"] > 0
    assert document["verdict"]["status"] == "INVALID" and code == 3
    schedule = next(gate for gate in endpoint["gates"] if gate["check"] == "schedule")
    assert schedule["status"] == "INVALID" and "fell behind its schedule" in schedule["message"]
    assert "INVALID: the load generator fell behind" in LocustRun.from_dict(document).headline(LEAN)
