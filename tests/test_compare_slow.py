"""bench.compare on real runs: sides of three separate Locust runs against a real function
through the emulator (``docs/scripts/compare_fidelity.py`` at the smallest scale: one pair).

Same-vs-same must exit 0; a candidate whose handler does ten times the CPU work must exit 1
with the JUnit XML naming the in-handler figure. The function reports its handler's thread
CPU time (``SPIN_TIMING=cpu``): on this shared machine the wall time of the same work swings
4x between runs, and this test checks the machinery, not the machine. Even the CPU time
moves with the host's speed spells: in a CI rehearsal (2026-12-07) one handler's p50 read
978, 1,083 and 1,483 µs in its three runs and the 3x candidate's 3,033, 3,007 and 4,475 µs,
which widened the interval to 0.87x-10.1x, and 3x was not told apart. At 10x a spell of up to
about 2x in one run still leaves the interval above the 5 % gate. (The 15 % case needs
many pairs to measure a rate: that is the script's job; its counts are in docs/benchmarks.md.)
The family confidence is 99 % here, so that a correct same-vs-same comparison fails this test
at most 0.5 % of the time when the method's assumptions hold.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import PROJECT_ROOT, run_command

SCRIPT = PROJECT_ROOT / "docs" / "scripts" / "compare_fidelity.py"


@pytest.mark.slow
def test_same_versus_same_exits_0_and_a_slower_handler_exits_1_naming_the_figure(tmp_path):
    out = tmp_path / "fidelity"
    command = [sys.executable, str(SCRIPT), "--pairs", "1", "--runs", "3", "--seconds", "3"]
    command += ["--slower", "10", "--confidence", "0.99", "--timing", "cpu", "--out", str(out)]
    completed = run_command(command, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (pair,) = summary["results"]
    assert pair["same"]["exit"] == 0, pair["same"]["console"]
    assert pair["slower"]["exit"] == 1, pair["slower"]["console"]
    # The handler is 10x slower: an in-handler figure must be the one named (p50 or p99: on a busy
    # host one of the two intervals can be too wide at 3 runs a side).
    failed = pair["slower"]["failed_figures"]
    assert any(figure.startswith("in-handler") for figure in failed), pair["slower"]["console"]
    assert "3 vs 3 runs" in pair["slower"]["console"]
    compare = json.loads((out / "pair-1" / "slower-vs-base.json").read_text(encoding="utf-8"))
    assert compare["kind"] == "compare" and compare["status"] == "FAIL"
    assert len({*compare["pairs"][0]["baseline_files"], *compare["pairs"][0]["new_files"]}) == 6


@pytest.mark.slow
def test_a_bench_runs_3_folder_compares_function_by_function(tmp_path):
    """``python -m bench --quick --runs 3`` keeps three Locust runs of each function and scenario;
    its folder compared with itself pairs them function by function (3 vs 3 runs), lists the
    once-per-folder cold-start profile as not judged, exits 0 and writes a Markdown table."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "bench", "--quick", "--runs", "3", "--out", str(run_dir)]
    command += ["--models", str(tmp_path / "models")]
    completed = run_command(command, cwd=tmp_path, timeout=600)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "(run 3/3)" in completed.stdout
    for function in ("logitModel", "logit-lean"):
        for scenario in ("steady", "step"):
            names = [f"locust-{function}-{scenario}{suffix}.json" for suffix in ("", "-run2", "-run3")]
            assert all((run_dir / name).is_file() for name in names)
    markdown, results = tmp_path / "compare.md", tmp_path / "compare.json"
    compared = run_command(
        [sys.executable, "-m", "bench.compare", str(run_dir), "--", str(run_dir), "--fail-on-regression",
         "10%", "--markdown", str(markdown), "--results", str(results)],
        cwd=tmp_path,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stdout + compared.stderr
    document = json.loads(results.read_text(encoding="utf-8"))
    locust = {
        (pair["function"], pair["scenario"]): pair for pair in document["pairs"] if pair["kind"] == "locust"
    }
    assert set(locust) == {
        (f"staging/{f}", s) for f in ("logitModel", "logit-lean") for s in ("steady", "step")
    }
    assert all(len(pair["baseline_files"]) == 3 == len(pair["new_files"]) for pair in locust.values())
    assert "not judged" in compared.stdout
    table = markdown.read_text(encoding="utf-8").splitlines()
    assert "| pair | figure | baseline | new | ratio | interval | verdict |" in table
    assert any("staging/logit-lean (step;" in row for row in table)
