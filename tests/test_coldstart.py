"""The cold-start profiler: statistics, REPORT parsing and cost by hand; real runs in subprocesses."""

from __future__ import annotations

import json
import math

import pytest

from bench.lambdacost import cost_per_million, invocation_cost
from bench.stats import summarize
from handler.local.reportline import ReportLine
from tests.conftest import run_module

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


def test_report_lines_with_and_without_init_duration():
    cold = ReportLine.parse(REPORT_COLD)
    assert cold is not None and cold.init_duration_ms == 318.07 and cold.billed_duration_ms == 321
    assert cold.duration_ms == 2.51 and cold.memory_size_mb == 128 and cold.max_memory_used_mb == 41
    assert cold.format() == REPORT_COLD  # the emulator writes what AWS writes
    warm = ReportLine.parse(REPORT_WARM)
    assert warm is not None and warm.init_duration_ms is None and warm.memory_size_mb == 256
    assert warm.request_id == "1" and warm.status is None
    assert ReportLine.parse("START RequestId: x\n") is None


def test_report_lines_with_a_status_round_trip():
    # As captured from Lambda (2026): no trailing tab after Status / Error Type.
    line = (
        "REPORT RequestId: 276ff3b9\tDuration: 10935.70 ms\tBilled Duration: 10936 ms\t"
        "Memory Size: 1024 MB\tMax Memory Used: 1024 MB\tStatus: error\tError Type: Runtime.OutOfMemory"
    )
    parsed = ReportLine.parse(line)
    assert parsed is not None and parsed.status == "error" and parsed.error_type == "Runtime.OutOfMemory"
    assert parsed.format() == line
    timeout = ReportLine.measured("r", 3000.0, 128, 60, init_duration_ms=516.31, status="timeout")
    assert timeout.billed_duration_ms == 3517 and timeout.format().endswith(
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


def test_two_trials_of_two_variants(models_dir, tmp_path):
    results = tmp_path / "cold.json"
    completed = run_module(
        "bench.coldstart",
        *("--variants", "lean,json-numpy", "--trials", "2", "--warm", "50"),
        *("--models", str(models_dir), "--cold-target-ms", "100000", "--target-ms", "1000"),
        *("--results", str(results), "--no-progress"),
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    document = json.loads(results.read_text())
    assert document["kind"] == "coldstart" and document["schema_version"] == 1
    assert [row["name"] for row in document["variants"]] == ["lean", "json-numpy"]
    for row in document["variants"]:
        assert row["cold_start_ms"]["samples"] == 2 and row["verdict"] == "PASS"
        assert row["warm_us"]["count"] == 100 and row["warm_us"]["p50"] > 0
        assert row["peak_rss_mb"] > 5 and row["cost_per_million_usd"] > 0.2
    assert "numpy" in document["variants"][1]["imports_ms"]
    for trials in document["trials"].values():
        for trial in trials:
            assert sum(trial["phases_ns"].values()) <= trial["cold_start_ns"]
            assert all(value >= 0 for value in trial["phases_ns"].values())
            assert min(trial["phases_ns"][name] for name in ("interpreter", "load", "first_invoke")) > 0
    assert "lean" in completed.stdout and "warm p50" in completed.stdout
    # Interleaved, and a miss sets the exit code.
    missed = run_module(
        "bench.coldstart",
        *("--variants", "lean", "--trials", "1", "--warm", "10", "--models", str(models_dir)),
        *("--cold-target-ms", "0.001", "--results", str(tmp_path / "miss.json"), "--no-progress"),
    )
    assert missed.returncode == 1 and "cold start p50" in missed.stdout


def test_importtime_names_the_slow_imports(models_dir):
    completed = run_module("bench.coldstart", "--importtime", "json-numpy", "--models", str(models_dir))
    assert completed.returncode == 0, completed.stderr
    names = [line.split("ms", 1)[1].strip() for line in completed.stdout.splitlines()]
    assert "numpy" in names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--variants", "nope"), "unknown variant"),
        (("--trials", "0"), "must be at least 1"),
        (("--cold-fraction", "2"), "--cold-fraction"),
        (("--models", "/nonexistent"), "no manifest.json"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    completed = run_module("bench.coldstart", *args)
    assert completed.returncode == 2
    assert message in completed.stderr


def test_endpoint_mode_forces_a_cold_start_every_trial(emulator, tmp_path):
    results = tmp_path / "endpoint.json"
    completed = run_module(
        "bench.coldstart",
        *("--function", "logit-lean", "--lambda-endpoint", emulator.base_url),
        *("--trials", "3", "--warm", "5", "--results", str(results), "--no-progress"),
        env={
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(results.read_text())
    row = document["variants"][0]
    assert document["mode"] == "endpoint"
    assert row["trials_with_init_duration"] == 3
    assert all(trial["report"]["init_duration_ms"] > 0 for trial in document["trials"]["logit-lean"])
    assert row["cold_start_ms"]["p50"] > row["warm_us"]["p50"] / 1000
    assert math.isfinite(row["cost_per_million_usd"])


def test_sigterm_keeps_the_complete_rounds_marked_partial(models_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import PROJECT_ROOT

    results = tmp_path / "partial.json"
    command = [sys.executable, "-m", "bench.coldstart", "--variants", "lean,json-numpy", "--trials", "500"]
    command += ["--warm", "10", "--models", str(models_dir), "--results", str(results), "--no-progress"]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(3.0)  # a few rounds of two ~50 ms trials
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "marked partial" in stderr
    document = json.loads(results.read_text())
    assert document["partial"] is True
    lean, numpy = (len(document["trials"][name]) for name in ("lean", "json-numpy"))
    assert 1 <= lean == numpy < 500  # complete rounds only
    assert document["variants"][0]["cold_start_ms"]["samples"] == lean
