"""``python -m bench.emulator_cost``: its CPU reader, its arithmetic, its CLI and one real short run."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request

import pytest

from bench.emulator_cost import (
    LEAN_ENV,
    QUERY,
    CostConfig,
    Target,
    config_toml,
    process_cpu_ns,
    summarize_target,
)
from bench.latency import LatencyRecorder
from bench.process import line_with, start
from bench.results import EmulatorCostRun, read_document
from bench.results.emulatorcost import CostRound
from tests.conftest import PROJECT_ROOT, run_module


def test_process_cpu_counts_this_process_busy_in_nanoseconds():
    before, cpu_before = process_cpu_ns(os.getpid()), time.process_time_ns()
    while time.process_time_ns() - cpu_before < 30_000_000:  # 30 ms of CPU, however long it takes
        pass
    spent, cpu_spent = process_cpu_ns(os.getpid()) - before, time.process_time_ns() - cpu_before
    assert spent >= 25_000_000 and 0.8 <= spent / cpu_spent <= 1.25, (spent, cpu_spent)


def _round(target: str, number: int, server_ns: int, environment_ns: int | None) -> CostRound:
    return CostRound(target, number, 100, server_ns, environment_ns, 5_000_000, 40_000_000, 300.0, 500.0)


def test_a_target_is_summed_over_its_rounds_per_request():
    target = Target("emulator", "http://127.0.0.1:1/x", 1, list, {"200": 200}, LatencyRecorder())
    cost = summarize_target(
        target,
        [_round("emulator", 1, 80_000_000, 30_000_000), _round("emulator", 2, 100_000_000, 40_000_000)],
    )
    assert cost.requests == 200
    assert cost.server_cpu_us_per_request == 900.0  # 180 ms over 200 requests
    assert cost.environment_cpu_us_per_request == 350.0
    assert cost.client_cpu_us_per_request == 50.0
    assert (cost.server_cpu_rounds.min, cost.server_cpu_rounds.max) == (800.0, 1_000.0)
    bare = summarize_target(target, [_round("bare", 1, 10_000_000, None)])
    assert bare.environment_cpu_us_per_request is None


def test_the_emulator_config_deploys_one_function_at_the_memory_size():
    text = config_toml(CostConfig(10, 1, 1, 1769, None), PROJECT_ROOT)
    assert (
        'name = "logit-lean"' in text
        and "memory_mb = 1769" in text
        and f'code_dir = "{PROJECT_ROOT}"' in text
    )


@pytest.mark.parametrize(
    ("args", "quoted"),
    [(["--rounds", "0"], "0"), (["--requests", "many"], "'many'"), (["--memory-mb", "64"], "64"),
     (["--models", "/nonexistent"], "'/nonexistent'")],
)  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(args, quoted):
    completed = run_module("bench.emulator_cost", *args, timeout=60)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and quoted in lines[0]
        and lines[0].startswith("python -m bench.emulator_cost: error:")
    )


@pytest.mark.slow
def test_a_short_run_against_the_real_emulator_the_floor_and_bare_server(tmp_path, models_dir):
    results = tmp_path / "cost.json"
    args = ["--requests", "200", "--warmup", "20", "--rounds", "2", "--models", str(models_dir)]
    completed = run_module("bench.emulator_cost", *args, "--results", str(results), timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert (
        "gateway CPU / bare server CPU" in completed.stdout
        and "| bare aiohttp /truth/0: server process |" in completed.stdout
        and "| floor: three aiohttp exchanges (bench.truth.proxy): environment |" in completed.stdout
        and "floor CPU / bare server CPU: " in completed.stdout
    )
    run = read_document(results)
    over_floor = f"emulator / floor: CPU {run.over_floor_cpu:.2f}x, e2e p50 {run.over_floor_e2e_p50:.2f}x "
    assert over_floor in completed.stdout
    assert isinstance(run, EmulatorCostRun)
    assert [(r.target, r.number) for r in run.round_results] == [
        ("emulator", 1), ("floor", 1), ("bare", 1), ("emulator", 2), ("floor", 2), ("bare", 2)
    ]  # fmt: skip
    assert run.metadata.resource_model.get("functions", {}).get("logit-lean", {}).get("memory_mb") == 1769
    for cost in (run.emulator, run.floor, run.bare):
        rounds = [r for r in run.round_results if r.target == cost.target]
        assert cost.statuses == {"200": 400} and cost.requests == 400 and cost.e2e_us.count == 400
        assert all(r.server_cpu_ns > 0 and r.client_cpu_ns > 0 for r in rounds)
        assert cost.server_cpu_us_per_request == pytest.approx(
            sum(r.server_cpu_ns for r in rounds) / 400 / 1e3, abs=1e-3
        )
        assert 0 < cost.e2e_us.min <= cost.e2e_us.p50 <= cost.e2e_us.p99 <= cost.e2e_us.max
        for r in rounds:  # a round's wall time holds its requests' (no CPU figure can exceed it by much)
            assert r.wall_ns >= r.requests * cost.e2e_us.min * 1_000 * 0.99
            assert r.client_cpu_ns <= r.wall_ns * 1.05
    assert all(
        r.environment_cpu_ns and r.environment_cpu_ns > 0
        for r in run.round_results
        if r.target in ("emulator", "floor")
    )
    assert run.floor.environment_cpu_us_per_request and run.floor.environment_cpu_us_per_request > 0
    assert all(r.environment_cpu_ns is None for r in run.round_results if r.target == "bare")
    assert run.bare.environment_cpu_us_per_request is None
    assert run.gateway_cpu_ratio == pytest.approx(
        run.emulator.server_cpu_us_per_request / run.bare.server_cpu_us_per_request, rel=1e-3
    )
    assert run.e2e_p50_ratio == pytest.approx(run.emulator.e2e_us.p50 / run.bare.e2e_us.p50, rel=1e-3)
    # The floor (bench.truth.proxy): the same function behind three aiohttp exchanges, its ratios kept.
    assert run.floor.url.endswith("/staging/logit-lean?G1=1&G2=0&G3=1&G4=1&G5=0&G6=0&G7=1&G8=0&G9=1&G10=0")
    assert run.floor_cpu_ratio == pytest.approx(
        run.floor.server_cpu_us_per_request / run.bare.server_cpu_us_per_request, rel=1e-3
    )
    assert run.floor_e2e_p50_ratio == pytest.approx(run.floor.e2e_us.p50 / run.bare.e2e_us.p50, rel=1e-3)
    # The ratio to the floor agrees with the two ratios to the bare server the tool computed itself.
    assert run.over_floor_cpu == pytest.approx(run.gateway_cpu_ratio / run.floor_cpu_ratio, rel=1e-2)
    assert run.over_floor_e2e_p50 == pytest.approx(run.e2e_p50_ratio / run.floor_e2e_p50_ratio, rel=1e-2)
    document = json.loads(results.read_text(encoding="utf-8"))
    assert document["schema_version"] == 2 and {"floor_cpu_ratio", "floor_e2e_p50_ratio"} <= set(document)
    # A proxied request is three HTTP exchanges and a function: it costs more than one bare one.
    assert run.emulator.e2e_us.p50 > run.bare.e2e_us.p50 and run.floor.e2e_us.p50 > run.bare.e2e_us.p50


def test_the_floor_proxy_refuses_a_malformed_env_with_exit_2():
    completed = run_module("bench.truth.proxy", "--env", "NOPE", timeout=60)
    assert completed.returncode == 2 and "'NOPE'" in completed.stderr


@pytest.mark.slow
def test_the_floor_proxy_answers_through_one_awslambdaric_and_leaves_nothing(tmp_path, models_dir):
    env = {**LEAN_ENV, "MODEL_URI": str(models_dir / "logit.json")}
    command = [sys.executable, "-m", "bench.truth.proxy", *(f"--env={k}={v}" for k, v in env.items())]
    with start(command, tmp_path / "proxy.out", ready=line_with("proxy: ")) as child:
        url = str(child.ready).split("proxy: ", 1)[1].strip() + f"/staging/logit-lean?{QUERY}"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and "prediction" in json.loads(response.read())
        environments = child.descendants()
        assert [p.cmdline()[1:4] for p in environments] == [
            ["-m", "awslambdaric", "handler.app.lambda_handler"]
        ]
        assert child.stop() == []  # SIGINT: the proxy stops its environment itself
    assert child.returncode == 0 and not any(p.is_running() for p in environments)
