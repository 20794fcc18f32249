"""Overload: bench.hardening.overload end to end, bounded for CI, and its analysis by hand.

The benchmark run (3x capacity for 30 s) is ``python -m bench.hardening.overload``; figures in
docs/reliability.md. Here: 3 s per stage at a small capacity, checking what must hold on any
machine (every request accounted for, the excess refused, no failure, nothing left running);
the latency goals are judged by the benchmark, not asserted here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
import pytest

from bench.hardening.overload import Plan, analyse, recovery_seconds
from bench.load.recorder import Second
from bench.load.results import RunFacts, _stages
from bench.verdict import Limits, Threshold
from tests.conftest import run_module

PLAN = Plan("logit-lean", 100.0, 3.0, 0.25, 3.0, 2.0, 2.0, 5.0, 64.0)


@pytest.mark.slow
def test_a_short_overload_run_accounts_for_every_request_and_refuses_the_excess(
    models_dir: Path, tmp_path: Path
):
    out = tmp_path / "overload"
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    completed = run_module(
        "bench.hardening.overload", "--capacity", "100", "--overload-s", "3", "--warm-s", "2", "--pin",
        "--models", str(models_dir), "--out", str(out), timeout=240,
    )  # fmt: skip
    assert completed.returncode in (0, 1), completed.stdout[-2000:] + completed.stderr[-2000:]
    document = json.loads((out / "overload.json").read_text())
    assert document["kind"] == "overload" and document["capacity_rps"] == 100.0
    goals = {gate["name"]: gate for gate in document["gates"]}
    assert goals["accounted"]["status"] == "PASS" and goals["no failures"]["status"] == "PASS", goals
    assert document["sent"] == sum(document["outcomes"].values())
    overload = document["stages"]["overload"]
    assert overload["throttled"] > 0  # 300 req/s offered, 100 admitted
    assert 0.5 * 100 * 3 <= overload["ok"] <= 1.5 * 100 * 3 + 10  # about the capacity, plus the burst
    assert document["gateway_rss_mib"]["samples"] > 10
    if len(os.sched_getaffinity(0)) >= 2:
        placement = document["cpu_placement"]
        assert placement["generator_cpus"] and not set(placement["generator_cpus"]) & set(
            placement["server_cpus"]
        )
    assert (out / "locust-overload.json").is_file() and (out / "emulator" / "emulator.log").is_file()
    after = {child.pid for child in psutil.Process().children(recursive=True)}
    assert after <= before, "processes outlived the run"


def _row(t: int, ok: int, p99: float | None, throttled: int = 0) -> dict:
    return {"t": t, "requests": ok + throttled, "ok": ok, "ok_p99_us": p99, "throttled": throttled}


def _locust_document(recovery_p99s: list[float], rss_ok: bool = True) -> dict:
    timeline = [_row(100 + i, 25, 2_000.0) for i in range(3)]
    timeline += [_row(103 + i, 100, 3_000.0, throttled=200) for i in range(3)]
    timeline += [_row(106 + i, 25, p99) for i, p99 in enumerate(recovery_p99s)]

    def stage(name: str, start: float, end: float, ok: int, throttled: int, p99: float) -> dict:
        return {
            "name": name, "start_unix": start, "end_unix": end, "ok": ok, "throttled": throttled,
            "ok_p99_us": p99, "achieved_rps": 0, "errors": 0, "ok_p50_us": 1_000.0,
        }  # fmt: skip

    outcomes = dict.fromkeys(("4xx", "5xx", "other", "connection_error", "cancelled"), 0)
    endpoint = {
        "sent": 1_000,
        "outcomes": {"2xx": 525, "429": 475, **outcomes},
        "throttled_us": {"count": 475, "p50": 500.0, "p99": 900.0, "max": 1_500.0},
        "timeline": timeline,
        "stages": [
            stage("baseline", 100.0, 103.0, 75, 0, 2_000.0),
            stage("spike", 103.0, 106.0, 300, 475, 3_000.0),
            stage("recovery", 106.0, 106.0 + len(recovery_p99s), 150, 0, 2_000.0),
        ],
    }
    return {"endpoints": {"staging/logit-lean": endpoint}, "schedule": None}


def test_analysis_by_hand_passes_a_good_run():
    rss = [(101.0, 40 * 2**20), (104.0, 45 * 2**20), (107.0, 41 * 2**20)]
    figures = analyse(PLAN, 100.0, _locust_document([5_000.0, 2_000.0, 2_000.0, 2_000.0, 5_000.0]), rss)
    goals = {gate.name: gate.passed for gate in figures["gates"]}
    assert goals == dict.fromkeys(goals, True), figures["gates"]
    assert figures["recovery_s"] == 2.0  # the first recovery second was over 2 x 2,000 µs
    assert figures["seconds_over_bound"]["recovery"] == 2  # the first, and a later one (noise)
    assert figures["gateway_rss_mib"]["peak_during_overload"] == 45.0


def test_analysis_by_hand_fails_what_it_should():
    document = _locust_document([5_000.0] * 7 + [2_000.0] * 3)
    document["endpoints"]["staging/logit-lean"]["sent"] = 1_001  # one request lost
    rss = [(101.0, 40 * 2**20), (104.0, 200 * 2**20)]
    figures = analyse(PLAN, 100.0, document, rss)
    goals = {gate.name: gate.passed for gate in figures["gates"]}
    assert goals["accounted"] is False and goals["recovered"] is False and goals["memory bounded"] is False
    assert figures["recovery_s"] == 8.0 and figures["status"] == "FAIL"
    never = _locust_document([5_000.0] * 3)["endpoints"]["staging/logit-lean"]
    assert recovery_seconds(never, 4_000.0) is None


def test_stage_latency_comes_from_its_whole_seconds_and_counts_by_midpoint():
    seconds = {}
    for t, value in ((10, 1_000), (11, 1_000), (12, 1_000), (13, 90_000)):
        entry = seconds[t] = Second()
        entry.requests = entry.ok = 10
        for _ in range(10):
            entry.histogram.record_value(value)
            entry.ok_histogram.record_value(value)
    facts = RunFacts(
        threshold=Threshold(target_us=1_000.0),
        limits=Limits(),
        open_loop=True,
        rate=100.0,
        stages_run=[
            {"name": "a", "users": 1, "start_unix": 10.2},
            {"name": "b", "users": 2, "start_unix": 13.9},
        ],
        end_unix=15.0,
        locust_totals={},
        distributed=None,
        partial=False,
    )
    first, second = _stages(seconds, facts)
    assert first.requests == 40 and second.requests == 0  # 13.5 < 13.9: second 13 is a's
    assert first.full_seconds == 2 and first.ok_p99_us < 1_100  # seconds 11 and 12 only
