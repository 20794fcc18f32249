"""Short headless Locust runs (127.0.0.1 only, seconds each) against the emulator: the harness as
users run it, ``locust -f locustfile.py ...``, in a subprocess."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from bench.latency import Series
from bench.load.command import LocustCommand
from bench.load.webui import TAB_TITLE
from bench.pipeline import warm_up
from bench.process import line_with, start, url_answers
from reports.browser import FLAGS, find_chromium
from tests.conftest import free_port, run_command, wait_for

LEAN = "staging/logit-lean"
pytestmark = pytest.mark.slow  # every test runs Locust against the emulator


def run_locust(emulator, tmp_path: Path, *args: str, timeout: float = 90):
    results = tmp_path / "locust.json"
    command = LocustCommand(emulator.base_url, results=results, extra=args).argv()
    completed = run_command(command, timeout=timeout)
    assert results.is_file(), completed.stderr[-3000:]
    return completed, json.loads(results.read_text())


def check_accounting(document: dict) -> None:
    total_sent = 0
    for endpoint in document["endpoints"].values():
        assert endpoint["sent"] == sum(endpoint["outcomes"].values())
        total_sent += endpoint["sent"] - endpoint["outcomes"]["cancelled"]
    assert total_sent == document["locust_totals"]["requests"]


def agrees_with_our_median(locust_median_ms: float, e2e_us: dict) -> None:
    """Locust's median, from its buckets (bench.load.buckets), against our HdrHistogram of the
    same requests: between the neighbours of our median (Locust takes the n//2+1-th smallest,
    HdrHistogram the round(n/2)-th; one rank more each side for a request counted as the other
    stopped), give or take Locust's three figures and HDR's buckets (< 0.6 %). Locust's default
    whole-millisecond buckets fail this unless a whole ms lies that close."""
    ours = Series.from_dict(e2e_us).decode()
    rank = 100.0 / ours.count
    low, high = ours.percentile_us(max(50 - rank, 0)), ours.percentile_us(min(50 + 2 * rank, 100))
    assert low * 0.994 <= locust_median_ms * 1000 <= high * 1.006, (locust_median_ms, low, high)


def warm(emulator, *functions: str, environments: int = 2) -> None:
    """Warm environments first, as the pipeline does: with the resource model on, a cold start
    under load shares the host's two cores with everything else (docs/benchmarks.md)."""
    for function in functions:
        warm_up(emulator.base_url, function.split("/", 1)[1], requests=2, concurrency=environments)


def test_closed_loop_run_records_microseconds_and_verifies(emulator, models_dir, tmp_path):
    warm(emulator, LEAN, "staging/logitModel")
    completed, document = run_locust(
        emulator,
        tmp_path,
        *("-u", "2", "-r", "2", "-t", "6s", "--function", LEAN, "--function", "staging/logitModel:1"),
        *("--verify", "--models", str(models_dir), "--target-ms", "10000"),
    )
    assert document["kind"] == "locust" and document["schema_version"] == 3
    assert document["metadata"]["versions"]["locust"] and document["metadata"]["options"]["verify"] is True
    lean = document["endpoints"][LEAN]
    tutorial = document["endpoints"]["staging/logitModel"]
    for endpoint in (lean, tutorial):
        assert endpoint["outcomes"]["2xx"] > 50
        assert endpoint["verify_failures"] == 0
        assert endpoint["outcomes"]["4xx"] == endpoint["outcomes"]["5xx"] == 0
    # Sub-millisecond resolution: Locust itself would print whole milliseconds here.
    e2e = lean["e2e_us"]
    assert any(e2e[key] % 1000 != 0 for key in ("p50", "p90", "p99")), e2e
    assert lean["handler_us"]["count"] == lean["outcomes"]["2xx"]
    assert 0 < lean["handler_us"]["p50"] < e2e["p50"]
    assert tutorial["handler_us"]["count"] == 0  # the tutorial's handler sends no Server-Timing
    check_accounting(document)
    assert document["timeline"] and document["timeline"][0]["requests"] > 0
    assert document["verdict"]["status"] == "PASS" and completed.returncode == 0, completed.stdout[-2000:]
    assert "p99 µs" in completed.stdout and "verdict: PASS" in completed.stdout


def test_verify_catches_a_model_that_differs_from_the_served_one(emulator, models_dir, tmp_path):
    other = tmp_path / "other-models"
    shutil.copytree(models_dir, other)
    coefficients = json.loads((other / "logit.json").read_text())
    coefficients["intercept"] += 0.5
    (other / "logit.json").write_text(json.dumps(coefficients))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["artifacts"]["logit.json"]["sha256"] = hashlib.sha256(
        (other / "logit.json").read_bytes()
    ).hexdigest()
    (other / "manifest.json").write_text(json.dumps(manifest))
    completed, document = run_locust(
        emulator, tmp_path, "-u", "1", "-r", "1", "-t", "2s", "--function", LEAN, "--verify",
        "--models", str(other), "--target-ms", "10000",
    )  # fmt: skip
    lean = document["endpoints"][LEAN]
    assert lean["outcomes"]["2xx"] > 0
    assert lean["verify_failures"] == lean["outcomes"]["2xx"]
    assert document["locust_totals"]["failures"] == lean["verify_failures"]
    assert document["verdict"]["status"] == "FAIL" and completed.returncode == 1
    first = document["verdict"]["reasons"][0]  # errors first: a wrong prediction is a failure
    assert f"({'wrong prediction'} {lean['verify_failures']:,})" in first and first.startswith("FAIL")


def test_distributed_run_totals_are_the_sum_of_the_workers(emulator, tmp_path):
    _completed, document = run_locust(
        emulator, tmp_path, "--processes", "2", "-u", "2", "-r", "2", "-t", "3s", "--function", LEAN,
        "--csv", str(tmp_path / "locust"),
    )  # fmt: skip
    expected = {"workers_reporting": 2, "workers_with_final_report": 2, "complete": True}
    assert document["distributed"] == expected
    lean = document["endpoints"][LEAN]
    assert lean["outcomes"]["2xx"] > 100
    assert lean["e2e_us"]["count"] == lean["sent"] - lean["outcomes"]["cancelled"]
    check_accounting(document)
    assert document["partial"] is False
    # The policy recorded is the workers' (closed loop: normal), not the master's, which sends nothing.
    used = document["metadata"]["options"]["generator_priority_used"]
    assert used.startswith("workers: 2 x normal (") and "master" not in used, used
    # Locust's own CSV, from the workers' buckets merged on the master (bench.load.buckets):
    # its median keeps three figures (a float key, "4.31", not "4") and agrees with our HDR p50.
    with (tmp_path / "locust_stats.csv").open(newline="") as stats:
        row = next(line for line in csv.DictReader(stats) if line["Name"] == f"/{LEAN}")
    median = row["Median Response Time"]
    assert "." in median or float(median) >= 100, row  # a float key below 100 ms
    agrees_with_our_median(float(median), lean["e2e_us"])


@pytest.mark.parametrize(
    ("args", "status", "code"),
    [
        (("--target-ms", "0.001"), "FAIL", 1),
        (("--target-ms", "10000", "--percentile", "99.999"), "INVALID", 3),
    ],
)
def test_verdict_sets_the_exit_code(emulator, tmp_path, args, status, code):
    completed, document = run_locust(
        emulator, tmp_path, "-u", "1", "-r", "1", "-t", "2s", "--function", LEAN, *args
    )
    assert document["verdict"]["status"] == status
    assert completed.returncode == code
    verdict = document["endpoints"][LEAN]["verdict"]
    if status == "INVALID":
        assert verdict["details"]["samples_needed"] > 0 and "more samples" in verdict["message"]


def test_open_loop_keeps_a_schedule_and_measures_from_the_intended_time(emulator, tmp_path):
    warm(emulator, LEAN, environments=3)
    _completed, document = run_locust(
        emulator,
        tmp_path,
        *("-u", "1", "-r", "1", "-t", "3s", "--function", LEAN, "--arrival", "open", "--rate", "200"),
        *("--arrival-dist", "poisson", "--target-ms", "10000"),
    )
    lean = document["endpoints"][LEAN]
    assert 300 <= lean["sent"] <= 800  # ~200/s for ~2-3 s of schedule
    assert lean["schedule_lag_us"]["count"] == lean["sent"]
    assert lean["e2e_intended_us"]["count"] == lean["e2e_us"]["count"]
    assert lean["e2e_intended_us"]["p50"] >= lean["e2e_us"]["p50"]
    assert document["verdict"]["series"] == "e2e_intended_us"
    schedule = document["schedule"]
    assert schedule["missed_sends"] == lean["missed_sends"] < lean["sent"] // 10
    assert lean["schedule_lag_us"]["p50"] < 1000
    assert (schedule["warning"] is None) == schedule["kept"]
    gate = next(gate for gate in lean["gates"] if gate["check"] == "schedule")
    assert gate["observed"] == lean["schedule_lag_us"]["p99"] and gate["samples"] == lean["sent"]
    assert gate["details"]["kept"] == schedule["kept"]
    if not schedule["kept"]:  # INVALID where the miss could decide the verdict (bench.verdict)
        gross = gate["observed"] > gate["details"]["interval_us"] == 1e6 / 200
        assert gate["details"]["decisive"] == (gross or lean["verdict"]["status"] != "PASS")
        if gate["details"]["decisive"]:
            assert gate["status"] == "INVALID" and document["verdict"]["status"] in ("INVALID", "FAIL")
            assert "fell behind its schedule" in gate["message"]
        else:
            assert gate["status"] == "PASS" and "does not decide the verdict" in gate["message"]
    check_accounting(document)


@pytest.mark.parametrize(
    ("scenario", "args", "stage_names"),
    [
        ("step", ("--steps", "2", "--step-time", "1.5"), ["step 1", "step 2"]),
        ("spike", ("--step-time", "1.5", "--spike-users", "4"), ["baseline", "spike", "recovery"]),
        ("soak", ("-t", "2s"), ["soak"]),
    ],
)
def test_scenarios_run_and_keep_their_stages_apart(emulator, tmp_path, scenario, args, stage_names):
    _completed, document = run_locust(
        emulator, tmp_path, "-u", "1", "-r", "1", "--scenario", scenario, "--function", LEAN, *args
    )
    assert [stage["name"] for stage in document["stages"]] == stage_names
    assert all(stage["requests"] > 0 for stage in document["stages"])
    if scenario == "step":
        assert [stage["users"] for stage in document["stages"]] == [1, 2]
    assert document["partial"] is False
    check_accounting(document)


def test_spike_on_a_cold_function_shows_cold_starts(emulator, tmp_path):
    # Recycle the lean function's environments first (UpdateFunctionConfiguration), so the
    # spike's new environments are cold starts.
    url = f"{emulator.base_url}/2015-03-31/functions/logit-lean/configuration"
    variables = json.load(urllib.request.urlopen(url, timeout=10))["Environment"]["Variables"]
    variables["FORCE_COLD"] = str(time.time())
    request = urllib.request.Request(
        url,
        data=json.dumps({"Environment": {"Variables": variables}}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    current = json.load(urllib.request.urlopen(request, timeout=10))
    assert current["Environment"]["Variables"]["FORCE_COLD"]
    _completed, document = run_locust(
        emulator,
        tmp_path,
        *("-u", "1", "-r", "1", "--scenario", "spike", "--step-time", "1.5", "--spike-users", "6"),
        *("--function", LEAN, "--arrival", "open", "--rate", "100"),
    )
    lean = document["endpoints"][LEAN]
    assert lean["cold_starts"]["count"] >= 1
    cold = lean["cold_starts"]
    # every cold start carries the emulator's Init Duration; the handler's own init, when it
    # reports one, is a part of it (module import to ready, inside spawn to ready)
    assert cold["init_duration_us"]["count"] == cold["count"] and cold["init_duration_us"]["p50"] > 1000
    handler_init = cold["handler_init_us"]
    assert 1 <= handler_init["count"] <= cold["count"]
    assert 0 < handler_init["max"] <= cold["init_duration_us"]["max"]
    assert sum(stage["cold_starts"] for stage in document["stages"]) == lean["cold_starts"]["count"]


def test_a_bad_option_is_one_line_and_exit_2(emulator, tmp_path):
    command = LocustCommand(
        emulator.base_url, results=tmp_path / "x.json", run_time_s=1, arrival="open", only_summary=False
    )
    completed = run_command(command.argv(), timeout=60)
    assert completed.returncode == 2
    assert "--arrival open needs --rate" in completed.stderr
    assert not (tmp_path / "x.json").exists()


def get_json(url: str) -> dict:
    return json.load(urllib.request.urlopen(url, timeout=10))


def stopped(base: str) -> dict | None:
    """The web UI's stats once its runner has stopped every user, else None."""
    stats = get_json(base + "/stats/requests")
    return stats if stats["state"] == "stopped" else None


def rendered(url: str, tmp_path: Path) -> str:
    """The DOM of ``url`` once headless Chromium has run the page's script (reports.browser's flags)."""
    chromium = find_chromium()
    assert chromium is not None, "chromium not found (Debian: apt-get install chromium)"
    command = [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", url]
    completed = run_command(command, timeout=90)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_web_ui_has_a_microsecond_tab_and_sub_millisecond_medians(emulator, tmp_path):
    # The UI upper-cases tab titles: "µs" would read "ΜS" (Greek capital mu), milliseconds.
    assert "MICROSECONDS" in TAB_TITLE.upper() and "µ" not in TAB_TITLE
    warm(emulator, LEAN, environments=1)
    base = f"http://127.0.0.1:{free_port()}"
    command = LocustCommand(
        emulator.base_url, (LEAN,), tmp_path / "ui.json", headless=False, only_summary=False,
        extra=("--web-host", "127.0.0.1", "--web-port", base.rsplit(":", 1)[1]),
    )  # fmt: skip
    with start(command.argv(), tmp_path / "ui.out", ready=url_answers(base + "/"), ready_timeout_s=30):
        assert TAB_TITLE in urllib.request.urlopen(base + "/", timeout=5).read().decode()
        form = f"user_count=1&spawn_rate=1&host={emulator.base_url}".encode()
        urllib.request.urlopen(base + "/swarm", data=form, timeout=10).read()

        def answered() -> dict | None:
            stats = get_json(base + "/stats/requests")
            rows = (stats.get("extended_stats") or [{}])[0].get("data") or []
            return stats if rows and rows[0]["ok"] >= 50 and rows[0]["p50_us"] > 0 else None

        wait_for(answered, 60, "50 answered requests in the Latency tab")
        # Stop the users from the UI, as a user would, before the process is stopped: a request
        # in flight at SIGINT in web-UI mode was once counted as sent with no outcome; a headless
        # SIGTERM mid-run is checked by the test below.
        urllib.request.urlopen(base + "/stop", data=b"", timeout=10).read()
        stats = wait_for(lambda: stopped(base), 30, "the runner to stop its users")
        ours = stats["extended_stats"][0]["data"][0]
        locusts = next(entry for entry in stats["stats"] if entry["name"] == f"/{LEAN}")
        assert ours["name"] == LEAN and ours["sent"] > 0
        # What a user sees in Chromium: the tab (its title as the UI shows it) and Locust's
        # own table with the median to 2 decimals, as its UI rounds that column.
        tab = rendered(base + "/?tab=latency-us", tmp_path)
        assert TAB_TITLE in tab and "p50 µs" in tab and LEAN in tab
        table = rendered(base + "/", tmp_path)
        cells = [float(text) for text in re.findall(r"<td[^>]*>([0-9]+(?:\.[0-9]+)?)</td>", table)]
        assert any(abs(cell - locusts["median_response_time"]) <= 0.0051 for cell in cells), cells
    document = json.loads((tmp_path / "ui.json").read_text())
    check_accounting(document)
    agrees_with_our_median(locusts["median_response_time"], document["endpoints"][LEAN]["e2e_us"])


def invocations(emulator, function: str) -> int:
    """How many invocations of ``function`` the emulator has logged (a REPORT line each)."""
    return emulator.log_file.read_text().count(f"[{function}] REPORT RequestId:")


def test_sigterm_mid_run_writes_partial_results_that_account_for_every_request(emulator, tmp_path):
    results, log = tmp_path / "term.json", tmp_path / "locust.log"
    command = LocustCommand(emulator.base_url, (LEAN,), results, users=2, spawn_rate=2, run_time_s=60)
    before = invocations(emulator, "logit-lean")
    with start(command.argv(), log, ready=line_with("All users spawned"), ready_timeout_s=30) as process:
        wait_for(lambda: invocations(emulator, "logit-lean") >= before + 10, 30, "10 invocations mid-run")
        process.process.send_signal(signal.SIGTERM)  # the signal under test, not the stop policy
        process.wait(30)
    output = process.text()
    assert process.returncode in (0, 1, 3), output[-2000:]  # the verdict's code, not killed (-15)
    document = json.loads(results.read_text())
    assert document["partial"] is True
    assert document["endpoints"][LEAN]["outcomes"]["2xx"] > 0
    check_accounting(document)
    assert f"results: {results}" in output
