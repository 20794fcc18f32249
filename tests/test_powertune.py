"""``python -m bench.powertune``: Power Tuning's rules and cost (pure), the CLI's refusals, a real
sweep against the emulator (results, recommendation, report in headless Chromium), the restore
of the original configuration when the run is interrupted by a signal, and the AWS path's
configuration calls against a ``moto_server`` (moto cannot invoke without Docker: the
invocations are stubbed there, the updates, waiters and restore are moto's)."""

from __future__ import annotations

import io
import json
import signal
import sys
import time
import zipfile

import boto3
import pytest

from bench import process
from bench.lambdacost import cost_per_million, duration_price, invocation_cost, mean_billed_cost_per_million
from bench.powertune import measure
from bench.powertune.__main__ import main
from bench.powertune.config import PowertuneConfig
from bench.powertune.measure import Invocation, SizeSamples, summarize_size
from bench.powertune.run import host_model_refusal
from bench.powertune.session import FunctionSession, Interrupted
from bench.powertune.strategy import Candidate, balanced, pick, trimmed_mean
from bench.powertune.sweep import recommend, sweep_function
from bench.results import read_document
from bench.results.powertune import PowertuneRun
from bench.results.reportline import ReportLine
from handler.local.reportline import EmulatorLine
from tests.conftest import AWS_TEST_ENV, PROJECT_ROOT, run_module, start_emulator, wait_for


# -- Power Tuning's arithmetic (lambda/utils.js, lambda/analyzer.js), checked by hand -------------
def test_trimmed_mean_drops_int_n_times_discard_from_each_end():
    assert trimmed_mean([10, 1, 2, 3, 4, 5, 6, 7, 8, 9]) == 5.5  # drops 1, 2 and 9, 10: mean of 3..8
    assert trimmed_mean([1, 2, 3, 100]) == 26.5  # int(4 × 0.2) = 0: nothing dropped
    assert trimmed_mean([1, 2, 3, 4, 100]) == 3.0  # int(5 × 0.2) = 1 from each end
    assert trimmed_mean([1, 2, 3, 4, 100], discard=0.9) == 3.0  # clamped to 0.4: int(2.0) = 2
    assert trimmed_mean([]) == 0.0


def test_strategies_follow_power_tunings_rules_and_ties():
    sizes = [Candidate(128, 4.0, 10.0), Candidate(256, 3.0, 4.0), Candidate(512, 3.0, 2.0, False)]
    # cost: the cheapest that meets the target; 256 and 512 tie on cost, but 512 misses it
    assert pick("cost", sizes).memory_mb == 256
    assert pick("cost", sizes, require_target=False).memory_mb == 512  # a tie goes to the faster
    assert pick("speed", sizes).memory_mb == 512
    tied = [Candidate(128, 2.0, 1.0), Candidate(256, 1.0, 1.0)]
    assert pick("speed", tied).memory_mb == 256  # a tie on duration goes to the cheaper
    # balanced: 0.5 × cost / 4 + 0.5 × duration / 10 → 128: 1.0, 256: 0.575, 512: 0.475
    assert balanced(sizes, 0.5).memory_mb == 512
    assert balanced(sizes, 1.0).memory_mb == 256  # weight 1 = cost alone (first of the tie)
    assert balanced(sizes, 0.0).memory_mb == 512  # weight 0 = speed alone
    skewed = [Candidate(128, 1.0, 100.0), Candidate(1024, 8.0, 20.0)]
    # 128: 0.8 × 1/8 + 0.2 × 1 = 0.3; 1024: 0.8 × 1 + 0.2 × 0.2 = 0.84
    assert balanced(skewed, 0.8).memory_mb == 128 and balanced(skewed, 0.2).memory_mb == 1024
    assert pick("cost", [Candidate(128, 1.0, 5.0, False)]) is None
    assert pick("speed", [Candidate(128, 1.0, 0.0)]) is None  # no duration: not measured
    with pytest.raises(ValueError, match="strategy"):
        pick("cheapest", sizes)


def test_cost_prices_both_architectures_and_keeps_the_old_api():
    assert duration_price(0.3, 128) == pytest.approx(2.1e-9)  # ceil: 1 ms
    assert duration_price(10.2, 256, "arm64") == pytest.approx(11 * 1.7e-9 * 2)
    assert invocation_cost(320.2, 256) == pytest.approx(321 * 2.1e-9 * 2 + 2e-7)
    assert cost_per_million(0.8, 320.5, 128, 0.01, "arm64") == pytest.approx(
        1e6 * (0.99 * (1.7e-9 + 2e-7) + 0.01 * (321 * 1.7e-9 + 2e-7))
    )
    # mean billed ms are not rounded up again: 1.5 ms warm, 300 ms cold, 1024 MB, 1 % cold
    expected = 1e6 * ((0.99 * 1.5 + 0.01 * 300) * 2.1e-9 * 8 + 2e-7)
    assert mean_billed_cost_per_million(1.5, 300, 1024, 0.01) == pytest.approx(expected)
    with pytest.raises(ValueError, match="architecture"):
        duration_price(1, 128, "riscv")


# -- one size summarised, judged and ranked (synthetic REPORT lines) -----------------------------
def _call(duration_ms: float, memory_mb: int, init_ms: float | None = None, error: str | None = None):
    report = ReportLine.measured("id", duration_ms, memory_mb, 40, init_ms, "error" if error else None, error)
    emulator = EmulatorLine("id", duration_ms, memory_mb / 1769, "boost", 50.0 if init_ms else None, ())
    return Invocation("function_error" if error else "2xx", int(duration_ms * 1e6) + 100_000, report,
                      emulator, error)  # fmt: skip


def _samples(memory_mb: int, warm_ms: float, warm: int = 500, cold: int = 2) -> SizeSamples:
    samples = SizeSamples(memory_mb, {"2xx": 0}, [], [])
    for _ in range(cold):
        first = _call(warm_ms, memory_mb, init_ms=100.0)
        samples.count(first)
        samples.cold.append(measure.ColdTrial(first.client_ns, first.report, 50.0, False))
    for _ in range(warm):
        call = _call(warm_ms, memory_mb)
        samples.count(call)
        samples.warm.append(call)
    return samples


def test_a_size_that_runs_out_of_memory_is_a_result_not_a_crash():
    config = PowertuneConfig()
    samples = SizeSamples(128, {"2xx": 0}, [], [])
    samples.count(_call(900.0, 128, init_ms=900.0, error="Runtime.OutOfMemory"))
    size = summarize_size("f", samples, config, "x86_64")
    assert not size.fits and size.error_type == "Runtime.OutOfMemory" and size.status == "FAIL"
    assert [gate.check for gate in size.gates] == ["errors", "memory"]
    assert size.cost_per_million_usd == {} and size.warm_duration_us.count == 0


def test_the_cost_strategy_takes_the_cheapest_size_whose_percentile_meets_the_target():
    config = PowertuneConfig(target_ms=1.0, warm=500)
    sizes = [
        summarize_size("f", _samples(128, 1.8), config, "x86_64"),  # misses 1 ms
        summarize_size("f", _samples(256, 0.6), config, "x86_64"),  # meets it, 500 samples ≥ 459
        summarize_size("f", _samples(1024, 0.3), config, "x86_64"),  # meets it, costs more
    ]
    assert [size.status for size in sizes] == ["FAIL", "PASS", "PASS"]
    # every warm call bills 1 or 2 ms, cold ones ceil(100 + d); 1 % cold
    assert sizes[1].cost_per_million_usd["x86_64"] == pytest.approx(
        1e6 * ((0.99 * 1 + 0.01 * 101) * 2.1e-9 * 2 + 2e-7), rel=1e-5
    )
    assert sizes[1].cost_per_million_usd["arm64"] < sizes[1].cost_per_million_usd["x86_64"]
    ours, theirs = recommend(sizes, config, "x86_64")
    by_strategy = {r.strategy: r for r in ours}
    assert by_strategy["cost"].memory_mb == 256 and by_strategy["cost"].meets_target
    assert by_strategy["speed"].memory_mb == 1024
    assert "256 MB" in by_strategy["cost"].message and "PASS against 1 ms" in by_strategy["cost"].message
    # Power Tuning (no target; trimmed means, the cold trials trimmed away): 128 MB's 2 ms cost
    # what 256 MB's 1 ms does, and the tie goes to the faster
    theirs_cost = {r.strategy: r for r in theirs}["cost"]
    assert theirs_cost.memory_mb == 256 and theirs_cost.duration_us == pytest.approx(600, abs=1)
    assert theirs_cost.cost_per_million_usd == pytest.approx(1e6 * 2 * 2.1e-9)
    strict = PowertuneConfig(target_ms=0.1)
    missed = [summarize_size("f", _samples(mb, ms), strict, "x86_64") for mb, ms in ((128, 1.8), (1024, 0.3))]
    none = {r.strategy: r for r in recommend(missed, strict, "x86_64")[0]}["cost"]
    assert (
        none.memory_mb is None
        and "no size meets the target warm p99 ≤ 100 µs (128 MB FAIL, 1024 MB FAIL); the fastest, 1024 MB"
        in none.message
    )


def test_the_host_model_is_refused_unless_allowed():
    host = {"kind": "host", "enforced": False, "reason": "no cgroup here"}
    assert "cannot show what memory buys" in host_model_refusal(host, allow=False)
    assert host_model_refusal(host, allow=True) is None
    assert host_model_refusal({"kind": "cgroup-v1", "enforced": True}, allow=False) is None
    assert host_model_refusal({"kind": "aws"}, allow=False) is None


class _FakeLambda:
    """Records configuration calls; the waiter returns at once."""

    def __init__(self) -> None:
        self.updates: list[dict] = []

    def get_function_configuration(self, FunctionName: str) -> dict:
        return {"MemorySize": 256, "Environment": {"Variables": {"A": "1"}}, "Architectures": ["arm64"]}

    def update_function_configuration(self, FunctionName: str, **changes) -> None:
        self.updates.append(changes)

    def get_waiter(self, name: str):
        assert name == "function_updated_v2"
        return type("Waiter", (), {"wait": lambda self, FunctionName: None})()


def test_the_session_restores_memory_and_variables_only_when_it_changed_them():
    fake = _FakeLambda()
    session = FunctionSession(fake, "f").read()
    session.restore()
    assert fake.updates == [] and session.architecture == "arm64"
    session.set_memory(1024)
    session.restore()
    assert fake.updates == [
        {"MemorySize": 1024},
        {"MemorySize": 256, "Environment": {"Variables": {"A": "1"}}},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "128,512.5"], "memory size '512.5' is not a whole number of MB"),
        (["--memory", "64"], "memory size 64 MB is outside Lambda's 128–10,240 MB"),
        (["--memory", "10241"], "memory size 10241 MB is outside"),
        (["--memory", "256,256"], "memory size 256 MB is given twice"),
        (["--cold-fraction", "1.5"], "must be in [0, 1], not 1.5"),
        (["--strategy", "cheapest"], "invalid choice: 'cheapest'"),
        (["--lambda-endpoint", "localhost:3000"], "expected an http(s) URL or 'aws', not 'localhost:3000'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_value(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in last


def test_an_unknown_function_exits_2_naming_it(capsys, tmp_path):
    assert main(["--functions", "logit-lean,nope", "--results", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown function 'nope'" in err
    assert not list(tmp_path.iterdir())  # nothing written, no emulator started


# -- real processes -------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_two_size_sweep_writes_results_recommends_and_renders(models_dir, tmp_path):
    results = tmp_path / "powertune.json"
    args = ["--functions", "logit-lean", "--memory", "128,1024", "--cold-trials", "2", "--warm", "30"]
    args += ["--floor-warm", "30"]
    completed = run_module(
        "bench.powertune", *args, "--models", str(models_dir), "--results", str(results), timeout=120
    )
    assert completed.returncode in (1, 3), completed.stderr  # 30 samples cannot PASS a p99 claim
    assert completed.stderr == ""
    document = read_document(results)
    assert isinstance(document, PowertuneRun) and not document.partial
    assert document.metadata.resource_model["kind"].startswith("cgroup")
    (sweep,) = document.functions
    assert [size.memory_mb for size in sweep.sizes] == [128, 1024] and sweep.restored
    assert document.floor_function == "floor-noop"
    for size in sweep.sizes:
        assert size.fits and size.warm_duration_us.count == 30 and len(size.cold_trials) == 2
        assert size.cold_trials_run == 2 and f"{size.memory_mb:>5} MB floor (floor-noop)" in completed.stdout
        # the floor beside the Duration: two rounds of 30 warm invocations of the no-op, judged
        assert size.floor.warm_duration_us.count == 60 and len(size.floor.rounds_us) == 2
        assert size.floor.warm_duration_us.p50 > 0 and [g.check for g in size.gates][-1] == "floor"
        assert size.cold_start_us.p50 > size.init_duration_us.p50 * 0.99 > 0 and size.init_cpu_us.count == 2
        assert size.max_memory_used_mb > 5 and size.cost_per_million_usd["x86_64"] > 0.2
    assert sweep.sizes[0].cpu_share_vcpus == pytest.approx(128 / 1769, abs=1e-3)
    assert {r.strategy for r in sweep.recommendations} == {"cost", "speed", "balanced"}
    speed = next(r for r in sweep.recommendations if r.strategy == "speed")
    assert speed.memory_mb in (128, 1024) and f"speed: {speed.memory_mb} MB" in completed.stdout
    assert "logit-lean: restored MemorySize 128 MB" in completed.stdout
    report = run_module(
        "reports", str(results), "-o", str(tmp_path / "report"), "--check-browser", timeout=120
    )
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "<h2>Power tuning</h2>" in page and "logit-lean" in page and speed.message in page


def _memory(client, function: str) -> tuple[int, dict]:
    current = client.get_function_configuration(FunctionName=function)
    return current["MemorySize"], current.get("Environment", {}).get("Variables", {})


@pytest.fixture(scope="module")
def lean_emulator(models_dir, tmp_path_factory):
    """An emulator whose logit-lean runs at 1,024 MB (tests/emulator.toml)."""
    log_file = tmp_path_factory.mktemp("powertune-emulator") / "emulator.log"
    running = start_emulator(
        "--functions", "logit-lean", config=PROJECT_ROOT / "tests" / "emulator.toml", log_file=log_file,
        models=models_dir,
    )  # fmt: skip
    try:
        yield running
    finally:
        assert running.stop() == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_sweep_restores_the_original_configuration(lean_emulator, tmp_path, signum):
    client = boto3.client("lambda", endpoint_url=lean_emulator.base_url, region_name="us-east-1",
                          aws_access_key_id="t", aws_secret_access_key="t")  # fmt: skip
    before = _memory(client, "logit-lean")
    assert before[0] == 1024
    results = tmp_path / "r.json"
    command = [sys.executable, "-m", "bench.powertune", "--lambda-endpoint", lean_emulator.base_url]
    command += ["--functions", "logit-lean", "--memory", "256,512", "--cold-trials", "2", "--warm", "100000"]
    command += ["--results", str(results)]
    with process.start(command, tmp_path / "out", env=AWS_TEST_ENV, stderr=tmp_path / "err") as child:
        wait_for(lambda: _memory(client, "logit-lean")[0] != 1024, 30, "the sweep's first memory size")
        assert _memory(client, "logit-lean")[0] == 256, child.text()
        at_256 = "Memory Size: 256 MB"  # into the cold trials: an invocation at the new size
        wait_for(lambda: at_256 in lean_emulator.log_file.read_text(), 30, "an invocation at 256 MB")
        child.process.send_signal(signum)
        assert child.wait(30) == 130
    assert _memory(client, "logit-lean") == before  # memory and variables (no BENCH_FORCE_COLD)
    errors = (tmp_path / "err").read_text()
    assert "interrupted" in errors and not results.exists()
    partial = read_document(tmp_path / "r.partial.json")
    assert partial.partial and partial.functions[0].restored and partial.functions[0].sizes == []


@pytest.mark.slow
def test_a_host_model_emulator_is_refused_unless_allowed(models_dir, tmp_path):
    config = PROJECT_ROOT / "tests" / "emulator.toml"
    host = start_emulator(
        "--functions", "logit-lean", "--resource-model", "host", config=config,
        log_file=tmp_path / "emulator.log", models=models_dir,
    )  # fmt: skip
    with host.child:
        args = ["bench.powertune", "--lambda-endpoint", host.base_url, "--functions", "logit-lean"]
        args += [
            "--memory",
            "128",
            "--cold-trials",
            "1",
            "--warm",
            "5",
            "--results",
            str(tmp_path / "r.json"),
        ]
        refused = run_module(*args, env=AWS_TEST_ENV, timeout=60)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1
        assert "host resource model" in refused.stderr and "--allow-host-model" in refused.stderr
        allowed = run_module(*args, "--allow-host-model", env=AWS_TEST_ENV, timeout=60)
        assert allowed.returncode in (1, 3), allowed.stderr
        document = read_document(tmp_path / "r.json")
        assert document.metadata.resource_model["kind"] == "host"


def _moto_function(url: str, name: str) -> object:
    settings = {"endpoint_url": url, "region_name": "us-east-1"}
    settings |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    iam, client = boto3.client("iam", **settings), boto3.client("lambda", **settings)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
    client.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
        Code={"ZipFile": code.getvalue()}, MemorySize=192, Architectures=["arm64"],
        Environment={"Variables": {"KEEP": "me"}},
    )  # fmt: skip
    return client


@pytest.mark.slow
def test_the_aws_path_updates_waits_and_restores_on_success_and_interruption(moto_server, monkeypatch):
    client = _moto_function(moto_server, "tuned")
    calls = []

    # moto cannot invoke without Docker
    def fake_invoke(_client, function, clock=time.perf_counter_ns, _payload=b""):
        memory, _variables = _memory(client, function)
        calls.append(memory)
        return _call(2.0 if memory < 1024 else 0.5, memory, init_ms=80.0 if len(calls) % 6 == 1 else None)

    monkeypatch.setattr(measure, "invoke", fake_invoke)
    config = PowertuneConfig(functions=("tuned",), memory_mb=(256, 1024), cold_trials=1, warm=5, aws=True)
    sweep, stopped = sweep_function(client, "tuned", config, echo=lambda line: None, warn=pytest.fail)
    assert stopped is None and sweep.restored and sweep.architecture == "arm64"
    assert sorted(set(calls)) == [256, 1024]  # each size really was set before its invocations
    assert [size.memory_mb for size in sweep.sizes] == [256, 1024]
    assert _memory(client, "tuned") == (192, {"KEEP": "me"})

    def interrupted(*_args, **_kwargs):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(measure, "invoke", interrupted)
    sweep, stopped = sweep_function(client, "tuned", config, echo=lambda line: None, warn=pytest.fail)
    assert isinstance(stopped, Interrupted) and sweep.restored and sweep.sizes == []
    assert _memory(client, "tuned") == (192, {"KEEP": "me"})


def test_the_golden_file_is_a_real_sweep():
    document = read_document(PROJECT_ROOT / "tests" / "golden" / "powertune-v3.json")
    assert isinstance(document, PowertuneRun) and document.functions
    assert json.loads(json.dumps(document.to_dict()))["kind"] == "powertune"
    assert all(size.warm_duration_us.histogram for f in document.functions for size in f.sizes if size.fits)


def test_the_lambda_perf_reference_is_its_published_figure():
    from bench.powertune.calibrate import LAMBDA_PERF

    assert LAMBDA_PERF.mean_ms == pytest.approx(94.936)  # "acd" in data/2025/2025-12-21.json
    assert len(LAMBDA_PERF.init_durations_ms) == 10 and LAMBDA_PERF.date == "2025-12-21"
    assert (min(LAMBDA_PERF.init_durations_ms), max(LAMBDA_PERF.init_durations_ms)) == (86.3, 108.53)


@pytest.mark.slow
def test_calibrate_sets_the_emulators_init_beside_lambda_perfs(tmp_path):
    from reports.__main__ import build_report
    from reports.runs import load_runs

    results = tmp_path / "calibration.json"
    completed = run_module("bench.powertune", "--calibrate", "--results", str(results), timeout=60)
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr
    document = read_document(results)
    calibration = document.calibration
    assert document.functions == [] and calibration.trials == 10 and calibration.memory_mb == 128
    assert calibration.ratio == pytest.approx(calibration.init_duration_mean_us / 1_000 / 94.936, abs=1e-3)
    assert 0.05 < calibration.ratio < 20 and f"{calibration.ratio:.2f}x" in completed.stdout
    page = build_report(load_runs([results]), tmp_path / "report").read_text(encoding="utf-8")
    assert "Calibration against lambda-perf" in page and "2025-12-21" in page


@pytest.mark.slow
def test_an_unknown_function_behind_an_endpoint_exits_2_naming_it(lean_emulator, tmp_path):
    completed = run_module(
        "bench.powertune", "--lambda-endpoint", lean_emulator.base_url, "--functions", "nope",
        "--results", str(tmp_path / "r.json"), env=AWS_TEST_ENV, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 2 and completed.stderr.count("\n") == 1, completed.stderr
    assert "'nope': no such function" in completed.stderr and not (tmp_path / "r.json").exists()
