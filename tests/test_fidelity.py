"""The fidelity table (bench.fidelity): AWS's figures as published, the verdicts, the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench.fidelity import reference as ref
from bench.fidelity import table
from bench.fidelity.__main__ import build_parser, config_from, table_lines
from bench.fidelity.functions import LOOP_SOURCE, run_loop_here, write_config
from bench.fidelity.measure import near_mode_fraction
from bench.latency import LatencyRecorder
from bench.results.fidelity import (
    FAIL,
    INVALID,
    PASS,
    REPORTED,
    ColdStartTrial,
    FidelityRow,
    ScalingSize,
    StabilityRound,
    ThrottleRun,
)


def test_the_aws_figures_are_the_ones_the_sources_publish():
    # pwrdrvr/lambda-throttling (docs/index.html, 2025-03-01): 5 s runs, 3.5937 ms unthrottled;
    # the wall ratios and CPU shares derived from its iterations and CPU times (bench/fidelity/reference.py)
    ratios = [round(size.wall_ratio, 2) for size in ref.THROTTLING]
    shares = [round(size.cpu_share * 100, 1) for size in ref.THROTTLING]
    assert ratios == [16.18, 7.56, 3.76, 1.82, 1.03]
    assert shares == [7.2, 13.3, 29.0, 58.0, 96.8]
    assert round(ref.stability_ratio(), 1) == 15.7
    # lambda-perf 2026-08-22: the means it publishes are the means of what it lists.
    for cold in ref.LAMBDA_PERF:
        assert sum(cold.init_durations_ms) / 10 == pytest.approx(cold.init_mean_ms, abs=0.001)
    assert [cold.duration_mean_ms for cold in ref.LAMBDA_PERF] == [1.847, 2.055]
    assert round(ref.scaling_ratio(128), 2) == 14.95 and ref.scaling_ratio(3008) == 1.0


def test_iterations_near_a_multiple_of_20_ms():
    ms = 1_000_000
    # 20, 40 and 61 ms are within 3 ms of a multiple; 3.6 ms (an unthrottled one) and 30 ms are not.
    assert near_mode_fraction([20 * ms, 40 * ms, 61 * ms, int(3.6 * ms), 30 * ms]) == pytest.approx(0.6)
    assert near_mode_fraction([]) == 0.0


def _run(memory_mb: int, ratio: float, share: float, near: float, contended: bool = False) -> ThrottleRun:
    recorder = LatencyRecorder("us")
    recorder.record_ns(3_600_000)
    return ThrottleRun(memory_mb, 1.0, 10, recorder.series(), 3600.0, share, near, 3600.0, ratio, contended)


def test_throttling_rows_judge_each_size_against_its_tolerance():
    rows = table.throttling_rows([_run(128, 16.0, 0.05, 0.9), _run(1769, 1.03, 0.97, 0.0)])
    by = {row.figure: row for row in rows}
    assert by["128 MB: mean iteration wall / unthrottled"].verdict == PASS  # 16.0 / 16.18
    assert by["128 MB: CPU share"].verdict == FAIL  # 5 % against 7.2 %: 31 % off
    assert by["128 MB: iterations within 3 ms of k x 20 ms"].verdict == PASS  # 90 % >= 80 %
    assert "1769 MB: iterations within 3 ms of k x 20 ms" not in by  # judged at 128 and 256 only
    assert by["1769 MB: CPU share"].verdict == PASS


def test_a_contended_measurement_is_invalid_with_the_reason_not_a_fail():
    rows = table.throttling_rows([_run(128, 3.0, 0.01, 0.1, contended=True)])
    judged = [row for row in rows if row.verdict != REPORTED]
    assert len(judged) == 3 and {row.verdict for row in judged} == {INVALID}
    assert all("host's other work" in row.note for row in judged)


def test_the_cpu_per_iteration_row_explains_the_mean_wall_row_and_is_not_judged():
    """AWS's own figures: at 128 MB an iteration cost 1.17x the unthrottled CPU; the mean-wall
    ratio is that over the CPU share (16.2 = 1.17 / 0.0723)."""
    aws = {size.memory_mb: size for size in ref.THROTTLING}
    assert aws[128].cpu_per_iteration_ratio == pytest.approx(1.170, abs=1e-3)
    assert aws[128].wall_ratio == pytest.approx(
        aws[128].cpu_per_iteration_ratio / aws[128].cpu_share, rel=1e-9
    )
    run = ThrottleRun(
        128, 5.0, 80, LatencyRecorder("us").series(), 60_000.0, 0.0725, 1.0, 3_600.0, 16.67, False
    )
    (row,) = [r for r in table.throttling_rows([run]) if "CPU per iteration" in r.figure]
    assert row.verdict == REPORTED and row.tolerance is None
    assert row.local == pytest.approx(60_000.0 * 0.0725 / 3_600.0, abs=1e-4)  # 1.2083: beyond the share


def test_stability_rows_name_the_farthest_round_and_pass_only_if_every_round_is_within():
    aws = ref.stability_ratio()
    rounds = [
        StabilityRound(0, n, 3, 500_000.0, 500_000.0 / r, r, 0) for n, r in enumerate((15.0, 16.5, 15.7))
    ]
    rounds += [StabilityRound(n, 1, 3, 500_000.0, 500_000.0 / r, r, 0) for n, r in ((1, 15.5), (2, 12.0))]
    one, many = table.stability_rows(rounds)
    assert one.verdict == PASS and one.local == 16.5 and one.aws == round(aws, 3)
    assert many.verdict == FAIL and many.local == 12.0 and "15.5, 12.0" in many.note


def test_the_same_rounds_are_held_against_each_published_quotient():
    """pwrdrvr's 15.7 (one 5 s run a size) and cebert's 13.1 (300 warm invocations a size,
    python3.11 x86_64) are AWS's figures for the same quotient, 16 % apart: more than the
    tolerance, so a round can PASS against one and FAIL against the other, and each row names
    its source."""
    assert round(ref.modern_ratio(128), 2) == 13.15 and ref.modern_ratio(1769) == 1.0
    assert ref.stability_ratio() / ref.modern_ratio(128) - 1 > ref.STABILITY_TOLERANCE
    rounds = [StabilityRound(0, n, 3, 500_000.0, 500_000.0 / r, r, 0) for n, r in enumerate((13.0, 13.6))]
    (pwrdrvr,) = table.stability_rows(rounds)
    (cebert,) = table.modern_stability_rows(rounds)
    assert pwrdrvr.verdict == FAIL and "pwrdrvr" in pwrdrvr.figure and pwrdrvr.local == 13.0
    assert cebert.verdict == PASS and "cebert" in cebert.figure and cebert.aws == 13.145
    assert cebert.local == 13.6  # the farthest from 13.145 (13.0 is nearer): not pwrdrvr's farthest
    assert "cebert" in cebert.aws_source and cebert.aws_date == "2025-11-30"
    assert "300 invocations" in cebert.note and "mean-wall ratios' quotient" in pwrdrvr.note
    assert "2 rounds in one emulator" in cebert.figure
    fresh = [StabilityRound(1, 1, 3, 500_000.0, 500_000.0 / 14.9, 14.9, 0)]  # one fresh emulator
    (one,) = table.modern_stability_rows(fresh)
    assert "1 emulator, one round each" in one.figure and one.verdict == FAIL  # 14.9 / 13.145 = 1.13


def test_modern_scaling_rows_divide_each_loop_by_the_1769_mb_loop_not_by_a_reference():
    def loop(memory_mb: int, mean_us: float, after_us: float = 3_600.0, contended=False) -> ThrottleRun:
        return ThrottleRun(memory_mb, 5.0, 10, LatencyRecorder("us").series(), mean_us, 0.5, 0.0,
                           3_600.0, 1.0, contended, after_us)  # fmt: skip

    base = loop(1769, 3_700.0)
    rows = table.modern_scaling_rows([loop(128, 49_000.0), loop(1024, 9_000.0), base, replace(base)])
    by = {row.figure.split(" MB")[0]: row for row in rows}
    assert len(rows) == 2 and set(by) == {"128", "1024"}  # the base (even twice) is no row of its own
    assert by["128"].local == pytest.approx(49_000 / 3_700, abs=1e-4) and by["128"].verdict == PASS
    assert by["1024"].verdict == FAIL  # 2.43 against 596.54 / 336.93 = 1.77
    assert "49.00 / 3.70 ms a loop iteration here; 4428.99 / 336.93 ms a job on AWS" in by["128"].note
    assert table.modern_scaling_rows([loop(128, 49_000.0)]) == []  # no 1,769 MB loop
    (drifted,) = table.modern_scaling_rows([loop(128, 49_000.0), loop(1769, 3_700.0, after_us=4_900.0)])
    assert drifted.verdict == INVALID and "during the 1769 MB loop" in drifted.note
    (drifted,) = table.modern_scaling_rows([loop(128, 49_000.0, after_us=4_900.0), base])
    assert drifted.verdict == INVALID and "during the 128 MB loop" in drifted.note
    # each loop steady, but the host 30 % slower during the 128 MB loop than during the 1,769 MB one
    slow = replace(loop(128, 49_000.0), unthrottled_us=4_700.0, unthrottled_after_us=4_700.0)
    (between,) = table.modern_scaling_rows([slow, base])
    assert between.verdict == INVALID and "the 128 MB loop and the 1769 MB loop after it" in between.note
    (contended,) = table.modern_scaling_rows([loop(128, 49_000.0, contended=True), base])
    assert contended.verdict == INVALID
    (contended,) = table.modern_scaling_rows([loop(128, 49_000.0), loop(1769, 3_700.0, contended=True)])
    assert contended.verdict == INVALID


def test_the_summary_counts_each_source_apart():
    """The sources were added at different times and disagree in places: the line says how each
    fared, so a count that grew with a later source does not hide an earlier one's FAILs."""

    def row(source: str, verdict: str) -> FidelityRow:
        return FidelityRow("g", f"{source} {verdict}", "x", 1.0, f"{source}/repo (url)", "d", 1.0, 1.0,
                           0.1, verdict)  # fmt: skip

    from bench.results import read_document
    from tests.test_schema import GOLDEN

    rows = [row("pwrdrvr", PASS), row("pwrdrvr", FAIL), row("cebert", PASS), row("maxday", REPORTED)]
    document = replace(read_document(GOLDEN / "fidelity-v2.json"), rows=rows, within=2, judged=3)
    assert document.by_source() == {"pwrdrvr": (1, 2), "cebert": (1, 1)}
    assert document.summary.startswith("fidelity: 2/3 within tolerance (pwrdrvr 1/2, cebert 1/1); 1 outside")


def test_lambda_perf_reports_the_host_factor_and_judges_the_cold_duration_scaled_by_it():
    # Init 2x lambda-perf's python3.12 mean; the cold Duration 2x theirs: exactly as predicted.
    init_us = ref.LAMBDA_PERF[0].init_mean_ms * 2 * 1000
    trials = [ColdStartTrial(init_us, ref.LAMBDA_PERF[0].duration_mean_ms * 2 * 1000, False)] * 3
    factor312, judged312, factor313, judged313 = table.lambda_perf_rows(trials, "3.11.7")
    assert factor312.verdict == REPORTED and factor312.ratio == 2.0 and "3.11.7" in factor312.note
    assert judged312.verdict == PASS and judged312.ratio == 1.0
    assert factor313.verdict == REPORTED and judged313.verdict == PASS  # 2.055 x 1.87 vs 3.69 ms


def test_scaling_rows_divide_by_the_3008_mb_duration():
    sizes = [ScalingSize(128, [360_000.0], 360_000.0, 0), ScalingSize(3008, [25_000.0], 25_000.0, 0)]
    (row,) = table.scaling_rows(sizes)
    assert row.local == pytest.approx(14.4) and row.verdict == PASS  # 14.4 vs 14.95
    assert table.scaling_rows(sizes[:1]) == []  # no 3,008 MB figure: nothing to divide by


def test_a_row_refuses_an_unknown_verdict():
    with pytest.raises(ValueError):
        FidelityRow("g", "f", "x", 1.0, "s", "d", 1.0, 1.0, 0.1, "MAYBE")


def test_the_command_line_quick_and_bad_input(tmp_path):
    args = build_parser().parse_args(["--quick", "--results", str(tmp_path / "f.json")])
    config = config_from(args)
    assert config.quick and config.seconds == 1.0 and config.emulators == 0 and config.cpu_tick
    assert not config_from(build_parser().parse_args(["--no-cpu-tick"])).cpu_tick
    done = subprocess.run(
        [sys.executable, "-m", "bench.fidelity", "--emulators", "-1"], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--emulators" in done.stderr


def test_the_loop_function_runs_outside_the_emulator_and_its_config_deploys_every_size(tmp_path):
    result = run_loop_here(1_000, 0.05)
    assert result["walls_ns"] and result["cpu_ns"] > 0 and result["wall_ns"] >= sum(result["walls_ns"])
    config = write_config(tmp_path, [("loop", 128), ("fib", 3008), ("hello", 128)])
    text = config.read_text()
    assert 'name = "loop-128"' in text and 'name = "fib-3008"' in text
    assert (tmp_path / "loop" / "index.py").read_text() == LOOP_SOURCE


def test_the_table_prints_one_line_per_row(tmp_path):
    from bench.results import read_document
    from tests.test_schema import GOLDEN

    document = read_document(GOLDEN / "fidelity-v2.json")
    lines = table_lines(document)
    assert len(lines) == len(document.rows) + 1
    assert document.summary.startswith(f"fidelity: {document.within}/{document.judged} within tolerance")
    assert json.loads((GOLDEN / "fidelity-v2.json").read_text())["kind"] == "fidelity"


@pytest.mark.slow
def test_quick_run_through_real_emulators_writes_a_readable_table(tmp_path):
    """The pipeline's command: every row present, each with a verdict, the results file typed.
    (Whether the rows PASS depends on the machine: docs/benchmarks.md has the figures.)"""
    from bench.results import read_document

    cgroup_root = Path("/sys/fs/cgroup/cpu")
    if os.geteuid() != 0 or not cgroup_root.is_dir():
        pytest.skip("needs root and cgroup v1's cpu hierarchy (the emulator's cgroup model)")
    results = tmp_path / "fidelity.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.fidelity", "--quick", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode in (0, 1), done.stderr
    document = read_document(results)
    figures = [row.figure for row in document.rows]
    # sizes x (ratio, share, CPU per iteration), 2 modes, stability against 2 sources,
    # lambda-perf 2 x 2, scaling 2 (epsagon's) + 4 (cebert's, from the loops)
    assert len(figures) == 5 * 3 + 2 + 2 + 2 * 2 + 2 + 4
    assert len(set(figures)) == len(figures)  # every row says which source it is held against
    assert all(run.unthrottled_after_us for run in document.throttling)  # a reference on each side
    assert all(len(round_.reference_us) == 2 for round_ in document.stability)
    assert done.stdout.rstrip().splitlines()[-1].startswith(document.summary)
    assert {row.verdict for row in document.rows} <= {PASS, FAIL, INVALID, REPORTED}
    assert [run.memory_mb for run in document.throttling] == [128, 256, 512, 1024, 1769]


def test_the_fibonacci_index_is_chosen_by_its_cost_here():
    from bench.fidelity.functions import calibrate_fib_index

    short, long = calibrate_fib_index(1_000_000), calibrate_fib_index(25_000_000)
    assert 18 <= short < long <= 33  # a longer target never picks a smaller index


def test_a_reference_that_drifts_around_a_loop_or_a_round_makes_its_speed_rows_invalid():
    """The unthrottled iteration 3.6 ms before and 4.9 ms after (36 % apart): the host's speed
    changed under the loop, so the wall and CPU-per-iteration rows cannot be judged; the CPU
    share (speed-independent) still is. A stability round whose references drifted is left out."""
    steady = ThrottleRun(128, 5.0, 80, LatencyRecorder("us").series(), 60_000.0, 0.0723, 1.0, 3_600.0,
                         16.2, False, 3_700.0)  # fmt: skip
    drifted = replace(steady, unthrottled_after_us=4_900.0)
    assert all(row.verdict != INVALID for row in table.throttling_rows([steady]))
    by = {row.figure: row for row in table.throttling_rows([drifted])}
    assert by["128 MB: mean iteration wall / unthrottled"].verdict == INVALID
    assert "3.60 ms of CPU before and 4.90 ms after" in by["128 MB: mean iteration wall / unthrottled"].note
    assert by["128 MB: CPU per iteration / unthrottled"].verdict == REPORTED
    assert "speed changed" in by["128 MB: CPU per iteration / unthrottled"].note
    assert by["128 MB: CPU share"].verdict == PASS
    aws = ref.stability_ratio()
    rounds = [
        StabilityRound(0, 1, 3, 500_000.0, 500_000.0 / aws, aws, 0, [3_600.0, 3_650.0]),
        StabilityRound(0, 2, 3, 500_000.0, 50_000.0, 10.0, 0, [3_600.0, 5_000.0]),  # drifted: left out
    ]
    (row,) = table.stability_rows([*rounds, replace(rounds[0], round=3)])
    assert row.verdict == PASS and "1 round left out (10.0)" in row.note  # 2 of 3 judged
    (half,) = table.stability_rows(rounds)  # 1 of 2 left out: not more than half, judged
    assert half.verdict == PASS
    (minority,) = table.stability_rows([rounds[0], rounds[1], replace(rounds[1], round=3)])
    assert minority.verdict == INVALID and "2 of 3 rounds" in minority.note
    (only,) = table.stability_rows(rounds[1:])
    assert only.verdict == INVALID and "every round" in only.note
