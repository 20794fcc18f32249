"""python -m bench.compare on synthetic results files: pairing, exit codes, JUnit XML, Markdown.

The inputs are the golden Locust and power-tuning documents with their figures set to known
per-run values, so that every verdict below is known in advance.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.compare.__main__ import main
from bench.results import CompareRun, read_document
from tests.conftest import PROJECT_ROOT, run_module

GOLDEN = Path(__file__).resolve().parent / "golden"
LOCUST = json.loads((GOLDEN / "locust-v3.json").read_text(encoding="utf-8"))
FUNCTION = next(iter(LOCUST["endpoints"]))


def locust_run(path: Path, handler_p50: float, e2e_p50: float = 5000.0, **options) -> Path:
    """The golden Locust document with its in-handler p50 and end-to-end p50 set."""
    data = copy.deepcopy(LOCUST)
    data["metadata"]["options"].update(options)
    endpoint = data["endpoints"][FUNCTION]
    endpoint["handler_us"]["p50"] = handler_p50
    endpoint["handler_us"]["p99"] = handler_p50 * 2
    for series in ("e2e_us", "e2e_intended_us"):
        if endpoint.get(series):
            endpoint[series]["p50"] = e2e_p50
            endpoint[series]["p99"] = e2e_p50 * 10
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def side(tmp_path: Path, name: str, handler_p50s: list[float], e2e: list[float] | None = None) -> Path:
    """A run folder of Locust runs, one per value."""
    folder = tmp_path / name
    for index, value in enumerate(handler_p50s):
        locust_run(folder / f"locust-f-steady-{index + 1}.json", value, (e2e or [5000.0] * 9)[index])
    return folder


def compare(tmp_path: Path, *argv: str) -> tuple[int, CompareRun]:
    results = tmp_path / "compare.json"
    code = main([*argv, "--results", str(results)])
    return code, read_document(results)  # type: ignore[return-value]


def test_same_versus_same_is_not_significant_and_exits_0(tmp_path, capsys):
    base = side(tmp_path, "base", [100.0, 104.0, 98.0], [5000.0, 5100.0, 4950.0])
    new = side(tmp_path, "new", [101.0, 97.0, 103.0], [5050.0, 4990.0, 5080.0])
    code, document = compare(tmp_path, str(base), "--", str(new), "--fail-on-regression", "10%")
    assert code == 0 and document.status == "PASS"
    (pair,) = document.pairs
    assert len(pair.baseline_files) == 3 and len(pair.new_files) == 3
    handler = next(f for f in pair.figures if f.figure == "in-handler p50")
    assert handler.significant is False and handler.words.endswith("(not significant)")
    # e2e p50/p99, in-handler p50/p99, cold request e2e p50, Init Duration p50, handler init p50
    assert document.intervals == 7
    figures = {figure.figure for figure in pair.figures}
    assert {"cold request end-to-end p50", "Init Duration p50", "handler init p50"} <= figures
    assert handler.interval_confidence == pytest.approx(1 - 0.05 / 7)
    assert "in-handler p50" in capsys.readouterr().out


def test_a_candidate_15_percent_slower_in_its_handler_exits_1_and_junit_names_the_figure(tmp_path):
    base = side(tmp_path, "base", [100.0, 101.0, 99.0])
    new = side(tmp_path, "new", [115.0, 116.0, 114.0])
    junit, markdown = tmp_path / "junit.xml", tmp_path / "comment.md"
    code, document = compare(
        tmp_path, str(base), "--", str(new), "--fail-on-regression", "5%",
        "--junit", str(junit), "--markdown", str(markdown),
    )  # fmt: skip
    assert code == 1 and document.status == "FAIL"
    handler = next(f for f in document.pairs[0].figures if f.figure == "in-handler p50")
    assert handler.words == "1.15x slower (significant)" and handler.gate.status == "FAIL"
    suite = ET.parse(junit).getroot()
    failures = suite.findall("testcase/failure")
    assert suite.get("failures") == "2" and len(failures) == 2  # p50 and p99 (set to twice p50)
    assert suite.get("tests") == "7"  # every figure of the pair (three cold ones)
    message = failures[0].get("message")
    assert "in-handler p50" in message and "baseline 100.0 µs" in message and "new 115.0 µs" in message
    assert "interval" in message
    table = markdown.read_text(encoding="utf-8").splitlines()
    assert table[2].startswith("| pair | figure | baseline | new | ratio | interval | verdict |")
    assert table[3].startswith("|---")
    assert any("in-handler p50" in row and "❌" in row for row in table)
    assert all(row.count("|") == 8 for row in table[2:] if row.startswith("| "))


def test_a_reader_that_goes_away_costs_the_console_only(tmp_path):
    """``bench.compare … | head -3``: stdout's reader is gone before anything is printed. No
    traceback; the results and the JUnit XML are written and the exit code is the verdict."""
    base = side(tmp_path, "base", [100.0, 101.0, 99.0])
    new = side(tmp_path, "new", [115.0, 116.0, 114.0])
    results, junit = tmp_path / "compare.json", tmp_path / "junit.xml"
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.compare", str(base), "--", str(new), "--fail-on-regression", "5%",
             "--results", str(results), "--junit", str(junit)],
            stdout=write_end, stderr=subprocess.PIPE, cwd=PROJECT_ROOT, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert completed.returncode == 1, completed.stderr
    assert b"Traceback" not in completed.stderr and b"BrokenPipe" not in completed.stderr
    assert read_document(results).status == "FAIL"
    assert ET.parse(junit).getroot().get("failures") == "2"


def test_an_improvement_is_reported_too(tmp_path):
    base = side(tmp_path, "base", [130.0, 131.0, 129.0])
    new = side(tmp_path, "new", [100.0, 101.0, 99.0])
    code, document = compare(tmp_path, str(base), "--", str(new), "--fail-on-regression", "10%")
    handler = next(f for f in document.pairs[0].figures if f.figure == "in-handler p50")
    assert code == 0 and handler.words == "1.30x faster (significant)"


def test_one_run_per_side_exits_3_with_the_reason(tmp_path, capsys):
    base = locust_run(tmp_path / "a.json", 100.0)
    new = locust_run(tmp_path / "b.json", 150.0)
    code, document = compare(tmp_path, str(base), "--", str(new), "--fail-on-regression", "10%")
    out = capsys.readouterr().out
    assert code == 3 and document.status == "INVALID"
    assert "at least 3 runs per side" in out and "1.50x slower (no interval)" in out
    assert main([str(base), "--", str(new), "--results", str(tmp_path / "c.json")]) == 0  # no gate


def test_unlike_runs_are_not_paired_and_the_reason_is_listed(tmp_path, capsys):
    base = [locust_run(tmp_path / f"a{i}.json", 100.0, rate=50.0) for i in range(3)]
    step = locust_run(tmp_path / "step.json", 100.0, scenario="step")
    new = [locust_run(tmp_path / f"b{i}.json", 100.0, rate=50.0) for i in range(3)]
    other_rate = locust_run(tmp_path / "fast.json", 100.0, rate=100.0)
    code, document = compare(tmp_path, *map(str, base), str(step), "--", *map(str, new), str(other_rate))
    assert code == 0 and len(document.pairs) == 1
    reasons = {item.side: item.reason for item in document.unpaired}
    assert "scenario steady" in reasons["baseline"]
    assert "load open loop 50 req/s" in reasons["new"]
    assert "not paired:" in capsys.readouterr().out


def test_nothing_to_pair_or_an_unreadable_file_is_bad_input(tmp_path):
    base = locust_run(tmp_path / "a.json", 100.0, rate=50.0)
    new = locust_run(tmp_path / "b.json", 100.0, rate=10.0)
    completed = run_module("bench.compare", str(base), "--", str(new), "--results", str(tmp_path / "c.json"))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "nothing to pair" in completed.stderr
    (tmp_path / "junk.json").write_text("{not json")
    completed = run_module("bench.compare", str(base), "--", str(tmp_path / "junk.json"))
    assert completed.returncode == 2 and "junk.json: not JSON" in completed.stderr
    assert not (tmp_path / "c.json").exists()
    completed = run_module("bench.compare", str(base), str(new))
    assert completed.returncode == 2 and "--" in completed.stderr


def test_identical_runs_a_side_are_not_judged_under_fail_on_regression(tmp_path, capsys):
    base = side(tmp_path, "base", [100.0] * 3, [5000.0] * 3)
    new = side(tmp_path, "new", [101.0] * 3, [5000.0] * 3)
    code, document = compare(tmp_path, str(base), "--", str(new), "--fail-on-regression", "0.5%")
    handler = next(f for f in document.pairs[0].figures if f.figure == "in-handler p50")
    assert handler.significant is None and handler.interval_low is None
    assert "identical values" in handler.note and handler.gate.status == "INVALID"
    assert code == 3 and "identical values" in capsys.readouterr().out


def test_an_output_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    base = side(tmp_path, "base", [100.0, 101.0, 99.0])
    new = side(tmp_path, "new", [100.0, 102.0, 98.0])
    folder = tmp_path / "a-folder"
    folder.mkdir()
    plain = tmp_path / "plain-file"
    plain.write_text("not a folder")
    for option, path in (
        ("--results", folder),
        ("--junit", folder),
        ("--markdown", plain / "comment.md"),
    ):
        argv = [str(base), "--", str(new)]
        argv += (
            [option, str(path)]
            if option == "--results"
            else [option, str(path), "--results", str(tmp_path / "c.json")]
        )
        completed = run_module("bench.compare", *argv)
        assert completed.returncode == 2, completed.stderr
        assert completed.stderr.count("\n") == 1 and "Traceback" not in completed.stderr
        assert completed.stderr.startswith(f"python -m bench.compare: cannot write {path}: ")
    assert folder.is_dir() and not any(folder.iterdir())
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary left


def test_machines_that_differ_are_warned_about(tmp_path):
    base = side(tmp_path, "base", [100.0, 101.0, 99.0])
    new = side(tmp_path, "new", [100.0, 101.0, 99.0])
    for path in new.glob("*.json"):
        data = json.loads(path.read_text())
        data["metadata"]["cpu_model"] = "Another CPU"
        data["metadata"]["cpu_idle"] = {}
        path.write_text(json.dumps(data))
    _code, document = compare(tmp_path, str(base), "--", str(new))
    assert any(w.startswith("CPU differs") and "Another CPU" in w for w in document.warnings)
    assert any(w.startswith("CPU idle regime differs") for w in document.warnings)


def test_single_value_figures_print_no_interval_never_not_significant(tmp_path):
    powertune = GOLDEN / "powertune-v3.json"
    runs = []
    for index in range(3):
        path = tmp_path / f"p{index}.json"
        path.write_bytes(powertune.read_bytes())
        runs.append(str(path))
    _code, document = compare(tmp_path, *runs, "--", *runs, "--fail-on-regression", "10%")
    figures = {f.figure: f for pair in document.pairs for f in pair.figures}
    for name in ("Max Memory Used", "cost per million"):
        assert figures[name].words.endswith("(no interval)") and figures[name].gate is None
        assert "not a distribution" in figures[name].note
    # a distribution's figure: identical runs (copies of one file) give no interval either, and
    # say so instead of claiming anything
    assert figures["REPORT Duration p50"].significant is None
    assert "identical values" in figures["REPORT Duration p50"].note


def test_the_reports_comparison_never_pairs_a_step_run_with_a_steady_one(tmp_path):
    from reports.runs import load_runs, ratios

    steady = locust_run(tmp_path / "steady" / "locust-f.json", 100.0)
    step = locust_run(tmp_path / "step" / "locust-f.json", 100.0, scenario="step")
    faster = locust_run(tmp_path / "fast" / "locust-f.json", 100.0, rate=100.0)
    assert ratios(load_runs([steady, step, faster])) == []
    again = locust_run(tmp_path / "again" / "locust-f.json", 150.0)
    found = ratios(load_runs([steady, step, again]))
    pairs = {(ratio.before_label, ratio.after_label) for ratio in found}
    assert pairs == {("steady/locust-f", "again/locust-f")}
    handler = next(r for r in found if r.figure == "handler p50 µs")
    assert handler.value == pytest.approx(1.5)


def test_a_pair_with_one_run_a_side_is_listed_as_not_judged_when_others_are(tmp_path, capsys):
    base = side(tmp_path, "base", [100.0, 101.0, 99.0])
    new = side(tmp_path, "new", [100.0, 102.0, 99.0])
    for folder in (base, new):  # a run folder of python -m bench --runs 3: one cold-start profile
        (folder / "coldstart.json").write_bytes((GOLDEN / "coldstart-v4.json").read_bytes())
    code, document = compare(tmp_path, str(base), "--", str(new), "--fail-on-regression", "10%")
    assert code == 0 and document.status == "PASS"
    coldstart = [pair for pair in document.pairs if pair.kind == "coldstart"]
    assert coldstart and all(f.gate.status == "INVALID" for p in coldstart for f in p.figures if f.gate)
    assert "not judged" in capsys.readouterr().out


def test_bench_runs_option_is_a_positive_count():
    from bench.__main__ import build_parser

    assert build_parser().parse_args(["--runs", "3"]).runs == 3
    assert build_parser().parse_args([]).runs == 1
    completed = run_module("bench", "--runs", "0")
    assert completed.returncode == 2 and "--runs" in completed.stderr


def test_reports_render_a_compare_document(tmp_path):
    from reports.__main__ import build_report
    from reports.runs import load_runs

    page = build_report(load_runs([GOLDEN / "compare-v2.json"]), tmp_path).read_text(encoding="utf-8")
    assert "Is the new version slower? (bench.compare)" in page
    assert "1.16x slower (significant)" in page and "1.05x slower (not significant)" in page
    assert "Not paired:" in page and "scenario steady" in page
    assert "Bonferroni: each at 99.29%" in page  # 7 intervals


def test_an_empty_folder_or_a_bad_percentage_is_bad_input(tmp_path, capsys):
    base = locust_run(tmp_path / "a.json", 100.0)
    (tmp_path / "empty").mkdir()
    assert main([str(base), "--", str(tmp_path / "empty"), "--results", str(tmp_path / "c.json")]) == 2
    assert "no results files" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main([str(base), "--", str(base), "--fail-on-regression", "lots"])
    assert exited.value.code == 2 and "not a percentage: 'lots'" in capsys.readouterr().err


def duet_run(path: Path, base_p50: float, new_p50: float) -> Path:
    """One Locust run that measured two functions together: ``staging/base`` and ``staging/new``."""
    data = copy.deepcopy(LOCUST)
    endpoint = data["endpoints"].pop(FUNCTION)
    for name, p50 in (("staging/base", base_p50), ("staging/new", new_p50)):
        copied = copy.deepcopy(endpoint)
        copied["handler_us"]["p50"], copied["handler_us"]["p99"] = p50, p50 * 2
        for series in ("e2e_us", "e2e_intended_us"):
            if copied.get(series):
                copied[series]["p50"], copied[series]["p99"] = p50 * 3, p50 * 30
        data["endpoints"][name] = copied
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_side_by_side_runs_pair_run_by_run_and_catch_what_host_swings_hide(tmp_path, capsys):
    """The host's speed swings 1.5x between runs, alike for both functions of a run: the two
    sides read as separate runs see no regression; paired run by run, 1.15x is caught."""
    speeds = (1.0, 1.5, 1.05)
    runs = [
        duet_run(tmp_path / f"locust-{index}.json", 1000.0 * speed, 1150.0 * speed * wobble)
        for index, (speed, wobble) in enumerate(zip(speeds, (1.0, 1.01, 0.99), strict=True))
    ]
    paths = [str(run) for run in runs]
    code, document = compare(
        tmp_path, *paths, "--side-by-side", "staging/base", "staging/new", "--fail-on-regression", "5%",
        "--junit", str(tmp_path / "duet.xml"),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and document.status == "FAIL" and document.side_by_side
    assert "paired run by run (side by side)" in out and "staging/base → staging/new" in out
    (pair,) = document.pairs
    figure = next(f for f in pair.figures if f.figure == "in-handler p50")
    assert figure.ratio == pytest.approx(1.15, rel=0.01) and figure.interval_low > 1.05
    failures = [
        c.get("name")
        for c in ET.parse(tmp_path / "duet.xml").getroot().iter("testcase")
        if c.find("failure") is not None
    ]
    assert "in-handler p50" in failures
    base = [duet_run(tmp_path / "base" / f"r{i}.json", 1000.0 * s, 1.0) for i, s in enumerate(speeds)]
    new = [duet_run(tmp_path / "new" / f"r{i}.json", 1150.0 * s, 1.0) for i, s in enumerate(speeds[::-1])]
    for run in (*base, *new):  # the same figures as separate runs of one function each
        data = json.loads(run.read_text())
        data["endpoints"] = {FUNCTION: data["endpoints"]["staging/base"]}
        run.write_text(json.dumps(data))
    code, _ = compare(tmp_path, *map(str, base), "--", *map(str, new), "--fail-on-regression", "5%")
    assert code == 0  # not significant: the swings between runs are as large as the change


def test_side_by_side_with_one_run_or_a_missing_function(tmp_path, capsys):
    one = duet_run(tmp_path / "one.json", 1000.0, 1150.0)
    code, _ = compare(tmp_path, str(one), "--side-by-side", "staging/base", "staging/new",
                             "--fail-on-regression", "5%")  # fmt: skip
    assert code == 3 and "at least 3 runs per side" in capsys.readouterr().out
    assert main([str(one), "--side-by-side", "staging/base", "staging/other"]) == 2
    assert "no run holds both staging/base and staging/other" in capsys.readouterr().err


def test_figure_narrows_what_is_compared_and_the_bonferroni_family(tmp_path, capsys):
    base = side(tmp_path, "base", [100.0, 104.0, 98.0])
    new = side(tmp_path, "new", [112.0, 109.0, 114.0])
    _, every = compare(tmp_path, str(base), "--", str(new))
    code, narrowed = compare(tmp_path, str(base), "--", str(new), "--figure", "in-handler p50")
    assert code == 0 and every.intervals > 1 and narrowed.intervals == 1
    (pair,) = narrowed.pairs
    assert [figure.figure for figure in pair.figures] == ["in-handler p50"]
    assert any("not named by --figure" in note and "end-to-end p50" in note for note in pair.notes)
    wide = next(f for f in every.pairs[0].figures if f.figure == "in-handler p50")
    assert pair.figures[0].interval_low > wide.interval_low  # one interval, not four: narrower
    assert main([str(base), "--", str(new), "--figure", "no such figure"]) == 2
    assert "--figure names no figure of these runs: no such figure" in capsys.readouterr().err


def test_side_by_side_command_lines_that_mix_modes_are_refused_or_read_alike(tmp_path, capsys):
    speeds = ((1.0, 1.0), (1.4, 1.01), (1.1, 0.99))  # the host's speed, and a small wobble
    runs = [
        str(duet_run(tmp_path / f"r{i}.json", 1000.0 * s, 1150.0 * s * w)) for i, (s, w) in enumerate(speeds)
    ]
    for argv in (
        [runs[0], runs[1], "--", runs[2], "--side-by-side", "staging/base", "staging/new"],
        ["--side-by-side", "staging/base", "staging/new", "--", *runs],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2 and "without --" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # no abbreviation passes for the option
        main([*runs, "--side", "staging/base", "staging/new"])
    capsys.readouterr()
    # options between the runs, and a file named twice (one run, not two)
    code, document = compare(tmp_path, runs[0], "--side-by-side", "staging/base", "staging/new", runs[1],
                             runs[2], runs[2], "--fail-on-regression", "5%")  # fmt: skip
    assert code == 1 and len(document.pairs[0].baseline_files) == 3


def test_a_misspelt_figure_is_bad_input_even_beside_a_good_one(tmp_path, capsys):
    base = side(tmp_path, "base", [100.0, 104.0, 98.0])
    new = side(tmp_path, "new", [112.0, 109.0, 114.0])
    argv = [str(base), "--", str(new), "--figure", "in-handler p50", "--figure", "end-to-end P99"]
    assert main(argv) == 2
    assert "--figure names no figure of these runs: end-to-end P99" in capsys.readouterr().err


def test_the_report_says_a_side_by_side_comparison_was_paired(tmp_path):
    from reports.__main__ import build_report
    from reports.runs import load_runs

    speeds = ((1.0, 1.0), (1.5, 1.01), (1.05, 0.99))
    runs = [
        str(duet_run(tmp_path / f"r{i}.json", 1e3 * s, 1150.0 * s * w)) for i, (s, w) in enumerate(speeds)
    ]
    code, _ = compare(
        tmp_path, *runs, "--side-by-side", "staging/base", "staging/new", "--figure", "in-handler p50"
    )
    assert code == 0
    page = build_report(load_runs([tmp_path / "compare.json"]), tmp_path / "report").read_text(
        encoding="utf-8"
    )
    assert "intervals paired run by run (side by side), 95% for all 1 together" in page
    assert "staging/base → staging/new" in page and "paired t-interval" in page
