"""Conformance of the Lambda Invoke API and the runtime, through boto3 against the real emulator
(tests/conformance/emulator.toml): what botocore parses (error code, message, function error, log tail),
each case with its source (handler/local/functionname.py, invoke_api.py, reportline.py quote
them; docs/conformance.md has the table)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.conformance.test_gateway import api  # noqa: F401  (the module's emulator)
from tests.conftest import lambda_client

pytestmark = pytest.mark.slow  # the emulator runs as a real process

ARN = "arn:aws:lambda:us-east-1:123456789012:function:echo"
WRONG_REGION = "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
TOO_LARGE = "Request must be smaller than 1048576 bytes for the InvokeAsync operation"
BIG_EVENT = json.dumps({"x": "y" * 1_048_576})


@pytest.fixture(scope="module")
def client(api):  # noqa: F811
    return lambda_client(api.base_url, read_timeout_s=30)


def error_of(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "message"),
    [
        # LocalStack's recordings against AWS, test_lambda.snapshot.json / test_lambda_api.snapshot.json
        ({"FunctionName": "nope"}, 404, "ResourceNotFoundException",
         "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope:$LATEST"),
        ({"FunctionName": "echo", "Qualifier": "live"}, 404, "ResourceNotFoundException",
         "Function not found: arn:aws:lambda:us-east-1:123456789012:function:echo:live"),
        ({"FunctionName": "arn:aws:lambda:eu-west-1:123456789012:function:echo"}, 404,
         "ResourceNotFoundException", WRONG_REGION),
        ({"FunctionName": "echo:$LATEST", "Qualifier": "live"}, 400, "InvalidParameterValueException",
         "The derived qualifier from the function name does not match the specified qualifier."),
        # AWS's Rust SDK test against Lambda (test_client_context_field_against_naughty_strings_list)
        ({"FunctionName": "echo", "ClientContext": "not base64!"}, 400, "InvalidRequestContentException",
         "Client context must be a valid Base64-encoded JSON object."),
        # botocore Invoke docs: "For asynchronous invocations, the maximum payload size is 1 MB"
        ({"FunctionName": "echo", "InvocationType": "Event", "Payload": BIG_EVENT},
         413, "RequestTooLargeException", TOO_LARGE),
    ],
    ids=["unknown", "bad-qualifier", "wrong-region", "qualifier-mismatch", "client-context", "async-size"],
)  # fmt: skip
def test_invoke_errors_as_botocore_parses_them(client, kwargs, status, code, message):
    response = error_of(lambda: client.invoke(**kwargs))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["Error"] == {"Code": code, "Message": message}
    if code == "ResourceNotFoundException":  # its shape's member is Message (botocore service-2.json)
        assert response["Message"] == message and response["Type"] == "User"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"FunctionName": ARN},
        {"FunctionName": "123456789012:function:echo"},
        {"FunctionName": "echo", "Qualifier": "$LATEST"},
        {"FunctionName": f"{ARN}:$LATEST"},
    ],
    ids=["arn", "partial-arn", "qualifier", "arn-with-qualifier"],
)
def test_every_function_name_form_invokes_latest(client, kwargs):
    response = client.invoke(**kwargs)  # API_Invoke: name, ARN, partial ARN, with a qualifier
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"


def test_get_function_configuration_by_arn_and_its_runtime_is_the_environments(client):
    configuration = client.get_function_configuration(FunctionName=ARN)
    body = json.loads(json.loads(client.invoke(FunctionName="echo")["Payload"].read())["body"])
    # configuration-envvars.html: AWS_EXECUTION_ENV is "The runtime identifier, prefixed by AWS_Lambda_"
    assert body["execution_env"] == f"AWS_Lambda_{configuration['Runtime']}"
    missing = error_of(lambda: client.get_function(FunctionName="nope"))
    assert missing["Message"] == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"


def test_client_context_reaches_the_function_for_synchronous_calls(client):
    context = {"custom": {"tenant": "t-1"}, "env": {"locale": "en-GB"}}
    encoded = base64.b64encode(json.dumps(context).encode()).decode()
    response = client.invoke(FunctionName="echo", ClientContext=encoded)
    body = json.loads(json.loads(response["Payload"].read())["body"])
    assert body["client_context"] == context  # RIE passes the decoded JSON; RIC builds the object
    plain = json.loads(json.loads(client.invoke(FunctionName="echo")["Payload"].read())["body"])
    assert plain["client_context"] is None


def test_an_event_invocation_is_accepted(client, api):  # noqa: F811
    response = client.invoke(FunctionName="echo", InvocationType="Event", Payload=b"{}")
    assert response["StatusCode"] == 202  # API_Invoke: 202 for Event
    assert client.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204
    # The 202 names the invocation that runs later (its REPORT line), as every retry would.
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    deadline = time.monotonic() + 20
    while f"REPORT RequestId: {request_id}\t" not in api.log_file.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, f"no REPORT line for the event's request id {request_id}"
        time.sleep(0.05)


def report_of(response) -> str:
    log = base64.b64decode(response["LogResult"]).decode()
    return next(line for line in log.splitlines() if line.startswith("REPORT RequestId: "))


def faulty(client, fault: str):
    payload = json.dumps({"queryStringParameters": {"fault": fault, "seconds": "3"}})
    return client.invoke(FunctionName="faulty", Payload=payload, LogType="Tail")


def test_report_lines_as_cloudwatch_writes_them(client):
    # RIE's REPORT format (every field followed by a tab); a timeout or a runtime exit ends with
    # its Status (and Error Type), as CloudWatch shows them (handler/local/reportline.py)
    normal = report_of(faulty(client, "none"))
    assert normal.endswith("\t") and "Status:" not in normal
    timed_out = faulty(client, "sleep")
    assert timed_out["FunctionError"] == "Unhandled"
    assert report_of(timed_out).endswith("\tStatus: timeout")
    killed = faulty(client, "sigkill")
    payload = json.loads(killed["Payload"].read())
    # RIE supervisor/model.go: Go's text for SIGKILL, "signal: killed"
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert report_of(killed).endswith("\tStatus: error\tError Type: Runtime.ExitError")
