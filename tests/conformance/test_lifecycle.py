"""Conformance of the execution environment's lifecycle (handler/local/environment.py): the timeout's
error and REPORT line, Max Memory Used once the process is gone, and an init over the limit
retried at the invocation under the function's timeout. Each case with its source (the table
is docs/conformance.md, "Invoke API and runtime"); the slow ones through boto3 against the real
emulator, with a config of their own (short limits, so that no test waits Lambda's 10 s)."""

from __future__ import annotations

import base64
import json
import time
import urllib.request

import psutil
import pytest

from bench.reportline import parse_report
from bench.results.reportline import ReportLine
from handler.local.gateway import COLD_START_HEADER
from handler.local.invocation import KeptPeak, init_report_line, timeout_message, timeout_payload
from handler.local.lifecycle import InitPhase
from tests.conftest import PROJECT_ROOT, lambda_client, start_emulator

FAULT_FUNCTIONS = PROJECT_ROOT / "bench" / "hardening" / "faultfunctions"
INIT_LIMIT_S = 0.5
# Over INIT_CAP (6) x the init limit: even a host-saturation deferral (lifecycle.init_allowance_ns)
# cannot let the first init finish, so it is retried however busy the host is.
INIT_SLEEP_S = 3.5
RETRY_TIMEOUT_S = 9  # the retried init (3.5 s + the runtime's start) and its invocation fit
SHORT_TIMEOUT_S = 2  # the retried init does not fit


def config_text() -> str:
    functions = [
        ("faulty", 1, ""),
        ("retried-init", RETRY_TIMEOUT_S, f'[functions.env]\nINIT_SLEEP_S = "{INIT_SLEEP_S}"\n'),
        ("retried-init-times-out", SHORT_TIMEOUT_S, f'[functions.env]\nINIT_SLEEP_S = "{INIT_SLEEP_S}"\n'),
        ("retried-init-gateway", RETRY_TIMEOUT_S, f'[functions.env]\nINIT_SLEEP_S = "{INIT_SLEEP_S}"\n'),
    ]
    # The host resource model: its Max Memory Used meter (the peak resident set in /proc/<pid>)
    # reads 0 as soon as the process is gone, so the REPORT lines after a crash test the kept peak
    # (a cgroup's peak outlives the process until the group is removed).
    text = 'stage = "test"\nport = 0\nidle_timeout_s = 600\nresource_model = "host"\n'
    text += f"init_timeout_s = {INIT_LIMIT_S}\n"
    for name, timeout_s, extra in functions:
        text += (
            f'\n[[functions]]\nname = "{name}"\nhandler = "faulty.handler"\n'
            f'code_dir = "{FAULT_FUNCTIONS}"\ntimeout_s = {timeout_s}\n{extra}'
        )
    return text


# -- the texts, without processes ------------------------------------------------------------
def test_the_timeout_message_is_lambdas_current_form():
    # Captured Invoke responses (2024-2026): "RequestId: 1f60b20c-… Error: Task timed out after
    # 3.00 seconds"; the seconds are the configured timeout, %.2f (RIE's interop/model.go)
    assert timeout_message("abc", 3) == "RequestId: abc Error: Task timed out after 3.00 seconds"
    payload, duration_ms = timeout_payload("abc", 0.5)
    assert json.loads(payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: abc Error: Task timed out after 0.50 seconds",
    }
    assert duration_ms == 500.0  # the REPORT's Duration is the timeout ("Duration: 3000.00 ms")


def test_init_report_lines_as_captured():
    # "INIT_REPORT Init Duration: 9999.79 ms\tPhase: init\tStatus: timeout" and
    # "INIT_REPORT Init Duration: 1712.41 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.Unknown"
    assert init_report_line(9999.791, InitPhase.INIT, "timeout") == (
        "INIT_REPORT Init Duration: 9999.79 ms\tPhase: init\tStatus: timeout"
    )
    assert init_report_line(1712.41, InitPhase.INVOKE, "error", "Runtime.Unknown") == (
        "INIT_REPORT Init Duration: 1712.41 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.Unknown"
    )


class FakeMeter:
    def __init__(self, readings: list[int]) -> None:
        self.readings, self.closed = readings, False

    def mb(self) -> int:
        return self.readings.pop(0)

    def close(self) -> None:
        self.closed = True


def test_max_memory_used_keeps_the_last_peak_once_the_process_is_gone():
    meter = FakeMeter([41, 97, 0, 0])  # 0: no /proc/<pid>, no cgroup any more
    kept = KeptPeak(meter)
    assert [kept.mb() for _ in range(4)] == [41, 97, 97, 97]
    kept.close()
    assert meter.closed


# -- through the real emulator --------------------------------------------------------------
@pytest.fixture(scope="module")
def lifecycle_emulator(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conformance-lifecycle")
    config = folder / "emulator.toml"
    config.write_text(config_text(), encoding="utf-8")
    running = start_emulator(config=config, log_file=folder / "emulator.log")
    try:
        yield running
    finally:
        assert running.stop() == [], "environment processes outlived the emulator"


@pytest.fixture(scope="module")
def client(lifecycle_emulator):
    return lambda_client(lifecycle_emulator.base_url)


def invoke(client, name: str, fault: str = "none", seconds: str = "0") -> tuple[dict, dict, list[str]]:
    """(the response, the payload, the log tail's lines)."""
    event = {"queryStringParameters": {"fault": fault, "seconds": seconds}}
    response = client.invoke(FunctionName=name, Payload=json.dumps(event), LogType="Tail")
    lines = base64.b64decode(response["LogResult"]).decode().splitlines()
    return response, json.loads(response["Payload"].read()), lines


def report_of(lines: list[str]) -> tuple[str, ReportLine]:
    text = next(line for line in lines if line.startswith("REPORT RequestId: "))
    report = parse_report(text)
    assert report is not None
    return text, report


@pytest.mark.slow
def test_a_timeout_answers_and_reports_as_lambda_does_today(client):
    response, payload, lines = invoke(client, "faulty", "sleep", "3")  # timeout_s = 1
    assert response["FunctionError"] == "Unhandled"
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    # captured: {"errorType": "Sandbox.Timedout",
    #            "errorMessage": "RequestId: <id> Error: Task timed out after 3.00 seconds"}
    assert payload == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    # DataBiosphere/azul#8140 (2026): no log line contains "Task timed out" any more; the REPORT
    # line has Duration = the timeout and ends "Status: timeout"
    assert not any("Task timed out" in line for line in lines), lines
    text, report = report_of(lines)
    assert report.request_id == request_id and report.status == "timeout"
    assert "\tDuration: 1000.00 ms\t" in text and text.endswith("\tStatus: timeout")
    assert report.max_memory_used_mb > 5  # measured before the kill


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "error_type"), [
    ("exit", "Runtime.ExitError"),
    ("sigkill", "Runtime.ExitError"),
    ("huge", "Function.ResponseSizeTooLarge"),
])  # fmt: skip
def test_max_memory_used_after_the_process_is_gone_is_the_memory_it_used(client, fault, error_type):
    # Lambda reports the memory used after a crash ("Max Memory Used: 3 MB" after an exit status 1,
    # captured), never 0; our meter of a dead process reads 0, so the last peak read is kept.
    client.invoke(FunctionName="faulty")  # an environment that has served and been measured
    response, payload, lines = invoke(client, "faulty", fault)
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == error_type
    text, report = report_of(lines)
    assert report.max_memory_used_mb > 5, text  # the Python runtime alone is over 10 MB
    _, _, cold_lines = invoke(client, "faulty", fault)  # the next one starts cold
    text, report = report_of(cold_lines)
    assert report.init_duration_ms is not None and report.max_memory_used_mb > 5, text


def environment_processes(emulator) -> set[int]:
    return {child.pid for child in emulator.children()}


@pytest.mark.slow
def test_an_init_over_the_limit_is_retried_under_the_function_timeout(client):
    # lambda-runtime-environment.html, "Init phase": "If all three tasks do not complete within
    # 10 seconds, Lambda retries the Init phase at the time of the first function invocation
    # with the configured function timeout." Captured suppressed inits: "INIT_REPORT … Phase:
    # init Status: timeout", then a REPORT without Init Duration whose Duration holds the init.
    response, payload, lines = invoke(client, "retried-init")
    assert "FunctionError" not in response and payload["statusCode"] == 200
    first_init = [line for line in lines if line.startswith("INIT_REPORT")]
    assert len(first_init) == 1 and first_init[0].endswith("\tPhase: init\tStatus: timeout"), lines
    assert float(first_init[0].split("Init Duration: ")[1].split(" ms")[0]) >= INIT_LIMIT_S * 1000
    text, report = report_of(lines)
    assert report.init_duration_ms is None and "Init Duration" not in text
    assert report.status is None and text.endswith("\t")
    assert INIT_SLEEP_S * 1000 <= report.duration_ms < RETRY_TIMEOUT_S * 1000  # the retried init
    assert 0 <= report.billed_duration_ms - report.duration_ms <= 1  # ceil(Duration): no init added
    pid = json.loads(payload["body"])["pid"]
    _, warm_payload, warm_lines = invoke(client, "retried-init")  # the replacement stays warm
    assert json.loads(warm_payload["body"])["pid"] == pid
    assert not any(line.startswith("INIT_REPORT") for line in warm_lines)
    assert report_of(warm_lines)[1].duration_ms < 1000


@pytest.mark.slow
def test_a_retried_init_is_still_a_cold_start_at_the_gateway(lifecycle_emulator):
    # Its REPORT has no Init Duration (as on Lambda, the test above), but the client waited for an
    # init: the emulator's X-Emulator-Init-Duration-Ms carries the retried init's, so that the
    # harness counts the request as a cold start (bench.load.recorder), not as a warm one.
    url = f"{lifecycle_emulator.base_url}/test/retried-init-gateway"
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        init_ms = float(response.headers[COLD_START_HEADER])
    wall_ms = (time.perf_counter() - started) * 1000
    first = [
        line
        for line in lifecycle_emulator.log_file.read_text(encoding="utf-8").splitlines()
        if line.startswith("[retried-init-gateway] INIT_REPORT")
    ]
    assert len(first) == 1 and first[0].endswith("\tPhase: init\tStatus: timeout"), first
    first_ms = float(first[0].split("Init Duration: ")[1].split(" ms")[0])
    # The retried init's own duration: it and the first attempt both fit in the request's time.
    assert init_ms >= INIT_SLEEP_S * 1000 and init_ms + first_ms <= wall_ms
    with urllib.request.urlopen(url, timeout=30) as warm:
        assert COLD_START_HEADER not in warm.headers


@pytest.mark.slow
def test_a_retried_init_that_runs_out_the_timeout_fails_with_the_timeout_error(client, lifecycle_emulator):
    before = environment_processes(lifecycle_emulator)
    response, payload, lines = invoke(client, "retried-init-times-out")
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {SHORT_TIMEOUT_S:.2f} seconds",
    }
    inits = [line for line in lines if line.startswith("INIT_REPORT")]
    phases = [line.split("\tPhase: ")[1] for line in inits]
    assert phases == ["init\tStatus: timeout", "invoke\tStatus: timeout"], lines
    text, report = report_of(lines)
    assert report.status == "timeout" and report.init_duration_ms is None
    assert f"\tDuration: {SHORT_TIMEOUT_S * 1000:.2f} ms\t" in text
    psutil.wait_procs([p for p in lifecycle_emulator.children() if p.pid not in before], timeout=5)
    assert environment_processes(lifecycle_emulator) <= before  # both environments are gone
