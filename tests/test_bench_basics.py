import json
from pathlib import Path

import pytest

from bench.latency import LatencyRecorder
from bench.results import ResultsError, read_results, write_json_atomic
from bench.servertiming import duration_ns, parse_server_timing
from tests.conftest import run_module


def test_server_timing_parser():
    header = "predict;dur=0.001234, handler;dur=0.0031, init;dur=812.5"
    assert parse_server_timing(header) == {"predict": 0.001234, "handler": 0.0031, "init": 812.5}
    assert duration_ns(parse_server_timing(header), "predict") == 1234
    assert duration_ns({}, "predict") is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {}),
        ("cache;desc=hit", {}),
        ('db;dur="53.2";desc="x"', {"db": 53.2}),
        ("a;desc=1;dur=2", {"a": 2.0}),
        ("a;dur=abc, b;dur=1", {"b": 1.0}),
        ("a;dur=nan, b;dur=-1", {}),
        (" ;dur=1", {}),
    ],
)
def test_server_timing_parser_edge_cases(header, expected):
    assert parse_server_timing(header) == expected


def test_recorder_keeps_sub_millisecond_precision_in_us():
    recorder = LatencyRecorder("us")
    for nanoseconds in (180_000, 210_000, 250_000, 900_000):
        recorder.record_ns(nanoseconds)
    summary = recorder.summary()
    assert summary.count == 4
    assert summary.p50 == pytest.approx(210, rel=1e-3)
    assert summary.max == pytest.approx(900, rel=1e-3)
    assert summary.min == pytest.approx(180, rel=1e-3)


def test_recorder_in_ns_resolves_single_microseconds():
    recorder = LatencyRecorder("ns")
    for nanoseconds in range(1_000, 3_001):
        recorder.record_ns(nanoseconds)
    assert recorder.summary().p50 == pytest.approx(2.0, rel=2e-3)  # µs


def test_encoded_histograms_merge_exactly():
    a, b = LatencyRecorder(), LatencyRecorder()
    for value in range(1, 1001):
        a.record_ns(value * 1000)
    for value in range(1001, 3001):
        b.record_ns(value * 1000)
    merged = LatencyRecorder.decode(a.encode())
    merged.add_encoded(b.encode())
    assert merged.count == 3000
    assert merged.summary().p50 == pytest.approx(1500, rel=1e-3)
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(LatencyRecorder("ns"))


def test_results_round_trip_and_version_check(tmp_path: Path):
    golden = json.loads((Path(__file__).parent / "golden" / "inprocess-v1.json").read_text())
    path = write_json_atomic(tmp_path / "r.json", golden)
    assert read_results(path) == golden
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    path.write_text(json.dumps({**golden, "schema_version": 99}))
    with pytest.raises(ResultsError, match="schema_version 99 is not supported"):
        read_results(path)
    path.write_text(json.dumps({"kind": "mystery", "schema_version": 1}))
    with pytest.raises(ResultsError, match="unknown results kind 'mystery'"):
        read_results(path)
    path.write_text("{not json")
    with pytest.raises(ResultsError, match="not JSON"):
        read_results(path)


def test_atomic_write_leaves_the_old_file_when_serialization_fails(tmp_path: Path):
    path = write_json_atomic(tmp_path / "r.json", {"kind": "inprocess", "schema_version": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"value": float("nan")})
    assert json.loads(path.read_text())["kind"] == "inprocess"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.slow
def test_inprocess_cli_measures_and_writes_results(models_dir: Path, tmp_path: Path):
    results = tmp_path / "inprocess.json"
    completed = run_module(
        "bench.inprocess",
        "--variants", "tutorial,lean",
        "--calls", "300",
        "--warmup", "20",
        "--models", str(models_dir),
        "--results", str(results),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    document = read_results(results)
    rows = {row["name"]: row for row in document["variants"]}
    assert set(rows) == {"tutorial", "lean"}
    assert rows["lean"]["handler_us"]["count"] == 300
    assert rows["lean"]["predict_us"]["count"] == 300
    assert rows["tutorial"]["predict_us"] is None
    assert rows["tutorial"]["speedup_vs_tutorial"] == 1.0
    assert rows["lean"]["handler_us"]["p50"] < rows["tutorial"]["handler_us"]["p50"]
    assert "lean" in completed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variants", "bogus"], "unknown variant 'bogus'"),
        (["--calls", "0"], "must be at least 1"),
        (["--models", "/nonexistent"], "no manifest.json"),
    ],
)
def test_inprocess_cli_rejects_bad_arguments(args, message):
    completed = run_module("bench.inprocess", *args)
    assert completed.returncode == 2
    assert message in completed.stderr


def test_the_main_jobs_summary_has_the_power_tuning_sweep(tmp_path: Path):
    import shutil

    from bench.pipeline import PipelineConfig, Plan, summary
    from bench.results import PowertuneRun, read_document

    plan = Plan.default(target_ms=1.0)
    assert plan.powertune_memory == "256,1024,1769" and not Plan.quick(1.0).powertune_memory
    golden = Path(__file__).parent / "golden" / "powertune-v3.json"
    path = tmp_path / "powertune.json"
    shutil.copy(golden, path)
    sweep = read_document(path)
    assert isinstance(sweep, PowertuneRun)
    text = summary(PipelineConfig(Path("models"), None, tmp_path, plan), [path])
    assert "power tuning (256, 1024, 1769 MB; warm Duration p99 <= 1 ms):" in text
    for function in sweep.functions:  # PASS, FAIL or "cannot be judged: …", with the recommendation
        cost = next(r for r in function.recommendations if r.strategy == sweep.strategy)
        word = "cannot be judged" if function.status == "INVALID" else function.status
        assert f"  {function.function}: {word}: {cost.message}" in text
    assert "no size passes" not in text
