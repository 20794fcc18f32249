"""``python -m bench --quick`` end to end, and ``python -m reports`` on what it wrote.

One quick pipeline run (real training, real cold-start trials, the real emulator, real Locust
runs; about 40 s) feeds every report test. The HTML page is opened in headless Chromium; CI
installs Debian's ``chromium`` and sets REQUIRE_CHROMIUM=1, so there the check cannot be skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys

import psutil
import pytest

from bench.latency import LatencyRecorder
from bench.process import start
from bench.results.kinds import StageRow
from reports.browser import find_chromium
from reports.charts import cdf_points, knee
from tests.conftest import run_module, wait_for

CHART_FILES = (
    "latency_cdf.png",
    "timeline.png",
    "coldstart_phases.png",
    "warm_variants.png",
    "throughput.png",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The README's first command, ``python -m bench --quick``, run from another directory."""
    base = tmp_path_factory.mktemp("pipeline")
    completed = run_module("bench", "--quick", "--models", str(base / "models"), cwd=base, timeout=240)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    (run_dir,) = (base / "results").glob("run-*")  # the default run folder, under the caller's cwd
    return run_dir, completed


def _leftovers(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.slow
def test_quick_pipeline_writes_every_result_and_a_summary(quick_run):
    run_dir, completed = quick_run
    out = completed.stdout
    assert completed.stderr == ""
    for function in ("logitModel", "logit-lean"):
        for scenario in ("steady", "step"):
            document = json.loads((run_dir / f"locust-{function}-{scenario}.json").read_text())
            assert document["kind"] == "locust" and document["partial"] is False
            endpoint = document["endpoints"][f"staging/{function}"]
            assert endpoint["outcomes"]["2xx"] > 0 and endpoint["outcomes"]["5xx"] == 0
            status = endpoint["status"]
            if scenario == "steady":  # the one line per function: verdict, errors, cold starts
                line = rf"^  {re.escape(function)} {status} p99 .*; \d+/\d+ failed \(.*%\); \d+ cold starts?"
                assert re.search(line, out, re.MULTILINE), out
    coldstart = json.loads((run_dir / "coldstart.json").read_text())
    assert [row["name"] for row in coldstart["variants"]] == ["tutorial", "numpy", "lean"]
    ratio = (
        coldstart["variants"][0]["cold_start_us"]["p50"] / coldstart["variants"][2]["cold_start_us"]["p50"]
    )
    assert f"{ratio:.1f}x faster" in out
    assert f"report: {run_dir / 'report' / 'index.html'}" in out
    assert _leftovers(str(run_dir)) == [], "a process of the pipeline outlived it"


@pytest.mark.slow
def test_report_page_holds_the_figures_and_every_chart(quick_run):
    run_dir, _completed = quick_run
    report = run_dir / "report"
    for name in CHART_FILES:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    page = (report / "index.html").read_text()
    # Self-contained: nothing is loaded from the network (sources are cited as text, not fetched).
    for fetch in ('src="http', "src='http", 'href="http', "url(http", "@import"):
        assert fetch not in page, fetch
    assert page.count('<img src="data:image/png;base64,') == len(CHART_FILES)
    steady = json.loads((run_dir / "locust-logit-lean-steady.json").read_text())
    lean = steady["endpoints"]["staging/logit-lean"]
    assert f"<td>{lean['e2e_intended_us']['p99']:,.1f}</td>" in page
    assert f"<td>{lean['sent']:,}</td>" in page
    coldstart = json.loads((run_dir / "coldstart.json").read_text())
    assert f"<td>{coldstart['variants'][0]['cold_start_us']['p50'] / 1000:,.2f}</td>" in page
    assert steady["metadata"]["command"].split()[-1] in page  # the command that reproduces it
    assert "CPU latency limit" in page  # the idle regime each run was measured in
    assert page.index('<ul class="headlines">') < page.index("<h2>")  # the answer comes first
    assert "logit-lean " in page[page.index('<ul class="headlines">') : page.index("<h2>")]


@pytest.mark.slow
def test_report_renders_in_headless_chromium(quick_run, tmp_path):
    if find_chromium() is None:
        if os.environ.get("REQUIRE_CHROMIUM"):
            pytest.fail("REQUIRE_CHROMIUM is set but chromium is not installed")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI installs it")
    run_dir, _completed = quick_run
    results = sorted(str(path) for path in run_dir.glob("*.json"))
    completed = run_module(
        "reports", *results, "-o", str(tmp_path / "report"), "--check-browser", timeout=180
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"browser: {len(CHART_FILES)}/{len(CHART_FILES)} images loaded" in completed.stdout
    screenshot = tmp_path / "report" / "screenshot.png"
    assert screenshot.stat().st_size > 20_000
    assert _leftovers(str(tmp_path)) == [], "chromium outlived the check"


@pytest.mark.slow
def test_two_runs_of_a_kind_are_overlaid_with_ratios(quick_run, tmp_path):
    run_dir, _completed = quick_run
    before = tmp_path / "before.json"
    after = tmp_path / "after.json"
    shutil.copy(run_dir / "locust-logit-lean-steady.json", before)
    document = json.loads(before.read_text())
    shutil.copy(run_dir / "locust-logit-lean-steady.json", after)
    completed = run_module("reports", str(before), str(after), "-o", str(tmp_path / "out"))
    assert completed.returncode == 0, completed.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<h2>Comparison</h2>" in page
    p99 = document["endpoints"]["staging/logit-lean"]["e2e_intended_us"]["p99"]
    row = f"<td>{p99:,.1f}</td><td>{p99:,.1f}</td><td>1.00×</td>"
    assert row in page  # the same run twice: every ratio is exactly 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 99}, "locust schema_version 99 is not supported"),
        ({"kind": "telemetry"}, "unknown results kind 'telemetry'"),
    ],
)
@pytest.mark.slow
def test_an_unknown_schema_is_one_line_and_exit_2(quick_run, tmp_path, change, message):
    run_dir, _completed = quick_run
    document = json.loads((run_dir / "locust-logit-lean-steady.json").read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**document, **change}))
    completed = run_module("reports", str(bad), "-o", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and message in completed.stderr and str(bad) in completed.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_json_is_refused(tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text("p99 was fine\n")
    completed = run_module("reports", str(bad), "-o", str(tmp_path / "out"))
    assert completed.returncode == 2 and completed.stderr.startswith("python -m reports: ")
    assert "not JSON" in completed.stderr and completed.stderr.count("\n") == 1


@pytest.mark.slow
def test_pipeline_bad_data_is_exit_2_and_models_are_kept(tmp_path, models_dir):
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    before = (models / "manifest.json").read_bytes()
    completed = run_module(
        "bench",
        "--quick",
        "--data",
        str(tmp_path / "missing.csv"),
        "--models",
        str(models),
        "--out",
        str(tmp_path / "run"),
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("python -m bench: train: exit code 2")
    assert (models / "manifest.json").read_bytes() == before


def environments_running(process) -> list[psutil.Process] | None:
    """The pipeline's processes once the emulator below it runs an execution environment
    (``awslambdaric``: the warm-up or a cold-start stage is invoking), else None."""
    descendants = process.descendants()
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            if "awslambdaric" in child.cmdline():
                return descendants
    return None


@pytest.mark.slow
def test_pipeline_stops_everything_on_ctrl_c(tmp_path, models_dir):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "bench", "--quick", "--out", str(run_dir)]
    command += ["--models", str(tmp_path / "m")]

    def emulator_started(_pipeline) -> bool:
        ready = run_dir / "emulator.out"
        return ready.exists() and any(line.startswith("log:") for line in ready.read_text().splitlines())

    stderr_file = tmp_path / "stderr"
    with start(
        command, tmp_path / "stdout", stderr=stderr_file, new_session=True, ready=emulator_started,
        ready_timeout_s=120,
    ) as process:  # fmt: skip
        # into the load stages: the emulator and its environments running below the pipeline
        descendants = wait_for(lambda: environments_running(process), 120, "the emulator's environments")
        assert any("handler.serve" in " ".join(child.cmdline()) for child in descendants)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        process.wait(60)
        # before the with block's stop, which would kill what the pipeline left behind
        _gone, alive = psutil.wait_procs(descendants, timeout=10)
    stderr = stderr_file.read_text()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert alive == [], f"still running after Ctrl-C: {[p.pid for p in alive]}"


def test_cdf_points_follow_the_histogram():
    recorder = LatencyRecorder("us")
    for microseconds in (100, 100, 200, 400):
        recorder.record_ns(microseconds * 1_000)
    values, fractions = cdf_points(recorder.series())
    assert fractions == [0.5, 0.75, 1.0]
    assert [round(value) for value in values] == [100, 200, 400]
    assert cdf_points(LatencyRecorder("us").series()) == ([], [])
    assert cdf_points(None) == ([], [])


def test_knee_is_the_last_step_within_twice_the_first_p99():
    def stage(rps: float, p99_us: float) -> StageRow:
        return StageRow("s", 1, 0.0, 1.0, rps, 1, 1, p99_us / 2, p99_us, 0, 0, 1, None, None, 0)

    stages = [stage(100.0, 900.0), stage(200.0, 1000.0), stage(290.0, 1700.0), stage(300.0, 9000.0)]
    assert knee(stages) == 2
    assert knee(stages[:1]) is None
