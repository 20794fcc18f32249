"""Packaging and deployment against a real ``moto_server`` process; the S3 model path through the
emulator (moto cannot invoke functions without Docker; the emulator runs them in real processes)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml

from handler.aws import package as packaging
from handler.variants import VARIANTS, memory_size
from tests.conftest import PROJECT_ROOT, TUTORIAL_QUERY, run_module, start_emulator

BUCKET = "logit-bench-test"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def clients(url: str) -> dict:
    settings = {"endpoint_url": url, "region_name": "us-east-1"}
    settings |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return {name: boto3.client(name, **settings) for name in ("s3", "lambda", "apigateway", "iam", "logs")}


def deploy(moto_server: str, *args: str):
    return run_module("handler.aws.deploy", "--bucket", BUCKET, "--endpoint-url", moto_server, *args, env=ENV)


@pytest.fixture(scope="module")
def lean_zip(models_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    completed = run_module(
        "handler.aws.package", "--variant", "lean", "--models", str(models_dir), "--out", str(out)
    )
    assert completed.returncode == 0, completed.stderr
    return out / "logit-lean-x86_64.zip"


@pytest.mark.slow
def test_lean_package_needs_no_third_party_code_and_is_reproducible(lean_zip, models_dir, tmp_path):
    names = zipfile.ZipFile(lean_zip).namelist()
    assert names == sorted(names)
    shipped = {f"handler/{path.name}" for path in (PROJECT_ROOT / "handler").glob("*.py")}
    # Exactly handler/*.py and the model: no hand list, no emulator, no deployer, nothing pip-installed.
    assert set(names) == shipped | {"model/logit.json", "model/manifest.json"}
    assert {"handler/app.py", "handler/artifacts.py", "handler/seed.py"} <= shipped
    assert lean_zip.stat().st_size < 50_000
    again = run_module(
        "handler.aws.package", "--variant", "lean", "--models", str(models_dir), "--out", str(tmp_path)
    )
    assert again.returncode == 0
    assert (tmp_path / lean_zip.name).read_bytes() == lean_zip.read_bytes()  # same bytes, same CodeSha256


def test_a_package_over_lambdas_limits_is_refused_and_the_good_one_kept(models_dir, tmp_path, monkeypatch):
    config = packaging.PackageConfig(VARIANTS["lean"], "x86_64", models_dir, tmp_path, False)
    good = packaging.build(config)
    before = good.path.read_bytes()
    monkeypatch.setattr(packaging, "MAX_UNZIPPED_BYTES", 1_000)
    with pytest.raises(packaging.PackageError, match=r"too big for Lambda: .* MB unzipped > Lambda's 250 MB"):
        packaging.build(config)
    assert good.path.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == [good.path.name]


def test_requirements_follow_the_variant_and_pin_the_model_library(models_dir):
    manifest = json.loads((models_dir / "manifest.json").read_text())
    sklearn = f"scikit-learn=={manifest['versions']['scikit-learn']}"
    assert packaging.requirements(VARIANTS["lean"], models_dir) == ()
    assert packaging.requirements(VARIANTS["json-numpy"], models_dir) == ("numpy",)
    assert packaging.requirements(VARIANTS["tutorial"], models_dir) == ("pandas", sklearn, "joblib")
    assert packaging.requirements(VARIANTS["numpy"], models_dir) == (sklearn, "joblib", "numpy")


@pytest.mark.slow
def test_deploy_reads_back_is_idempotent_and_tears_down(moto_server, lean_zip, models_dir):
    aws = clients(moto_server)
    args = (
        "--function",
        "logitModel",
        "--variant",
        "lean",
        "--package",
        str(lean_zip),
        "--models",
        str(models_dir),
    )
    args += ("--api-key", "--throttle-rate", "20", "--throttle-burst", "10", "--memory", "256")
    first = deploy(moto_server, *args)
    assert first.returncode == 0, first.stderr
    assert "changed" in first.stdout and "created    logitModel" in first.stdout
    # The function, as Lambda holds it.
    function = aws["lambda"].get_function(FunctionName="logitModel")
    configuration = function["Configuration"]
    sha = json.loads((models_dir / "manifest.json").read_text())["artifacts"]["logit.json"]["sha256"]
    assert (
        configuration["Runtime"] == "python3.12" and configuration["Handler"] == "handler.app.lambda_handler"
    )
    assert configuration["MemorySize"] == 256 and configuration["Timeout"] == 3
    assert configuration["Environment"]["Variables"] == {
        "MODEL_URI": "model/logit.json",
        "MODEL_FORMAT": "json",
        "INPUT_PATH": "python",
        "MODEL_SHA256": sha,
    }
    assert (
        configuration["CodeSha256"]
        == base64.b64encode(hashlib.sha256(lean_zip.read_bytes()).digest()).decode()
    )
    assert function["Tags"]["managed-by"] == "lambda-logit-bench"
    # The API: ANY /logitModel, AWS_PROXY to this function, throttled stage, usage plan, permission.
    (api,) = aws["apigateway"].get_rest_apis()["items"]
    resource = next(
        r for r in aws["apigateway"].get_resources(restApiId=api["id"])["items"] if r["path"] == "/logitModel"
    )
    integration = aws["apigateway"].get_integration(
        restApiId=api["id"], resourceId=resource["id"], httpMethod="ANY"
    )
    assert integration["type"] == "AWS_PROXY" and configuration["FunctionArn"] in integration["uri"]
    method = aws["apigateway"].get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="ANY")
    assert method["apiKeyRequired"] is True
    stage = aws["apigateway"].get_stage(restApiId=api["id"], stageName="staging")
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 20.0
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 10
    (plan,) = aws["apigateway"].get_usage_plans()["items"]
    assert plan["throttle"] == {"rateLimit": 20.0, "burstLimit": 10}
    assert plan["apiStages"] == [{"apiId": api["id"], "stage": "staging"}]
    assert len(aws["apigateway"].get_usage_plan_keys(usagePlanId=plan["id"])["items"]) == 1
    (statement,) = json.loads(aws["lambda"].get_policy(FunctionName="logitModel")["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert f":{api['id']}/*/*/logitModel" in json.dumps(statement["Condition"])
    assert (
        f"https://{api['id']}.execute-api.us-east-1.amazonaws.com/staging/logitModel?G1=1&G2=0"
        in first.stdout
    )
    objects = aws["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [item["Key"] for item in objects] == [
        f"logitModel/code/{hashlib.sha256(lean_zip.read_bytes()).hexdigest()}.zip"
    ]
    # Again: nothing to do.
    second = deploy(moto_server, *args)
    assert second.returncode == 0, second.stderr
    rows = [line for line in second.stdout.splitlines() if line.startswith("  ")]
    assert rows and all("unchanged" in row for row in rows), second.stdout
    assert "no changes" in second.stdout
    # A changed setting: only that is updated.
    third = deploy(moto_server, *args[:-1], "512")
    assert "updated    logitModel" in third.stdout and third.stdout.count("updated") == 1, third.stdout
    assert aws["lambda"].get_function_configuration(FunctionName="logitModel")["MemorySize"] == 512
    # Teardown: nothing left.
    gone = deploy(moto_server, "--function", "logitModel", "--teardown")
    assert gone.returncode == 0 and "removed" in gone.stdout, gone.stderr
    assert aws["lambda"].list_functions()["Functions"] == []
    assert aws["apigateway"].get_rest_apis()["items"] == []
    assert aws["apigateway"].get_usage_plans()["items"] == []
    assert aws["apigateway"].get_api_keys()["items"] == []
    assert aws["iam"].list_roles()["Roles"] == []
    assert BUCKET not in [bucket["Name"] for bucket in aws["s3"].list_buckets()["Buckets"]]
    assert "nothing to remove" in deploy(moto_server, "--function", "logitModel", "--teardown").stdout


@pytest.mark.slow
def test_teardown_keeps_what_the_user_brought(moto_server, lean_zip, models_dir):
    aws = clients(moto_server)
    aws["s3"].create_bucket(Bucket=BUCKET)
    aws["s3"].put_object(Bucket=BUCKET, Key="logitModel/notes.txt", Body=b"mine")
    args = ("--function", "logitModel", "--package", str(lean_zip), "--models", str(models_dir))
    assert deploy(moto_server, *args).returncode == 0
    assert deploy(moto_server, "--function", "logitModel", "--teardown").returncode == 0
    keys = [item["Key"] for item in aws["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == ["logitModel/notes.txt"]
    aws["s3"].delete_object(Bucket=BUCKET, Key="logitModel/notes.txt")
    aws["s3"].delete_bucket(Bucket=BUCKET)


@pytest.mark.slow
def test_deploy_refuses_a_function_it_did_not_create(moto_server, lean_zip, models_dir):
    aws = clients(moto_server)
    role = aws["iam"].create_role(RoleName="theirs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws["lambda"].create_function(
        FunctionName="theirs",
        Runtime="python3.12",
        Role=role,
        Handler="x.y",
        Code={"ZipFile": lean_zip.read_bytes()},
    )
    completed = deploy(
        moto_server, "--function", "theirs", "--package", str(lean_zip), "--models", str(models_dir)
    )
    assert completed.returncode == 1
    assert "exists and was not created by this tool" in completed.stderr and completed.stderr.count("\n") == 1
    aws["lambda"].delete_function(FunctionName="theirs")
    aws["iam"].delete_role(RoleName="theirs")
    assert (
        deploy(moto_server, "--function", "theirs", "--teardown").stdout.strip().endswith("nothing to remove")
    )


@pytest.mark.slow
def test_bad_arguments_exit_2(moto_server, models_dir):
    completed = deploy(moto_server, "--variant", "tutorial", "--model-from-s3", "--models", str(models_dir))
    assert completed.returncode == 2 and "--model-from-s3" in completed.stderr
    completed = deploy(moto_server, "--throttle-rate", "0", "--models", str(models_dir))
    assert completed.returncode == 2 and "must be > 0: '0'" in completed.stderr


def test_sam_template_matches_what_deploy_creates():
    from handler.aws.deploy import build_parser

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: loader.construct_scalar(node)})
    template = yaml.load((PROJECT_ROOT / "template.yaml").read_text(), Loader=Loader)
    defaults = build_parser().parse_args(["--bucket", "b"])
    variant = VARIANTS[defaults.variant]
    function = template["Resources"]["LogitModel"]["Properties"]
    api = template["Resources"]["LogitApi"]["Properties"]
    assert function["FunctionName"] == defaults.function and function["Runtime"] == "python3.12"
    assert function["Handler"] == variant.handler and function["Architectures"] == [defaults.arch]
    assert defaults.memory is None  # the variant's own size (the tutorial's lean: 128 MB)
    assert function["MemorySize"] == memory_size(variant, None)[0] and function["Timeout"] == defaults.timeout
    variables = function["Environment"]["Variables"]
    assert {k: v for k, v in variables.items() if k != "MODEL_SHA256"} == variant.environment("model")
    assert function["CodeUri"] == f"dist/logit-{defaults.variant}-{defaults.arch}.zip"
    event = function["Events"]["Predict"]["Properties"]
    assert (event["Path"], event["Method"]) == (f"/{defaults.function}", "ANY")
    assert api["StageName"] == defaults.stage and api["Name"] == f"{defaults.function}-api"
    (settings,) = api["MethodSettings"]
    parameters = template["Parameters"]
    assert parameters["ThrottleRate"]["Default"] == defaults.throttle_rate
    assert parameters["ThrottleBurst"]["Default"] == defaults.throttle_burst
    assert (
        settings["ThrottlingRateLimit"]
        == {"Ref": "ThrottleRate"}
        == api["Auth"]["UsagePlan"]["Throttle"]["RateLimit"]
    )
    assert api["Auth"]["UsagePlan"]["UsagePlanName"] == f"{defaults.function}-plan"


def _expected_prediction(models_dir: Path) -> float:
    model = json.loads((models_dir / "logit.json").read_text())
    features = [float(TUTORIAL_QUERY[name]) for name in model["features"]]
    score = model["intercept"] + sum(c * x for c, x in zip(model["coef"], features, strict=True))
    return 1 / (1 + math.exp(-score))


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _recycle(base_url: str, function: str) -> None:
    """UpdateFunctionConfiguration through the emulator's Lambda API: the next request is cold."""
    url = f"{base_url}/2015-03-31/functions/{function}/configuration"
    current = json.load(urllib.request.urlopen(url, timeout=10))["Environment"]["Variables"]
    body = json.dumps({"Environment": {"Variables": {**current, "RECYCLE": str(time.time_ns())}}}).encode()
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.mark.slow
def test_model_from_s3_predicts_in_the_emulator_and_a_tampered_one_is_refused(
    moto_server, models_dir, tmp_path
):
    aws = clients(moto_server)
    out = tmp_path / "dist"
    packaged = run_module(
        "handler.aws.package",
        "--variant",
        "lean",
        "--model-from-s3",
        "--models",
        str(models_dir),
        "--out",
        str(out),
    )
    assert packaged.returncode == 0, packaged.stderr
    package = out / "logit-lean-x86_64-s3model.zip"
    assert not any(name.startswith("model/") for name in zipfile.ZipFile(package).namelist())
    args = (
        "--function",
        "s3model",
        "--package",
        str(package),
        "--models",
        str(models_dir),
        "--model-from-s3",
    )
    completed = deploy(moto_server, *args)
    assert completed.returncode == 0, completed.stderr
    variables = aws["lambda"].get_function_configuration(FunctionName="s3model")["Environment"]["Variables"]
    assert variables["MODEL_URI"] == f"s3://{BUCKET}/s3model/model/logit.json"
    # The cold-start profiler, loading from S3: the download happens inside the measured load phase.
    profile_downloads = tmp_path / "profile-downloads"
    profile_downloads.mkdir()
    profile = run_module(
        "bench.coldstart", "--variants", "lean", "--trials", "2", "--warm", "5", "--models", str(models_dir),
        "--model-base", f"s3://{BUCKET}/s3model/model", "--results", str(tmp_path / "cold.json"),
        "--no-progress",
        env={**ENV, "AWS_ENDPOINT_URL_S3": moto_server, "MODEL_DOWNLOAD_DIR": str(profile_downloads)},
    )  # fmt: skip
    assert profile.returncode in (0, 1, 3), profile.stderr  # a verdict; 3: too few trials to claim one
    cold = json.loads((tmp_path / "cold.json").read_text())
    assert cold["metadata"]["options"]["model_base"] == f"s3://{BUCKET}/s3model/model"
    assert cold["variants"][0]["phases_us"]["load"] > 0
    assert [path.name.startswith("model-") for path in profile_downloads.iterdir()] == [True]
    # Run the deployed package, with the deployed configuration, in the emulator.
    code_dir = tmp_path / "task"
    zipfile.ZipFile(package).extractall(code_dir)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    environment = {**variables, "AWS_ENDPOINT_URL_S3": moto_server, "MODEL_DOWNLOAD_DIR": str(downloads)}
    config = tmp_path / "emulator.toml"
    config.write_text(
        'stage = "staging"\nport = 0\n\n[[functions]]\nname = "s3model"\n'
        f'handler = "handler.app.lambda_handler"\ncode_dir = "{code_dir}"\n[functions.env]\n'
        + "".join(f'{key} = "{value}"\n' for key, value in environment.items())
    )
    emulator = start_emulator(config=config, log_file=tmp_path / "emulator.log")
    try:
        url = emulator.url("s3model", "&".join(f"{k}={v}" for k, v in TUTORIAL_QUERY.items()))
        status, body = _get(url)
        assert status == 200, body
        assert body["prediction"] == pytest.approx(_expected_prediction(models_dir), abs=1e-12)
        assert len(list(downloads.iterdir())) == 1  # downloaded once, at init
        assert _get(url)[0] == 200  # warm: no second download needed
        # Someone replaces the model object: the next environment refuses to load it.
        model = json.loads((models_dir / "logit.json").read_text())
        model["intercept"] += 5.0
        aws["s3"].put_object(Bucket=BUCKET, Key="s3model/model/logit.json", Body=json.dumps(model).encode())
        _recycle(emulator.base_url, "s3model")
        status, body = _get(url)
        assert status == 502 and body == {"message": "Internal server error"}
        log = emulator.log_file.read_text()
        assert "sha256 mismatch" in log and "Runtime.ImportModuleError" in log
    finally:
        assert emulator.stop() == [], "environment processes outlived the emulator"
    assert deploy(moto_server, "--function", "s3model", "--teardown").returncode == 0


@pytest.mark.slow
def test_cloudwatch_report_lines_become_a_coldstart_result(moto_server, tmp_path):
    logs = clients(moto_server)["logs"]
    group = "/aws/lambda/watched"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now = int(time.time() * 1000)
    lines = ["START RequestId: a Version: $LATEST"]
    lines.append(
        "REPORT RequestId: a\tDuration: 2.50 ms\tBilled Duration: 40 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 40 MB\tInit Duration: 37.10 ms\t"
    )
    lines += [
        f"REPORT RequestId: w{i}\tDuration: {0.5 + i / 100:.2f} ms\tBilled Duration: 1 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 41 MB\t"
        for i in range(9)
    ]
    events = [{"timestamp": now - 1000 + i, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName="s1", logEvents=events)
    results = tmp_path / "cw.json"
    completed = run_module(
        "bench.coldstart.cloudwatch", "--function", "watched", "--since", "15m",
        "--endpoint-url", moto_server, "--results", str(results), env=ENV,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    document = json.loads(results.read_text())
    assert document["kind"] == "coldstart-cloudwatch" and document["schema_version"] == 2
    assert (
        document["invocations"] == 10 and document["cold_invocations"] == 1 and document["cold_share"] == 0.1
    )
    assert document["init_duration_us"]["p50"] == 37_100.0
    assert document["cold_start_us"]["p50"] == pytest.approx(39_600.0)
    assert document["warm_us"]["count"] == 9 and document["warm_us"]["p50"] == 540.0
    assert document["peak_rss_mb"] == 41
    report = run_module("reports", str(results), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert "<td>37.10</td>" in (tmp_path / "report" / "index.html").read_text()
    bad = run_module("bench.coldstart.cloudwatch", "--function", "watched", "--since", "an hour", env=ENV)
    assert bad.returncode == 2 and "15m, 1h or 2d" in bad.stderr
