"""bench.hardening.faults, one round: every fault through the gateway and the Invoke API gets
AWS's answer, the next request succeeds, and SIGINT leaves no process behind. The benchmark
runs more rounds; figures in docs/reliability.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.hardening.faults import FAULTS
from tests.conftest import run_module


@pytest.mark.slow
def test_one_round_of_every_fault_is_survived(tmp_path: Path):
    results = tmp_path / "faults.json"
    completed = run_module("bench.hardening.faults", "--rounds", "1", "--results", str(results), timeout=180)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    document = json.loads(results.read_text())
    assert document["kind"] == "faults" and document["status"] == "PASS"
    assert document["injected"] == document["expected_answer"] == document["recovered"] == 2 * len(FAULTS)
    assert document["leftover_processes"] == 0 and document["emulator_exit_code"] == 0
    # every fault that kills or never finishes an environment makes the next request start another
    assert document["environments_started"] >= 5
