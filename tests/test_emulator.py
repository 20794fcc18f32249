"""The local API Gateway + Lambda emulator, as real processes over loopback."""

import base64
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import psutil
import pytest

from handler.local.pool import THROTTLE_REASON
from tests.conftest import PROJECT_ROOT, TUTORIAL_QUERY, lambda_client, start_emulator, wait_for

pytestmark = pytest.mark.slow  # every test runs the emulator (or its CLI) as a real process

QUERY = "&".join(f"{key}={value}" for key, value in TUTORIAL_QUERY.items())


def get(url: str, headers: dict | None = None, method: str = "GET", data: bytes | None = None):
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=40) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def expected_probability(models_dir: Path) -> float:
    model = joblib.load(models_dir / "logit.pkl")
    del model.feature_names_in_
    row = np.array([[float(TUTORIAL_QUERY[f"G{i}"]) for i in range(1, 11)]])
    return float(model.predict_proba(row)[0, 1])


def test_the_tutorials_url_returns_its_prediction(emulator, models_dir):
    status, headers, body = get(emulator.url("logitModel", QUERY))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    text = body.decode()
    assert text.startswith("Prediction ")
    assert abs(float(text.removeprefix("Prediction ")) - expected_probability(models_dir)) < 1e-12


def test_lean_function_through_the_gateway(emulator, models_dir):
    status, headers, body = get(emulator.url("logit-lean", QUERY))
    assert status == 200
    assert abs(json.loads(body)["prediction"] - expected_probability(models_dir)) < 1e-12
    assert "predict;dur=" in headers["Server-Timing"]


def test_bad_input_reaches_the_handlers_400(emulator):
    status, _, body = get(emulator.url("logit-lean", "G1=nan&G2=1"))
    assert status == 400
    details = json.loads(body)["details"]
    assert "G1" in details and details["G3"] == "is required"


def test_unknown_function_and_stage_are_403_missing_token(emulator):
    for url in (emulator.url("nope"), f"{emulator.base_url}/prod/logit-lean", emulator.base_url):
        status, _, body = get(url)
        assert status == 403
        assert json.loads(body) == {"message": "Missing Authentication Token"}


def test_the_runtime_api_answers_other_paths_404_and_other_methods_405(emulator):
    """handler/local/runtime_api.py matches its four paths itself (aiohttp's low-level server)."""
    assert get(emulator.url("logit-lean", QUERY))[0] == 200  # at least one environment runs
    environ = next(child.environ() for child in emulator.children() if "awslambdaric" in child.cmdline())
    base = f"http://{environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
    for path in ("/invocation", "/invocation/x", "/invocation/x/other", "/nope"):
        assert get(base + path)[0] == 404, path
    for path, method, allowed in (
        ("/invocation/next", "POST", "GET"),
        ("/invocation/x/response", "GET", "POST"),
        ("/init/error", "GET", "POST"),
    ):
        status, headers, body = get(base + path, method=method, data=b"{}" if method == "POST" else None)
        assert (status, headers["Allow"], json.loads(body)["errorType"]) == (405, allowed, "MethodNotAllowed")
    assert get(emulator.url("logit-lean", QUERY))[0] == 200  # and the environment still answers


def test_cold_then_warm_with_report_lines_via_boto3_tail(emulator):
    client = lambda_client(emulator.base_url)
    client.update_function_configuration(
        FunctionName="faulty", Environment={"Variables": {"FORCE": "cold-1"}}
    )
    event = json.dumps({"queryStringParameters": {"fault": "print"}})
    first = client.invoke(FunctionName="faulty", Payload=event, LogType="Tail")
    second = client.invoke(FunctionName="faulty", Payload=event, LogType="Tail")
    first_log = base64.b64decode(first["LogResult"]).decode()
    second_log = base64.b64decode(second["LogResult"]).decode()
    assert first["StatusCode"] == 200 and "FunctionError" not in first
    assert "REPORT RequestId: " in first_log and "\tInit Duration: " in first_log
    assert "REPORT RequestId: " in second_log and "Init Duration" not in second_log
    assert "hello from the function" in second_log
    report = next(line for line in second_log.splitlines() if line.startswith("REPORT"))
    assert report.endswith("\t")  # as Lambda writes a REPORT line that ended normally
    fields = dict(part.split(": ", 1) for part in report.rstrip("\t").split("\t"))
    assert set(fields) == {
        "REPORT RequestId",
        "Duration",
        "Billed Duration",
        "Memory Size",
        "Max Memory Used",
    }
    assert fields["Memory Size"] == "1024 MB"  # tests/emulator.toml
    assert int(fields["Max Memory Used"].removesuffix(" MB")) > 5
    assert json.loads(first["Payload"].read())["statusCode"] == 200


def test_configuration_update_makes_the_next_call_cold(emulator):
    client = lambda_client(emulator.base_url)
    warm_pid = json.loads(json.loads(client.invoke(FunctionName="faulty")["Payload"].read())["body"])
    response = client.update_function_configuration(
        FunctionName="faulty", Environment={"Variables": {"FORCE": "cold-2"}}
    )
    assert response["Environment"]["Variables"] == {"FORCE": "cold-2"}
    client.get_waiter("function_updated").wait(FunctionName="faulty")
    after = client.invoke(FunctionName="faulty", LogType="Tail")
    assert "Init Duration" in base64.b64decode(after["LogResult"]).decode()
    new_pid = json.loads(json.loads(after["Payload"].read())["body"])["pid"]
    assert new_pid != warm_pid["pid"]


def _throttle_lines(emulator) -> list[str]:
    prefix = "[faulty] EMULATOR Throttled RequestId: "
    return [
        line for line in emulator.log_file.read_text(encoding="utf-8").splitlines() if line.startswith(prefix)
    ]


def test_concurrent_slow_invocations_start_environments_up_to_the_limit(emulator):
    url = emulator.url("faulty", "fault=sleep&seconds=0.8")
    before = len(_throttle_lines(emulator))
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda _: get(url), range(5)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200, 200, 200, 429, 429]  # reserved_concurrency = 3
    pids = {json.loads(body)["pid"] for status, _, body in results if status == 200}
    assert len(pids) == 3
    # A throttle says so: a header on the reply, and a line of the emulator's own in its log.
    throttled = [headers for status, headers, _ in results if status == 429]
    assert [h.get("X-Emulator-Throttled") for h in throttled] == [THROTTLE_REASON] * 2
    assert all("X-Emulator-Throttled" not in headers for status, headers, _ in results if status == 200)
    lines = _throttle_lines(emulator)[before:]
    assert len(lines) == 2
    assert all(
        line.endswith(
            f"\tReason: {THROTTLE_REASON}\tReserved concurrency: 3 (every environment busy or starting)"
        )
        for line in lines
    )


def test_a_lambda_throttle_through_the_gateway_is_api_gateways_500_marked_as_a_throttle(models_dir, tmp_path):
    # API Gateway answers a Lambda throttle with 500 "Internal server error" (the emulator's
    # default lambda_throttle_status); the emulator's own header says it was a throttle.
    running = start_emulator(
        "--functions", "one-at-a-time", "--lambda-throttle-status", "500",
        config=PROJECT_ROOT / "tests" / "emulator.toml", log_file=tmp_path / "e.log", models=models_dir,
    )  # fmt: skip
    try:
        url = running.url("one-at-a-time", "x=1")  # reserved_concurrency 1, each request sleeps 1 s
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(get, url)
            # the first holds the only environment (its init, then its 1 s sleep) once it runs
            wait_for(running.children, 10, "the first request's environment process")
            throttled = get(url)
            ok = first.result()
    finally:
        alive = running.stop()
    assert alive == [] and ok[0] == 200
    status, headers, body = throttled
    assert (status, json.loads(body)) == (500, {"message": "Internal server error"})
    assert headers["X-Emulator-Throttled"] == THROTTLE_REASON
    assert headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    lines = [line for line in (tmp_path / "e.log").read_text().splitlines() if "EMULATOR Throttled" in line]
    assert len(lines) == 1 and lines[0].startswith("[one-at-a-time] EMULATOR Throttled RequestId: ")


def test_lambda_throttle_at_the_invoke_api_is_too_many_requests(emulator):
    import threading

    client = lambda_client(emulator.base_url)
    client.invoke(FunctionName="faulty")  # connection and signer ready before the burst
    payload = json.dumps({"queryStringParameters": {"fault": "sleep", "seconds": "0.8"}})
    start = threading.Barrier(5)

    def invoke(_):
        start.wait(10)  # all five in flight together
        try:
            return client.invoke(FunctionName="faulty", Payload=payload)["StatusCode"]
        except client.exceptions.TooManyRequestsException as error:
            assert error.response["Reason"] == THROTTLE_REASON
            headers = error.response["ResponseMetadata"]["HTTPHeaders"]
            assert headers["x-emulator-throttled"] == THROTTLE_REASON
            throttled_ids.append(headers["x-amzn-requestid"])
            return 429

    throttled_ids: list[str] = []
    with ThreadPoolExecutor(max_workers=5) as pool:
        assert sorted(pool.map(invoke, range(5))) == [200, 200, 200, 429, 429]
    # Each 429 names the throttled invocation, as its line in the emulator's log does.
    logged = {line.split("RequestId: ")[1].split("\t")[0] for line in _throttle_lines(emulator)}
    assert len(set(throttled_ids)) == 2 and set(throttled_ids) <= logged


def test_api_keys_forbidden_and_usage_plan_throttle(emulator):
    status, _, body = get(emulator.url("keyed"))
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    status, _, _ = get(emulator.url("keyed"), {"x-api-key": "wrong"})
    assert status == 403
    assert get(emulator.url("keyed"), {"x-api-key": "test-key-with-a-big-plan"})[0] == 200
    tiny = {"x-api-key": "test-key-with-a-tiny-plan"}
    statuses = [get(emulator.url("keyed"), tiny)[0] for _ in range(3)]
    assert statuses[0] == 200
    assert 429 in statuses[1:]


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        ("raise", "RuntimeError"),
        ("exit", "Runtime.ExitError"),
        ("sigkill", "Runtime.ExitError"),
        ("sleep&seconds=3", "Sandbox.Timedout"),
        ("huge", "Function.ResponseSizeTooLarge"),
    ],
)
def test_faults_get_aws_outcomes_and_the_next_request_succeeds(emulator, fault, error_type):
    status, _, body = get(emulator.url("faulty", f"fault={fault}"))
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}
    assert get(emulator.url("faulty", "fault=none"))[0] == 200
    client = lambda_client(emulator.base_url)
    name, _, seconds = fault.partition("&seconds=")
    params = {"fault": name, **({"seconds": seconds} if seconds else {})}
    response = client.invoke(
        FunctionName="faulty", Payload=json.dumps({"queryStringParameters": params}), LogType="Tail"
    )
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == error_type
    # measured while the environment lived, or its last peak when it is gone (a crash, the kill
    # after an oversized reply): as on Lambda, never 0 (handler.local.invocation.KeptPeak)
    log = base64.b64decode(response["LogResult"]).decode()
    report = next(line for line in log.splitlines() if line.startswith("REPORT"))
    assert int(report.split("Max Memory Used: ")[1].split(" MB")[0]) > 5, report
    assert client.invoke(FunctionName="faulty")["StatusCode"] == 200


def test_malformed_proxy_reply_is_502(emulator):
    status, _, body = get(emulator.url("faulty", "fault=malformed"))
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


def test_import_error_is_an_init_error(emulator):
    status, _, _ = get(emulator.url("broken-import"))
    assert status == 502
    response = lambda_client(emulator.base_url).invoke(FunctionName="broken-import")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.ImportModuleError"


def test_init_over_the_limit_is_retried_then_times_out_and_leaves_no_environment(emulator):
    # tests/emulator.toml: init_timeout_s = 2, timeout_s 3; the function sleeps 5 s at import.
    # As on Lambda (lambda-runtime-environment.html), the init is retried at the invocation under
    # the function's timeout, which the retried init runs out too: the timeout error.
    before = {child.pid for child in emulator.children()}
    response = lambda_client(emulator.base_url).invoke(FunctionName="slow-init", LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith(" Error: Task timed out after 3.00 seconds")
    log = base64.b64decode(response["LogResult"]).decode()
    assert "\tPhase: init\tStatus: timeout" in log and "\tPhase: invoke\tStatus: timeout" in log
    psutil.wait_procs([p for p in emulator.children() if p.pid not in before], timeout=5)
    assert {child.pid for child in emulator.children()} <= before


def test_stage_throttle_and_shutdown_leaves_no_process(models_dir, tmp_path):
    running = start_emulator(
        "--throttle-rate", "1", "--throttle-burst", "2", "--functions", "logit-lean",
        log_file=tmp_path / "e.log", models=models_dir,
    )  # fmt: skip
    try:
        statuses = [get(running.url("logit-lean", QUERY))[0] for _ in range(4)]
        assert statuses[:2] == [200, 200]
        assert 429 in statuses[2:]
        status, _, body = get(running.url("logit-lean", QUERY))
        if status == 429:
            assert json.loads(body) == {"message": "Too Many Requests"}
        assert len(running.children()) == 1
    finally:
        alive = running.stop()
    assert alive == []
    assert running.process.returncode == 0
    reports = [line for line in (tmp_path / "e.log").read_text().splitlines() if "REPORT RequestId:" in line]
    assert reports
    # Max Memory Used is read after the reply is written, from the live environment's /proc
    assert all(int(line.split("Max Memory Used: ")[1].split(" MB")[0]) > 5 for line in reports)


def test_serve_rejects_bad_arguments(tmp_path):
    from tests.conftest import run_module

    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[[functions]]\nname = 1\n")
    for args, message in [
        (["--config", str(bad_config)], "'name' has the wrong type"),
        (["--port", "99999"], "not a port"),
        (["--functions", "nope"], "unknown 'nope'"),
        (["--throttle-rate", "-1"], "must be > 0"),
        (["--config", str(PROJECT_ROOT / "missing.toml")], "cannot read"),
    ]:
        completed = run_module("handler.serve", *args, timeout=30)
        assert completed.returncode == 2, args
        assert message in completed.stderr


def test_endpoint_benchmark_cli_against_the_emulator(emulator, tmp_path):
    from bench.results import read_results
    from tests.conftest import run_module

    results = tmp_path / "endpoint.json"
    completed = run_module(
        "bench.endpoint", emulator.url("logit-lean", QUERY),
        "--requests", "100", "--warmup", "10", "--runs", "2", "--cold-trials", "2",
        "--results", str(results),
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    document = read_results(results)
    warm = document["warm"]
    assert warm["statuses"] == {"200": 200}
    assert warm["e2e_us"]["count"] == warm["in_handler_us"]["count"] == 200
    # two runs of 100, merged; the spread of their p50s is reported, with the machine's regime
    assert [run["count"] for run in warm["runs"]] == [100, 100]
    spread = warm["run_e2e_p50_us"]
    assert spread["samples"] == 2 and spread["min"] <= spread["p50"] <= spread["max"]
    assert any("only 2 samples" in warning and "--runs" in warning for warning in spread["warnings"])
    assert "cpuidle_driver" in document["metadata"]["cpu_idle"]
    assert completed.stdout.startswith("machine: ")
    # sub-millisecond figures keep their precision (not rounded to whole milliseconds)
    assert warm["in_handler_us"]["p50"] < 1000 and warm["in_handler_us"]["p50"] % 1000 != 0
    assert warm["e2e_us"]["p50"] > warm["in_handler_us"]["p50"]
    assert document["cold"]["first_request_us"]["count"] == 2
    assert document["cold"]["first_request_us"]["min"] > warm["e2e_us"]["p50"]
