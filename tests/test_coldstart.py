"""The cold-start profiler: statistics, gates, REPORT parsing, cost and the results kinds by hand;
real runs in subprocesses (``slow``)."""

from __future__ import annotations

import base64
import io
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.coldstart.cloudwatch import format_line, summarize_reports
from bench.coldstart.config import ColdstartConfig
from bench.coldstart.endpoint import invoke_trials, summarize_endpoint
from bench.coldstart.forcing import FORCE_COLD_VARIABLE, force_cold_start
from bench.coldstart.gates import cold_gate, gates_for, warm_gate
from bench.coldstart.process import add_ratios, summarize_variant
from bench.coldstart.profiler import build_parser, format_table, parse_config
from bench.lambdacost import cost_per_million, invocation_cost
from bench.latency import LatencyRecorder
from bench.reportline import parse_report
from bench.results import ResultsError, read_document
from bench.results.coldstart import (
    ColdstartCloudwatchRun,
    ColdstartEndpointRun,
    ColdstartRun,
    EndpointTrial,
    LoggedReport,
    PhasesNs,
    ProcessTrial,
)
from bench.results.metadata import Metadata
from bench.results.reportline import ReportLine
from bench.stats import summarize
from handler.local.reportline import format_report
from tests.conftest import PROJECT_ROOT, run_module

GOLDEN = PROJECT_ROOT / "tests" / "golden"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# AWS's own format (CloudWatch Logs), cold and warm.
REPORT_COLD = (
    "REPORT RequestId: 8f5e0a3c-2b7d-4a51-9d0e-6c1f2f3a4b5c\tDuration: 2.51 ms\t"
    "Billed Duration: 321 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\tInit Duration: 318.07 ms\t"
)
REPORT_WARM = (
    "START RequestId: 1 Version: $LATEST\nEND RequestId: 1\n"
    "REPORT RequestId: 1\tDuration: 0.98 ms\tBilled Duration: 1 ms\tMemory Size: 256 MB\t"
    "Max Memory Used: 40 MB\t\n"
)


def _metadata() -> Metadata:
    return Metadata("2026-01-01T00:00:00+00:00", "test", None, "host", "cpu", 2, 1.0, "linux", {})


def _config(**changes) -> ColdstartConfig:
    settings = dict(
        variants=("lean",), trials=3, warm=0, models_dir=Path("/nonexistent"), memory_mb=128,
        cold_fraction=0.01, target_ms=1.0, cold_target_ms=100.0, results=Path("/nonexistent/r.json"),
        progress=False,
    )  # fmt: skip
    return ColdstartConfig(**{**settings, **changes})


def test_report_lines_with_and_without_init_duration():
    cold = parse_report(REPORT_COLD)
    assert cold is not None and cold.init_duration_ms == 318.07 and cold.billed_duration_ms == 321
    assert cold.duration_ms == 2.51 and cold.memory_size_mb == 128 and cold.max_memory_used_mb == 41
    assert format_report(cold) == REPORT_COLD  # the emulator writes what AWS writes
    warm = parse_report(REPORT_WARM)
    assert warm is not None and warm.init_duration_ms is None and warm.memory_size_mb == 256
    assert warm.request_id == "1" and warm.status is None
    assert parse_report("START RequestId: x\n") is None


def test_report_lines_with_a_status_round_trip():
    # As captured from Lambda (2026): no trailing tab after Status / Error Type.
    line = (
        "REPORT RequestId: 276ff3b9\tDuration: 10935.70 ms\tBilled Duration: 10936 ms\t"
        "Memory Size: 1024 MB\tMax Memory Used: 1024 MB\tStatus: error\tError Type: Runtime.OutOfMemory"
    )
    parsed = parse_report(line)
    assert parsed is not None and parsed.status == "error" and parsed.error_type == "Runtime.OutOfMemory"
    assert format_report(parsed) == line
    timeout = ReportLine.measured("r", 3000.0, 128, 60, init_duration_ms=516.31, status="timeout")
    assert timeout.billed_duration_ms == 3517 and format_report(timeout).endswith(
        "Init Duration: 516.31 ms\tStatus: timeout"
    )


def test_cost_formula_by_hand():
    # 1 ms at 128 MB: 2.1e-9 USD + 0.2e-6 per request.
    assert invocation_cost(0.3, 128) == pytest.approx(2.1e-9 + 2e-7)
    # 321 ms billed at 256 MB: 321 * 2.1e-9 * 2.
    assert invocation_cost(320.2, 256) == pytest.approx(321 * 2.1e-9 * 2 + 2e-7)
    # A million predictions, 1% of them cold (321 ms), the rest 1 ms, at 128 MB.
    expected = 1e6 * (0.99 * (2.1e-9 + 2e-7) + 0.01 * (321 * 2.1e-9 + 2e-7))
    assert cost_per_million(0.8, 320.5, 128, 0.01) == pytest.approx(expected)
    with pytest.raises(ValueError):
        cost_per_million(1, 1, 128, 1.5)


def test_statistics_median_spread_and_warnings():
    stable = summarize([10.0, 10.2, 9.8, 10.1, 9.9, 10.0], "x")
    assert stable.p50 == 10.0 and stable.min == 9.8 and stable.max == 10.2
    assert stable.mad == pytest.approx(0.1) and stable.warnings == ()
    few = summarize([1.0, 2.0], "few")
    assert any("only 2 samples" in warning for warning in few.warnings)
    noisy = summarize([10, 14, 6, 10, 15, 5], "noisy")
    assert noisy.spread > 0.1 and any("unstable" in warning for warning in noisy.warnings)


# -- the results kinds -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("coldstart-v4.json", ColdstartRun),
        ("coldstart-endpoint-v2.json", ColdstartEndpointRun),
        ("coldstart-cloudwatch-v2.json", ColdstartCloudwatchRun),
    ],
)
def test_golden_files_read_back_unchanged(name, cls):
    data = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    document = read_document(GOLDEN / name)
    assert type(document) is cls
    assert cls.from_dict(data).to_dict() == data
    assert document.to_dict() == data


def test_every_coldstart_golden_file_is_tested():
    assert sorted(path.name for path in GOLDEN.glob("coldstart-*.json")) == [
        "coldstart-cloudwatch-v2.json",
        "coldstart-endpoint-v2.json",
        "coldstart-v4.json",
    ]


def test_a_renamed_field_or_an_old_version_is_refused():
    data = json.loads((GOLDEN / "coldstart-v4.json").read_text(encoding="utf-8"))
    data["variants"][0]["cold_start_ms"] = data["variants"][0].pop("cold_start_us")
    with pytest.raises(ResultsError, match="unknown field 'cold_start_ms'"):
        ColdstartRun.from_dict(data)
    old = {**json.loads((GOLDEN / "coldstart-v4.json").read_text(encoding="utf-8")), "schema_version": 1}
    with pytest.raises(ResultsError, match="schema_version 1 is not supported"):
        ColdstartRun.from_dict(old)


def test_version_2_without_skipped_is_read_as_none_skipped():
    data = json.loads((GOLDEN / "older" / "coldstart-v3.json").read_text(encoding="utf-8"))
    del data["skipped"]
    old = ColdstartRun.from_dict({**data, "schema_version": 2})
    current = read_document(GOLDEN / "coldstart-v4.json")
    assert old.skipped == [] and old.variants == current.variants  # init_us read as start_to_ready_us
    assert old.to_dict()["schema_version"] == 4


def test_the_console_table_reads_the_typed_documents():
    process = read_document(GOLDEN / "coldstart-v4.json")
    table = format_table(process).splitlines()
    assert table[0].startswith("variant") and table[0].endswith("verdict")
    rows = {line.split()[0]: line.split() for line in table[2:4]}
    lean = next(row for row in process.variants if row.name == "lean")
    assert float(rows["lean"][1]) == pytest.approx(lean.cold_start_us.p50 / 1_000, abs=0.05)  # ms
    assert rows["lean"][-1] == lean.status
    assert all(gate.message in table for row in process.variants for gate in row.gates if not gate.passed)
    endpoint = read_document(GOLDEN / "coldstart-endpoint-v2.json")
    line = format_table(endpoint).splitlines()[0]
    first_ms = endpoint.first_request_us.p50 / 1_000
    assert line.startswith(f"{endpoint.function}: first request p50 {first_ms:.1f} ms")
    watched = read_document(GOLDEN / "coldstart-cloudwatch-v2.json")
    assert "Init Duration p50 37.1 ms" in format_line(watched)


# -- gates -----------------------------------------------------------------------------------
def test_cold_gate_fails_over_the_target_and_is_invalid_with_few_trials_under_it():
    assert cold_gate("lean cold_start_us", summarize([9_000.0] * 5), 10.0).status == "PASS"
    over = cold_gate("lean cold_start_us", summarize([11_000.0]), 10.0)
    assert over.status == "FAIL" and over.observed == 11_000.0 and over.threshold == 10_000.0
    assert over.name == "lean cold_start_us p50" and over.unit == "µs" and over.samples == 1
    few = cold_gate("lean cold_start_us", summarize([9_000.0] * 4), 10.0)
    assert few.status == "INVALID" and "only 4 trials" in few.message


def test_warm_gate_uses_the_early_stopping_bound():
    fast = LatencyRecorder("ns")
    for _ in range(459):  # p99 at 99% confidence, none over the target: 459 samples
        fast.record_ns(100_000)
    assert warm_gate("lean", fast, 1.0).status == "PASS"
    short = LatencyRecorder("ns")
    short.record_ns(100_000)
    gate = warm_gate("lean", short, 1.0)
    assert gate.status == "INVALID" and gate.details["samples_needed"] == 458
    assert gate.name == "lean warm_us p99"
    slow = LatencyRecorder("us")
    slow.record_ns(2_000_000)
    assert warm_gate("lean", slow, 1.0).status == "FAIL"
    # --warm 0: no warm gate; no cold target: no cold gate.
    assert gates_for("f", "first_request_us", summarize([1.0]), LatencyRecorder(), 1.0, None, 0) == []


# -- process mode, by hand --------------------------------------------------------------------
def _process_trial(cold_ms: float, first_invoke_us: int, warm_us: list[int]) -> ProcessTrial:
    warm = LatencyRecorder("ns")
    for value in warm_us:
        warm.record_ns(value * 1_000)
    return ProcessTrial(
        cold_start_ns=int(cold_ms * 1_000_000),
        phases_ns=PhasesNs(5_000_000, 1_000_000, 2_000_000, 300_000, first_invoke_us * 1_000),
        imports_ns={"numpy": int(cold_ms * 100_000)},
        warm_histogram_ns=warm.encode() if warm.count else "",  # as the child writes it
        peak_rss_kb=20_480,
    )


def test_process_summary_in_us_with_its_gates():
    trials = [_process_trial(10.0, 40, [2, 3]), _process_trial(12.0, 20, [3]), _process_trial(11.0, 30, [])]
    row = summarize_variant("lean", trials, _config(warm=2, cold_target_ms=10.0))
    assert row.cold_start_us.p50 == 11_000.0 and row.cold_start_us.min == 10_000.0
    assert row.phases_us.interpreter == 5_000.0 and row.phases_us.first_invoke == 30.0
    assert row.imports_us == {"numpy": 1_100.0} and row.start_to_ready_us == 11_000.0 - 30.0
    assert (
        row.warm_us.count == 3
        and row.warm_us.p50 == pytest.approx(3.0, rel=1e-3)
        and row.warm_us.unit == "ns"
    )
    assert row.peak_rss_mb == 20.0 and row.model_bytes is None
    assert row.cost_per_million_usd == round(cost_per_million(row.warm_us.p50 / 1_000, 11.0, 128, 0.01), 4)
    assert [gate.status for gate in row.gates] == ["INVALID", "FAIL"] and row.status == "FAIL"
    tutorial = summarize_variant("tutorial", [_process_trial(110.0, 30, [30])], _config(warm=1))
    lean, _tutorial = add_ratios([row, tutorial])
    assert lean.cold_speedup_vs_tutorial == 10.0 and lean.warm_speedup_vs_tutorial == 10.0
    assert add_ratios([row]) == [row]  # no tutorial, no ratios


# -- endpoint mode, with a fake Lambda client --------------------------------------------------
class FakeLambda:
    """A Lambda client that answers as the Invoke API does, from a list of REPORT lines."""

    def __init__(self, reports: list[ReportLine]) -> None:
        self.reports, self.variables, self.calls = iter(reports), {"MODEL_URI": "x"}, []

    def get_function_configuration(self, FunctionName):
        return {"Environment": {"Variables": dict(self.variables)}}

    def update_function_configuration(self, FunctionName, Environment):
        self.variables = Environment["Variables"]
        self.calls.append("update")

    def get_waiter(self, name):
        assert name == "function_updated"
        return SimpleNamespace(wait=lambda FunctionName: self.calls.append("wait"))

    def invoke(self, FunctionName, Payload, LogType=None):
        self.calls.append(f"invoke {LogType or ''}".strip())
        answer = {"Payload": io.BytesIO(b"{}")}
        if LogType == "Tail":
            answer["LogResult"] = base64.b64encode(format_report(next(self.reports)).encode()).decode()
        return answer


def test_force_cold_start_changes_one_variable_and_waits():
    client = FakeLambda([])
    force_cold_start(client, "f", "tag-1")
    assert client.variables == {"MODEL_URI": "x", FORCE_COLD_VARIABLE: "tag-1"}
    assert client.calls == ["update", "wait"]


def test_endpoint_trials_leave_out_the_ones_without_init_duration():
    reports = [
        ReportLine.measured("a", 2.0, 128, 30, init_duration_ms=100.0),
        ReportLine.measured("b", 2.0, 128, 31),  # the Invoke API reported no INIT
        ReportLine.measured("c", 2.0, 128, 29, init_duration_ms=120.0),
    ]
    client, clock = FakeLambda(reports), itertools.count(step=1_000_000).__next__  # 1 ms a reading
    config = _config(function="f", warm=2, cold_target_ms=None)
    trials, warm, outcomes = invoke_trials(client, config, clock=clock)
    assert client.calls == ["update", "wait", "invoke Tail", "invoke", "invoke"] * 3
    assert [trial.first_request_ns for trial in trials] == [1_000_000] * 3 and warm.count == 6
    assert outcomes["2xx"] == 9 and sum(outcomes.values()) == 9
    document = summarize_endpoint(trials, warm, config, _metadata(), outcomes)
    assert document.init_duration_us is not None and document.trials_with_init_duration == 2
    assert document.init_duration_us.p50 == 110_000.0  # not the median of (0, 100, 120) ms
    assert document.first_request_us.p50 == 1_000.0 and document.billed_cold_us.p50 == 102_000.0
    assert document.peak_rss_mb == 31 and document.memory_mb == 128
    assert [gate.name for gate in document.gates] == ["f error rate", "f warm_us p99"]  # no cold target
    none = [EndpointTrial(5_000_000, ReportLine.measured("w", 1.0, 128, 30))]
    without = summarize_endpoint(none, warm, config, _metadata())
    assert without.init_duration_us is None and without.trials_with_init_duration == 0
    assert "no Init Duration on 0/1 trials" in format_table(without)


def test_endpoint_failures_fail_the_run_with_the_error_share_first():
    class Failing(FakeLambda):
        def invoke(self, FunctionName, Payload, LogType=None):
            return {**super().invoke(FunctionName, Payload, LogType), "FunctionError": "Unhandled"}

    reports = [ReportLine.measured(f"r{i}", 1.0, 128, 30, init_duration_ms=50.0) for i in range(2)]
    client, clock = Failing(reports), itertools.count(step=1_000).__next__
    config = _config(function="f", trials=2, warm=3, cold_target_ms=None)
    trials, warm, outcomes = invoke_trials(client, config, clock=clock)
    assert trials == [] and outcomes["function_error"] == 8 and outcomes["2xx"] == 0
    document = summarize_endpoint(trials, warm, config, _metadata(), outcomes)
    assert (
        document.status == "FAIL"
        and document.first_request_us is None
        and document.cost_per_million_usd is None
    )
    first = document.gates[0]
    assert first.check == "errors" and first.status == "FAIL"
    assert first.message.startswith("FAIL: f: 8 of 8 requests failed (function_error 8)")
    assert format_table(document).splitlines()[1] == first.message


def test_endpoint_mode_takes_a_cold_target_only_when_given(tmp_path):
    models = ("--models", str(tmp_path))
    config, _ = parse_config(build_parser(), ["--function", "f", "--endpoint", "http://x", *models])
    assert config.cold_target_ms is None and config.lambda_endpoint == "http://x" and config.function == "f"
    given = ["--function", "f", "--cold-target-ms", "50", *models]
    assert parse_config(build_parser(), given)[0].cold_target_ms == 50.0
    (tmp_path / "manifest.json").write_text("{}")
    process, _ = parse_config(build_parser(), list(models))
    assert process.cold_target_ms == 100.0 and process.function is None


# -- CloudWatch, by hand ---------------------------------------------------------------------
def test_cloudwatch_summary_in_us():
    lines = [ReportLine.measured("a", 2.5, 128, 40, init_duration_ms=37.1)]
    lines += [ReportLine.measured(f"w{i}", 0.5 + i / 100, 128, 41) for i in range(9)]
    logged = [LoggedReport(timestamp_ms=1_000 + i, report=line) for i, line in enumerate(lines)]
    document = summarize_reports("watched", logged, 0, 2_000, _metadata())
    assert document.invocations == 10 and document.cold_invocations == 1 and document.cold_share == 0.1
    assert document.init_duration_us is not None and document.init_duration_us.p50 == pytest.approx(37_100.0)
    assert document.cold_start_us is not None and document.cold_start_us.p50 == pytest.approx(39_600.0)
    assert document.warm_us.count == 9 and document.warm_us.p50 == 540.0 and document.peak_rss_mb == 41
    assert document.billed_ms_total == 40 + 9
    warm_only = summarize_reports("watched", logged[1:], 0, 2_000, _metadata())
    assert warm_only.init_duration_us is None and warm_only.cold_start_us is None
    assert "no Init Duration" in format_line(warm_only)
    assert ColdstartCloudwatchRun.from_dict(document.to_dict()) == document


# -- real runs ------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_trials_of_two_variants(models_dir, tmp_path):
    results = tmp_path / "cold.json"
    completed = run_module(
        "bench.coldstart",
        *("--variants", "lean,json-numpy", "--trials", "2", "--warm", "250"),
        *("--models", str(models_dir), "--cold-target-ms", "100000", "--target-ms", "1000"),
        *("--results", str(results), "--no-progress"),
    )
    assert completed.returncode == 3, completed.stderr  # INVALID: 2 trials cannot claim the cold p50
    assert completed.stderr == ""
    document = read_document(results)
    assert isinstance(document, ColdstartRun) and document.status == "INVALID"
    assert [row.name for row in document.variants] == ["lean", "json-numpy"]
    for row in document.variants:
        assert row.cold_start_us.samples == 2 and [gate.status for gate in row.gates] == ["PASS", "INVALID"]
        assert row.warm_us.count == 500 and row.warm_us.p50 > 0
        assert row.peak_rss_mb > 5 and row.cost_per_million_usd > 0.2
        assert 1_000 < row.cold_start_us.p50 < 10_000_000  # µs
    assert "numpy" in document.variants[1].imports_us
    for trials in document.trials.values():
        for trial in trials:
            phases = [getattr(trial.phases_ns, name) for name in ("interpreter", "load", "first_invoke")]
            assert trial.phases_ns.imports + trial.phases_ns.handler_code + sum(phases) <= trial.cold_start_ns
            assert min(phases) > 0 and trial.phases_ns.imports >= 0
    assert "lean" in completed.stdout and "warm p50" in completed.stdout
    # Five trials pass; a miss fails, whatever the number of trials.
    passed = run_module(
        "bench.coldstart",
        *("--variants", "lean", "--trials", "5", "--warm", "100", "--models", str(models_dir)),
        *("--cold-target-ms", "100000", "--target-ms", "1000", "--no-progress"),
        *("--results", str(tmp_path / "pass.json")),
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    missed = run_module(
        "bench.coldstart",
        *("--variants", "lean", "--trials", "1", "--warm", "10", "--models", str(models_dir)),
        *("--cold-target-ms", "0.001", "--results", str(tmp_path / "miss.json"), "--no-progress"),
    )
    assert missed.returncode == 1 and "FAIL: lean cold_start_us p50" in missed.stdout


@pytest.mark.slow
def test_importtime_names_the_slow_imports(models_dir):
    completed = run_module("bench.coldstart", "--importtime", "json-numpy", "--models", str(models_dir))
    assert completed.returncode == 0, completed.stderr
    names = [line.split("ms", 1)[1].strip() for line in completed.stdout.splitlines()]
    assert "numpy" in names


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--variants", "nope"), "unknown variant"),
        (("--trials", "0"), "must be at least 1"),
        (("--cold-fraction", "2"), "--cold-fraction"),
        (("--cold-target-ms", "0"), "the targets > 0"),
        (("--models", "/nonexistent"), "no manifest.json"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    completed = run_module("bench.coldstart", *args)
    assert completed.returncode == 2
    assert message in completed.stderr


@pytest.mark.slow
def test_endpoint_mode_forces_a_cold_start_every_trial(emulator, tmp_path):
    results = tmp_path / "endpoint.json"
    completed = run_module(
        "bench.coldstart",
        *("--function", "logit-lean", "--lambda-endpoint", emulator.base_url),
        *("--trials", "3", "--warm", "5", "--target-ms", "10000", "--cold-target-ms", "0.001"),
        *("--results", str(results), "--no-progress"),
        env=AWS_ENV,
    )
    assert completed.returncode == 1, completed.stderr  # the cold target is missed: the verdict counts
    document = read_document(results)
    assert isinstance(document, ColdstartEndpointRun) and document.status == "FAIL"
    assert [gate.status for gate in document.gates] == [
        "PASS",
        "INVALID",
        "FAIL",
    ]  # errors; 15 warm calls: too few
    assert document.trials_with_init_duration == 3 and document.init_duration_us is not None
    assert all(trial.report.init_duration_ms > 0 for trial in document.trials)
    assert document.first_request_us.p50 > document.warm_us.p50 > 0
    assert document.first_request_us.p50 > document.init_duration_us.p50  # the client time holds the INIT
    assert "FAIL: logit-lean first_request_us p50" in completed.stdout


@pytest.mark.slow
def test_sigterm_keeps_the_complete_rounds_marked_partial(models_dir, tmp_path):
    import re
    import signal
    import sys

    from bench.process import start
    from tests.conftest import wait_for

    results = tmp_path / "partial.json"
    command = [sys.executable, "-m", "bench.coldstart", "--variants", "lean,json-numpy", "--trials", "500"]
    command += ["--warm", "10", "--models", str(models_dir), "--results", str(results), "--progress"]

    def trials_done() -> int:  # the progress line on stderr: "[##...] 7/1000 lean"
        counts = re.findall(r"\] (\d+)/1000 ", (tmp_path / "stderr").read_text())
        return max(map(int, counts), default=0)

    with start(command, tmp_path / "stdout", stderr=tmp_path / "stderr") as process:
        wait_for(lambda: trials_done() >= 6, 120, "three rounds of two cold-start trials")
        process.process.send_signal(signal.SIGTERM)  # the signal under test, not the stop policy
        process.wait(30)
    stderr = (tmp_path / "stderr").read_text()
    assert process.returncode == 130, stderr
    assert "marked partial" in stderr
    document = read_document(results)
    assert isinstance(document, ColdstartRun) and document.partial is True
    lean, numpy = (len(document.trials[name]) for name in ("lean", "json-numpy"))
    assert 1 <= lean == numpy < 500  # complete rounds only
    assert document.variants[0].cold_start_us.samples == lean
