"""The requests file (bench.requests): the parser's errors, the draws, the converter, every
tool's ``--requests``/``--config`` doors, and (slow) the same event through the gateway and
through Invoke, Locust's ``--verify`` against ``expected``, and the main job on a function that
is no model (examples/sleepy)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from bench import __main__ as bench_main
from bench.coldstart import profiler
from bench.endpoint import main as endpoint_main
from bench.functions import FunctionsError, chosen
from bench.hardening.overload import main as overload_main
from bench.load.command import LocustCommand
from bench.powertune.__main__ import main as powertune_main
from bench.requests import (
    RequestsFileError,
    Sampler,
    api_settings,
    http_request,
    invoke_payload,
    manifest_tolerance,
    matches,
    parse_line,
    parse_lines,
    prediction,
    proxy_event,
    read_requests,
)
from handler.local.config import load_config
from tests.conftest import lambda_client, run_command, run_module, start_emulator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SLEEPY = PROJECT_ROOT / "examples" / "sleepy"

ECHO = """
import json


def lambda_handler(event, context):
    query = event.get("queryStringParameters") or {}
    body = {"event": event}
    if "x" in query:
        body["prediction"] = float(query["x"])
    status = 202 if event.get("httpMethod") == "DELETE" else 200  # a line's method, seen in a status
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}
"""

LINES = [
    {"query": {"x": "0.5", "name": "a b&c=d", "u": "é/ü"}},
    {"method": "POST", "body": {"ms": 5, "nested": [1, None, "x"]}, "headers": {"X-Trace-Me": "yes"}},
    {"method": "PUT", "body": "plain text", "headers": {"Content-Type": "text/plain"}, "query": {"k": ""}},
    {"method": "DELETE", "headers": {"User-Agent": "requests-file-test", "X-Forwarded-For": "10.0.0.1"}},
]


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


# -- the parser ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{x", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"method": "FETCH"}', "'method'"),
        ('{"query": {"a": 1}}', "query['a']"),
        ('{"headers": ["a"]}', "'headers'"),
        ('{"weight": 0}', "'weight'"),
        ('{"weight": -1}', "'weight'"),
        ('{"weight": true}', "'weight'"),
        ('{"weight": NaN}', "NaN is not a JSON number"),
        ('{"body": {"x": Infinity}}', "Infinity is not a JSON number"),
        ('{"body": [-Infinity]}', "-Infinity is not a JSON number"),
        ('{"weight": 1e999}', "1e999 is too large for a float"),
        ('{"weight": 1' + "0" * 400 + "}", "'weight' must be a finite number"),
        ('{"query": {"a": "1"}, "query": {"a": "2"}}', "key 'query' appears twice"),
        ('{"body": {"x": 1, "x": 2}}', "key 'x' appears twice"),
        ('{"headers": {"X-A": "1\\r\\nX-Injected: 1"}}', "holds CR, LF or NUL"),
        ('{"headers": {"X-A": "a\\u0000b"}}', "holds CR, LF or NUL"),
        ('{"headers": {"": "x"}}', "header name '' must be a non-empty token"),
        ('{"headers": {"X A": "x"}}', "header name 'X A'"),
        ('{"headers": {"X-A:": "x"}}', "header name 'X-A:'"),
        ('{"headers": {"X-A": "\\u20ac"}}', "not ISO-8859-1"),
        ('{"event": [1]}', "'event' must be an object"),
        ('{"event": {}, "body": "x"}', "'event' excludes 'body'"),
        ('{"path": "/x"}', "unknown key(s) 'path'"),
    ],
)
def test_a_malformed_line_names_the_file_and_its_line_number(tmp_path, text, words):
    path = write_lines(tmp_path / "r.jsonl", ['{"query": {"a": "1"}}', "", text])
    with pytest.raises(RequestsFileError) as error:
        read_requests(path)
    message = str(error.value)
    assert message.startswith(f"{path}:3: ") and words in message and "\n" not in message


def test_lines_break_at_newline_only_not_at_what_a_json_string_may_hold(tmp_path):
    # U+2028, U+2029 and U+0085 may stand unescaped in a JSON string; str.splitlines() breaks there
    path = tmp_path / "r.jsonl"
    path.write_text('{"body": "a\u2028b\u2029c\x85d"}\r\n{"query": {"n": "2"}}\n', encoding="utf-8")
    requests = read_requests(path)
    assert [line.number for line in requests.lines] == [1, 2]
    assert requests.lines[0].body == "a\u2028b\u2029c\x85d".encode()
    # a character JSON refuses unescaped (\x0c) is an error naming its own line, not a later
    # line's number shifted by a split
    path.write_text('{"query": {"n": "1"}}\n{"body": "a\x0cb"}\n{"x": 1}\n', encoding="utf-8")
    with pytest.raises(RequestsFileError) as error:
        read_requests(path)
    assert str(error.value).startswith(f"{path}:2: not JSON")


def test_weights_whose_sum_is_not_a_finite_float_are_refused_naming_the_line(tmp_path):
    path = write_lines(tmp_path / "r.jsonl", ['{"weight": 1e308}', '{"weight": 1}', '{"weight": 1e308}'])
    with pytest.raises(RequestsFileError) as error:
        read_requests(path)
    assert str(error.value).startswith(f"{path}:3: the weights up to this line sum past the largest float")


def test_an_empty_or_missing_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(RequestsFileError, match="no requests"):
        read_requests(write_lines(tmp_path / "empty.jsonl", ["", "  "]))
    with pytest.raises(RequestsFileError, match="cannot read"):
        read_requests(tmp_path / "missing.jsonl")


def test_a_line_s_defaults_and_its_json_body():
    line = parse_line('{"body": {"a": [1, 2]}, "expected": {"x": 0.5}}', 4)
    assert (line.number, line.method, line.weight, line.query) == (4, "GET", 1.0, ())
    assert line.body == b'{"a":[1,2]}' and ("Content-Type", "application/json") in line.headers
    assert line.has_expected and line.expected == {"x": 0.5}
    own = parse_line('{"method": "post", "body": [1], "headers": {"content-type": "application/x"}}', 1)
    assert own.method == "POST" and own.headers == (("content-type", "application/x"),)
    assert parse_line('{"body": "raw"}', 1).body == b"raw"
    assert not parse_line('{"body": null}', 1).body
    event = parse_line('{"event": {"ms": 2}, "weight": 2.5}', 1)
    assert event.is_event and event.weight == 2.5 and not event.has_expected


def test_lines_are_drawn_by_weight_and_the_same_seed_draws_the_same_sequence():
    requests = parse_lines(['{"query": {"n": "1"}, "weight": 3}', '{"query": {"n": "2"}}'])
    first = [Sampler(requests, seed=7).draw().number for _ in range(1)]
    sampler, again = Sampler(requests, seed=7), Sampler(requests, seed=7)
    drawn = [sampler.draw().number for _ in range(8_000)]
    assert drawn == [again.draw().number for _ in range(8_000)] and drawn[:1] == first
    share = Counter(drawn)[1] / len(drawn)
    assert 0.72 < share < 0.78  # 3:1, 8,000 draws: a standard deviation of 0.005
    assert [Sampler(requests, seed=8).draw().number for _ in range(50)] != drawn[:50]


def test_the_http_request_of_a_line():
    line = parse_line('{"method": "PATCH", "query": {"a": "x y", "b": "&"}, "body": {"k": 1}}', 1)
    request = http_request(line, "/staging/fn/")
    assert request.method == "PATCH" and request.path == "/staging/fn?a=x+y&b=%26"
    assert request.body == b'{"k":1}' and dict(request.headers) == {"Content-Type": "application/json"}
    with pytest.raises(RequestsFileError):
        http_request(parse_line('{"event": {}}', 1), "staging/fn")


def test_the_proxy_event_of_a_line_and_an_event_line_as_is(tmp_path):
    config = load_config(write_config(tmp_path, stage="test"))
    line = parse_line('{"method": "POST", "query": {"a": "1", "b": "x y"}, "body": "hi"}', 1)
    event = proxy_event(line, "echo", api_settings(config), request_id="rid", now_s=1_700_000_000.0)
    assert event["httpMethod"] == "POST" and event["path"] == "/echo" and event["body"] == "hi"
    assert event["queryStringParameters"] == {"a": "1", "b": "x y"}
    assert event["requestContext"]["stage"] == "test" and event["requestContext"]["path"] == "/test/echo"
    assert event["requestContext"]["requestId"] == "rid" and event["stageVariables"] == {"color": "blue"}
    assert event["headers"]["Content-Length"] == "2" and event["headers"]["Host"].startswith("abcdef1234.")
    raw = parse_line('{"event": {"ms": 3}}', 1)
    assert proxy_event(raw, "echo") == {"ms": 3} and json.loads(invoke_payload(raw, "echo")) == {"ms": 3}
    first, second = (json.loads(invoke_payload(line, "echo")) for _ in range(2))
    assert first["requestContext"]["requestId"] != second["requestContext"]["requestId"]


def test_predictions_match_within_the_tolerance():
    assert prediction('{"prediction": 0.25, "model": "x"}') == 0.25
    assert prediction("Prediction 0.5") == 0.5 and prediction("nope") is None and prediction("{") is None
    assert matches(0.1 + 1e-12, 0.1) and not matches(0.1 + 1e-6, 0.1)
    assert matches(1e6 + 1e-4, 1e6)  # relative: 1e-10 of the value
    assert matches(0.1 + 1e-6, 0.1, tolerance=1e-5)
    assert matches({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5 + 1e-12})
    assert not matches({"a": 0.5}, {"a": 0.5, "b": 0.5}) and not matches(None, 0.5)
    assert matches("cat", "cat") and not matches(True, 1) and not matches(1, True)


def test_the_manifest_s_tolerance_for_an_artifact(tmp_path):
    (tmp_path / "manifest.json").write_text(
        json.dumps({"schema_version": 2, "artifacts": {"model.onnx": {"tolerance": 1e-6}, "model.pkl": {}}})
    )
    assert manifest_tolerance(tmp_path, "models/model.onnx") == 1e-6
    assert manifest_tolerance(tmp_path, "model.pkl") is None
    assert manifest_tolerance(tmp_path / "none", "model.onnx") is None


# -- the doors: --config without the function, a bad line: one line, exit 2 -------------------


def test_a_config_without_the_function_names_both():
    config = SLEEPY / "emulator.toml"
    assert chosen(config, None) == ("sleepy",) and chosen(None, None, ("logit-lean",)) == ("logit-lean",)
    with pytest.raises(FunctionsError) as error:
        chosen(config, ["sleepy", "nope"])
    assert "'nope'" in str(error.value) and str(config) in str(error.value) and "sleepy" in str(error.value)


def test_python_m_bench_refuses_a_bad_line_and_a_missing_function(tmp_path, capsys):
    bad = write_lines(tmp_path / "bad.jsonl", ['{"query": {"ms": "1"}}', '{"query": {"ms": 2}}'])
    config = str(SLEEPY / "emulator.toml")
    assert bench_main.main(["--config", config, "--requests", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2:" in err
    assert bench_main.main(["--config", config, "--functions", "nope", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope'" in err and config in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "r").exists()


def test_every_tool_refuses_a_bad_line_and_a_missing_function(tmp_path, capsys):
    bad = str(write_lines(tmp_path / "bad.jsonl", ['{"method": "GET"}', "{}", '{"weight": "2"}']))
    config = str(SLEEPY / "emulator.toml")
    results = str(tmp_path / "r.json")
    assert powertune_main(["--config", config, "--requests", bad, "--results", results]) == 2
    assert f"{bad}:3:" in capsys.readouterr().err
    assert powertune_main(["--config", config, "--functions", "nope", "--results", results]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope'" in err and config in err
    for argv in (
        ["--handler", "sleepy.lambda_handler", "--code-dir", str(SLEEPY), "--requests", bad],
        ["--endpoint", "http://127.0.0.1:9", "--function", "nope", "--config", config],
    ):
        with pytest.raises(SystemExit) as exit_:
            profiler.parse_config(profiler.build_parser(), argv)
        assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}:3:" in err and "'nope'" in err
    events = str(write_lines(tmp_path / "events.jsonl", ['{"query": {"ms": "1"}}', '{"event": {"ms": 1}}']))
    assert endpoint_main(["http://127.0.0.1:9/staging/sleepy", "--requests", events]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{events}:2:" in err and "'event'" in err
    assert not (tmp_path / "r.json").exists()
    out = str(tmp_path / "overload")
    assert overload_main(["--config", config, "--function", "nope", "--out", out]) == 2
    assert (
        overload_main(["--config", config, "--function", "sleepy", "--requests", events, "--out", out]) == 2
    )
    err = capsys.readouterr().err
    assert "'nope'" in err and f"{events}:2:" in err and not (tmp_path / "overload").exists()


def test_the_coldstart_profiler_takes_any_handler(tmp_path):
    config, _ = profiler.parse_config(
        profiler.build_parser(),
        ["--handler", "sleepy.lambda_handler", "--code-dir", str(SLEEPY), "--env", "A=b=c", "--trials", "1"],
    )
    assert config.variants == ("sleepy.lambda_handler",) and config.code_dir == SLEEPY
    assert config.handler_env == (("A", "b=c"),) and config.function is None
    for argv in (["--handler", "nodot"], ["--handler", "a.b", "--code-dir", str(tmp_path / "none")]):
        with pytest.raises(SystemExit):
            profiler.parse_config(profiler.build_parser(), argv)


# -- real processes ----------------------------------------------------------------------------


def write_config(folder: Path, stage: str = "test") -> Path:
    """An emulator configuration with the echo function (a stage and API settings of its own)."""
    (folder / "echo.py").write_text(ECHO)
    path = folder / "echo.toml"
    path.write_text(
        f'stage = "{stage}"\napi_id = "abcdef1234"\n[stage_variables]\ncolor = "blue"\n'
        '[[functions]]\nname = "echo"\nhandler = "echo.lambda_handler"\ncode_dir = "."\n'
    )
    return path


PER_REQUEST = ("requestId", "extendedRequestId", "requestTime", "requestTimeEpoch")


def comparable(event: dict) -> dict:
    """The event without what differs per request: ids, times, the trace header."""
    event = json.loads(json.dumps(event))
    for key in PER_REQUEST:
        event["requestContext"].pop(key)
    event["headers"].pop("X-Amzn-Trace-Id")
    event["multiValueHeaders"].pop("X-Amzn-Trace-Id")
    return event


def send_exactly(base_url: str, request) -> dict:
    """The request with the line's headers and Content-Length only (no client extras)."""
    parts = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(request.method, request.path, skip_accept_encoding=True)
        for name, value in request.headers:
            connection.putheader(name, value)
        if request.body:
            connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body or None)
        response = connection.getresponse()
        text = response.read().decode()
        assert response.status in (200, 202), text
        return json.loads(text)["event"]
    finally:
        connection.close()


@pytest.mark.slow
def test_the_function_sees_the_same_event_through_the_gateway_and_through_invoke(tmp_path):
    config_path = write_config(tmp_path)
    requests = parse_lines([json.dumps(line) for line in LINES])
    api = api_settings(load_config(config_path))
    emulator = start_emulator(config=config_path, log_file=tmp_path / "emulator.log")
    try:
        client = lambda_client(emulator.base_url)
        for line in requests.lines:
            through_gateway = send_exactly(emulator.base_url, http_request(line, "test/echo"))
            converted = proxy_event(line, "echo", api)
            assert comparable(through_gateway) == comparable(converted), f"line {line.number}"
            response = client.invoke(FunctionName="echo", Payload=invoke_payload(line, "echo", api))
            through_invoke = json.loads(json.loads(response["Payload"].read())["body"])["event"]
            assert comparable(through_invoke) == comparable(through_gateway), f"line {line.number}"
        lines = write_lines(tmp_path / "requests.jsonl", LINES)
        results = tmp_path / "endpoint.json"
        completed = run_module(
            "bench.endpoint", f"{emulator.base_url}/test/echo", "--requests", str(lines),
            "--count", "40", "--warmup", "4", "--results", str(results), timeout=120,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr[-2000:]
        statuses = json.loads(results.read_text())["warm"]["statuses"]  # DELETE: 202, one line in 4
        assert set(statuses) == {"200", "202"} and sum(statuses.values()) == 40
    finally:
        assert emulator.stop() == []


@pytest.mark.slow
def test_locust_draws_the_lines_and_verify_names_a_wrong_prediction(tmp_path):
    config_path = write_config(tmp_path)
    lines = [
        {"query": {"x": "0.5"}, "expected": 0.5, "weight": 3},
        {"method": "POST", "query": {"x": "0.25"}, "body": {"k": 1}, "expected": 0.25},
        {"query": {"x": "0.75"}, "expected": 0.7},  # wrong on purpose
    ]
    requests = write_lines(tmp_path / "requests.jsonl", lines)
    emulator = start_emulator(config=config_path, log_file=tmp_path / "emulator.log")
    try:
        results = tmp_path / "locust.json"
        command = LocustCommand(
            emulator.base_url, ("test/echo",), results, users=1, spawn_rate=1, run_time_s=3,
            extra=("--requests", str(requests), "--verify", "--max-error-rate", "0.5"),
        ).argv()  # fmt: skip
        completed = run_command(command, timeout=90)
        assert results.is_file(), completed.stderr[-3000:]
        document = json.loads(results.read_text())
        endpoint = document["endpoints"]["test/echo"]
        sent = endpoint["sent"] - endpoint["outcomes"]["cancelled"]
        assert endpoint["outcomes"]["2xx"] == sent > 50
        assert 0 < endpoint["verify_failures"] < sent / 2  # line 3 only: one draw in five
        assert completed.returncode == 1 and "wrong prediction" in json.dumps(document["verdict"])
    finally:
        assert emulator.stop() == []


@pytest.mark.slow
def test_locust_refuses_a_bad_requests_line_in_one_line(tmp_path):
    bad = write_lines(tmp_path / "bad.jsonl", ['{"query": {"ms": "1"}}', '{"event": {"ms": 1}}'])
    command = LocustCommand("http://127.0.0.1:9", ("staging/sleepy",), tmp_path / "r.json", run_time_s=1)
    completed = run_command([*command.argv(), "--requests", str(bad)], timeout=60)
    assert completed.returncode == 2 and f"{bad}:2:" in completed.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_the_main_job_on_a_function_that_is_no_model(tmp_path):
    out = tmp_path / "run"
    completed = run_module(
        "bench", "--quick", "--config", str(SLEEPY / "emulator.toml"),
        "--requests", str(SLEEPY / "requests.jsonl"), "--out", str(out), timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = completed.stdout
    assert "  sleepy " in summary and "cold start p50 (fresh process): sleepy" in summary
    assert "cold starts through the emulator: sleepy first request p50" in summary
    for name in (
        "locust-sleepy-steady",
        "locust-sleepy-step",
        "coldstart-endpoint-sleepy",
        "coldstart-sleepy",
    ):
        assert (out / f"{name}.json").is_file(), name
    steady = json.loads((out / "locust-sleepy-steady.json").read_text())
    endpoint = steady["endpoints"]["staging/sleepy"]
    assert endpoint["outcomes"]["2xx"] == endpoint["sent"] - endpoint["outcomes"]["cancelled"] > 0
    assert steady["metadata"]["options"]["requests"] == str(SLEEPY / "requests.jsonl")
    report = (out / "report" / "index.html").read_text()
    assert "locust-sleepy-steady" in report and "coldstart-endpoint" in report


NUMPY_HANDLER = """
import numpy

import helper


def lambda_handler(event, context):
    return {"statusCode": 200, "body": str(float(numpy.float64(helper.VALUE)))}
"""


@pytest.mark.slow
def test_any_handler_s_cold_start_with_its_libraries_imported_apart(tmp_path):
    (tmp_path / "numpy_handler.py").write_text(NUMPY_HANDLER)
    (tmp_path / "helper.py").write_text("VALUE = 2\n")
    results = tmp_path / "coldstart.json"
    completed = run_module(
        "bench.coldstart", "--handler", "numpy_handler.lambda_handler", "--code-dir", str(tmp_path),
        "--trials", "2", "--warm", "10", "--no-progress", "--results", str(results), timeout=120,
    )  # fmt: skip
    assert completed.returncode in (0, 1, 3) and results.is_file(), completed.stderr[-2000:]
    row = json.loads(results.read_text())["variants"][0]
    assert row["name"] == "numpy_handler.lambda_handler" and row["model_format"] == "custom"
    assert list(row["imports_us"]) == ["numpy"] and row["imports_us"]["numpy"] > 0
    assert row["phases_us"]["load"] > 0 and row["warm_us"]["count"] == 20


def test_the_main_job_s_commands_for_a_config_s_functions(tmp_path):
    from bench.functionrun import locust_options, profile_commands
    from bench.pipeline import PipelineConfig, Plan

    config_path = tmp_path / "emulator.toml"
    config_path.write_text(
        '[[functions]]\nname = "model"\nhandler = "app.handler"\ncode_dir = "."\n'
        '[functions.env]\nMODEL_URI = "models/model.onnx"\n'
        '[[functions]]\nname = "other"\nhandler = "other.handler"\ncode_dir = "."\n'
    )
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.json").write_text(json.dumps({"artifacts": {"model.onnx": {"tolerance": 1e-6}}}))
    with_expected = write_lines(tmp_path / "r.jsonl", [{"query": {"a": "1"}, "expected": 0.5}])
    config = PipelineConfig(
        models=models, data=None, run_dir=tmp_path / "run", plan=Plan.quick(1.0).for_functions(),
        functions=("model",), emulator_config=config_path, requests=with_expected,
    )  # fmt: skip
    assert config.plan.endpoint_cold_trials == 2
    [(stage, command, results)] = profile_commands(config)
    assert stage.endswith(" model") and results == tmp_path / "run" / "coldstart-model.json"
    assert command[command.index("--handler") + 1] == "app.handler"
    assert command[command.index("--code-dir") + 1] == str(tmp_path)
    assert command[command.index("--env") + 1] == "MODEL_URI=models/model.onnx"
    assert command[command.index("--requests") + 1] == str(with_expected)
    assert locust_options(config, "model") == (
        "--requests", str(with_expected), "--verify", "--verify-tolerance", "1e-06",
    )  # fmt: skip
    assert locust_options(config, "other") == ("--requests", str(with_expected), "--verify")
    plain = write_lines(tmp_path / "plain.jsonl", [{"query": {"a": "1"}}])
    config = PipelineConfig(models, None, tmp_path, Plan.quick(1.0), ("model",), False, config_path, plain)
    assert locust_options(config, "model") == ("--requests", str(plain))
