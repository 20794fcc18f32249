"""Conformance of the emulator's pure parts (events, replies, function names, async retries, config).

Each case names the source it follows (the module docstrings quote them; docs/conformance.md
has the table). The same behaviours through the real emulator: tests/conformance/test_gateway.py
and tests/conformance/test_invoke.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from types import SimpleNamespace
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import istr

from handler.local import asyncinvoke, functionname
from handler.local.config import HOST_RUNTIME, ConfigError, load_config
from handler.local.events import Api, ClientRequest, event_bytes, matches_binary, parse_query, rest_event
from handler.local.ids import uuid4_text
from handler.local.pool import Throttled
from handler.local.replies import BinaryDecodeError, MalformedReply, map_reply

API = Api(api_id="a1b2c3d4e5", region="us-east-1", account_id="123456789012", stage="test")


def event(api: Api = API, **changes) -> dict:
    request = {
        "method": "GET",
        "function": "echo",
        "proxy": None,
        "headers": [("User-Agent", "curl/8.0")],
        "raw_query": "",
        "body": b"",
        "peer": "203.0.113.7",
        **changes,
    }
    return rest_event(ClientRequest(**request), api, "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", 1_700_000_000.5)


# -- events ---------------------------------------------------------------------------------------
QUERY_CASES = [
    # (raw query, single-value map, multi-value map, source)
    ("a=1;b=2", {"a": "1", "b": "2"}, {"a": ["1"], "b": ["2"]}, "KNOWN: ';' splits the data"),
    ("p=1&p=2&p=3", {"p": "3"}, {"p": ["1", "2", "3"]}, "CAPTURE params-encoding-multi: last value"),
    ("plus=a+b&pct=a%2Bb", {"plus": "a b", "pct": "a+b"}, None, "CAPTURE params-encoding: + is a space"),
    ("flag", {"flag": ""}, {"flag": [""]}, "SAM _query_string_params: no '=' is ''"),
]


@pytest.mark.parametrize(("raw", "single", "multi", "source"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_query_string_as_rest_apis_split_and_decode_it(raw, single, multi, source):
    built = event(raw_query=raw)
    assert built["queryStringParameters"] == single, source
    if multi is not None:
        assert built["multiValueQueryStringParameters"] == multi, source


def test_no_query_string_is_null_not_empty():
    built = event()
    # TUTORIAL / CAPTURE: null when there is none
    assert built["queryStringParameters"] is None and built["multiValueQueryStringParameters"] is None
    assert parse_query("&&;") == []


@given(st.text(alphabet="ab=&;%+2F0 é", max_size=30))
def test_parse_query_decodes_as_unquote_plus_on_every_part(raw):
    """The fast path (no ``%`` or ``+``: nothing decoded) agrees with decoding every part."""
    expected = []
    for part in re.split(r"[&;]", raw):
        if part:
            name, _, value = part.partition("=")
            expected.append((unquote_plus(name), unquote_plus(value)))
    assert parse_query(raw) == expected


def test_request_ids_are_version_4_uuids_and_distinct():
    ids = [uuid4_text() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_the_event_bytes_are_its_json_and_undecodable_header_bytes_still_serialise():
    built = event(headers=[(istr("User-Agent"), "curl/8.0 é")], raw_query="q=%E2%9C%93")  # aiohttp's names
    assert json.loads(event_bytes(built)) == built
    assert "curl/8.0 é".encode() in event_bytes(built)  # UTF-8 as is: not json.dumps' escapes
    escaped = event(headers=[("X-Raw", b"\xff".decode("utf-8", "surrogateescape"))])
    assert json.loads(event_bytes(escaped))["headers"]["X-Raw"] == "\udcff"


def test_host_and_forwarding_headers_are_api_gateways():
    built = event(headers=[("Host", "127.0.0.1:3000"), ("X-Forwarded-For", "198.51.100.1"), ("day", "Thu")])
    headers = built["headers"]
    # TUTORIAL's regional capture: Host is the API's domain; X-Forwarded-* and X-Amzn-Trace-Id added
    assert headers["Host"] == "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    assert headers["X-Forwarded-For"] == "198.51.100.1, 203.0.113.7"
    assert (headers["X-Forwarded-Port"], headers["X-Forwarded-Proto"]) == ("443", "https")
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert len(headers["X-Amzn-Trace-Id"].split("-")[2]) == 24
    assert headers["day"] == "Thu"  # KNOWN: regional endpoints pass header names as-is
    assert built["multiValueHeaders"]["X-Forwarded-For"] == ["198.51.100.1, 203.0.113.7"]
    assert built["requestContext"]["domainName"] == headers["Host"]


def test_a_clients_trace_header_is_kept():
    built = event(headers=[("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793")])
    assert built["headers"]["X-Amzn-Trace-Id"] == "Root=1-5759e988-bd862e3fe1be46a994272793"


def test_an_http10_request_without_host_still_has_header_maps():
    # research §8: headers/multiValueHeaders are required dicts in powertools' model
    built = event(headers=[])
    assert isinstance(built["headers"], dict) and isinstance(built["multiValueHeaders"], dict)
    assert built["requestContext"]["identity"]["userAgent"] is None


def test_request_context_ids_and_times():
    context = event()["requestContext"]
    assert context["requestId"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    extended = context["extendedRequestId"]
    assert len(extended) == 16 and extended.endswith("=") and extended != context["requestId"]
    assert context["domainPrefix"] == "a1b2c3d4e5"  # CONTEXT: the first label of domainName
    assert context["requestTime"] == "14/Nov/2023:22:13:20 +0000"  # CLF
    assert context["requestTimeEpoch"] == 1_700_000_000_500  # milliseconds
    assert context["path"] == "/test/echo" and context["protocol"] == "HTTP/1.1"
    assert len(context["resourceId"]) == 6 and len(context["deploymentId"]) == 6


@pytest.mark.parametrize(
    ("content_type", "binary_types", "encoded"),
    [
        ("application/octet-stream", ("application/octet-stream",), True),  # exact
        ("image/png", ("image/*",), True),  # type/* (ministack PR #767, checked against AWS)
        ("text/plain; charset=utf-8", ("*/*",), True),  # */* covers all
        ("text/plain", ("image/*",), False),
        ("application/octet-stream", (), False),  # no binaryMediaTypes: UTF-8 text
    ],
)
def test_request_body_is_base64_only_for_binary_media_types(content_type, binary_types, encoded):
    api = Api(API.api_id, API.region, API.account_id, API.stage, binary_media_types=binary_types)
    body = b"\x00\xffdata"
    built = event(headers=[("Content-Type", content_type)], body=body, api=api)
    assert built["isBase64Encoded"] is encoded
    if encoded:
        assert base64.b64decode(built["body"]) == body
    else:
        assert built["body"] == body.decode("utf-8", "replace")


def test_stage_variables_and_api_key_identity():
    api = Api(API.api_id, API.region, API.account_id, API.stage, stage_variables={"alias": "blue"})
    built = event(api=api, api_key="k" * 20, api_key_id="abcdefghij")
    assert built["stageVariables"] == {"alias": "blue"}
    identity = built["requestContext"]["identity"]
    assert (identity["apiKey"], identity["apiKeyId"]) == ("k" * 20, "abcdefghij")
    assert "apiKey" not in event()["requestContext"]["identity"]  # CAPTURE: no key required, none
    assert event()["stageVariables"] is None


def test_matches_binary_rejects_a_missing_type():
    assert not matches_binary(None, ("*/*",))


# -- replies --------------------------------------------------------------------------------------
def reply(data, accept=None, binary=()):
    return map_reply(json.dumps(data).encode(), accept, binary)


REPLY_CASES = [
    # (id, reply, status, headers expected among the response's, body, source)
    ("only-status", {"statusCode": 200}, 200, [("Content-Type", "application/json")], b"", "CAPTURE no-body"),
    ("status-str", {"statusCode": "201"}, 201, [], b"", "CAPTURE status-code-str"),
    ("only-headers", {"headers": {"a": "b"}}, 200, [("a", "b")], b"", "CAPTURE only-headers"),
    ("header-bool", {"headers": {"h": True, "n": 3}}, 200, [("h", "true"), ("n", "3")], b"", "CAPTURE"),
    ("headers-null", {"statusCode": 200, "headers": None}, 200, [], b"", "CAPTURE with-headers-null"),
    (
        "merge",
        {"multiValueHeaders": {"m": ["v-multi"]}, "headers": {"m": "v-solo"}},
        200,
        [("m", "v-multi"), ("m", "v-solo")],
        b"",
        "CAPTURE multi-headers-overwrite; DOC-OUTPUT",
    ),
    (
        "same-pair-once",
        {"multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "headers": {"set-cookie": "a=1"}},
        200,
        [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        b"",
        "DOC-OUTPUT: only the values from multiValueHeaders",
    ),
    ("b64-no-types", {"body": "dGVzdA==", "isBase64Encoded": True}, 200, [], b"dGVzdA==", "CAPTURE b64-true"),
    (
        "b64-str",
        {"body": "dGVzdA==", "isBase64Encoded": "true"},
        200,
        [],
        b"dGVzdA==",
        "SAM get_base_64_encoded",
    ),
]


@pytest.mark.parametrize(
    ("case", "data", "status", "headers", "body", "source"), REPLY_CASES, ids=[c[0] for c in REPLY_CASES]
)
def test_reply_mapping(case, data, status, headers, body, source):
    got_status, got_headers, got_body = reply(data)
    assert got_status == status, source
    for header in headers:
        assert header in got_headers, (source, got_headers)
    if case == "same-pair-once":
        assert len([h for h in got_headers if h[0].lower() == "set-cookie"]) == 2
    assert got_body == body, source


MALFORMED = [
    ("cookies", {"statusCode": 200, "cookies": ["a=1"]}, "sst #2760: cookies is payload 2.0's"),
    ("unknown-key", {"statusCode": 200, "wrongValue": "value"}, "CAPTURE wrong-format"),
    ("multi-not-list", {"multiValueHeaders": {"m": "v"}}, "CAPTURE multi-headers-invalid"),
    ("status-word", {"statusCode": "test"}, "CAPTURE invalid-status-code"),
    ("status-bool", {"statusCode": True}, "inferred: not a status"),
    ("body-object", {"body": {"not": "a string"}}, "vincentsarago/lambda-proxy #59"),
    ("header-object", {"headers": {"h": {"a": 1}}}, "inferred: not a header value"),
    ("b64-flag-word", {"body": "x", "isBase64Encoded": "yes"}, "SAM get_base_64_encoded"),
    ("a-string", "justAString", "CAPTURE just-string"),
]


@pytest.mark.parametrize(("case", "data", "source"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_replies_are_502(case, data, source):
    with pytest.raises(MalformedReply):
        reply(data)


def test_base64_body_is_decoded_by_the_first_accept_type_only():
    data = {"body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True}
    assert reply(data, "image/png, text/html", ("image/png",))[2] == b"\x89PNG"
    # KNOWN: only the first Accept media type is honoured
    assert reply(data, "text/html, image/png", ("image/png",))[2] == data["body"].encode()
    assert reply(data, None, ("*/*",))[2] == b"\x89PNG"  # */* covers every type
    assert reply({**data, "base64Encoded": False}, "image/png", ("image/png",))[2] == data["body"].encode()
    with pytest.raises(BinaryDecodeError):  # ENCODINGS: a failed conversion is 500
        reply({"body": "not base64!", "isBase64Encoded": True}, "image/png", ("image/png",))


# -- function names -------------------------------------------------------------------------------
ARN = "arn:aws:lambda:us-east-1:123456789012:function:echo"
NAME_CASES = [
    ("echo", None, functionname.FunctionRef("echo", None)),
    ("echo:$LATEST", None, functionname.FunctionRef("echo", "$LATEST")),
    (ARN, None, functionname.FunctionRef("echo", None)),
    (f"{ARN}:live", None, functionname.FunctionRef("echo", "live")),
    ("123456789012:function:echo", "$LATEST", functionname.FunctionRef("echo", "$LATEST")),
]


@pytest.mark.parametrize(("name", "qualifier", "expected"), NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_function_name_forms(name, qualifier, expected):
    # API_Invoke: a name, name:qualifier, a function ARN, a partial ARN
    assert functionname.parse(name, qualifier, "us-east-1", "123456789012") == expected


@pytest.mark.parametrize(
    ("name", "qualifier", "status", "code", "message"),
    [
        ("arn:aws:lambda:eu-west-1:123456789012:function:echo", None, 404, "ResourceNotFoundException",
         "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"),
        ("echo:$LATEST", "live", 400, "InvalidParameterValueException",
         "The derived qualifier from the function name does not match the specified qualifier."),
        ("bad name!", None, 400, "ValidationException", "1 validation error detected"),
        ("a" * 65, None, 400, "ValidationException", "length less than or equal to 64"),
    ],
)  # fmt: skip
def test_function_name_errors_as_aws_answers(name, qualifier, status, code, message):
    # LocalStack's recordings against AWS (test_lambda_api.snapshot.json, 2025-11)
    with pytest.raises(functionname.ApiError) as caught:
        functionname.parse(name, qualifier, "us-east-1", "123456789012")
    assert (caught.value.status, caught.value.code) == (status, code)
    assert message in caught.value.message


def test_not_found_names_latest_for_invoke_only():
    ref = functionname.FunctionRef("nope", None)
    invoke = functionname.not_found("us-east-1", "123456789012", ref, invoke=True)
    get = functionname.not_found("us-east-1", "123456789012", ref, invoke=False)
    assert invoke.message == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope:$LATEST"
    assert get.message == "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"


# -- asynchronous invocation ----------------------------------------------------------------------
class FakePool:
    """Answers each invoke from a script: "error", "ok" or "throttle"."""

    def __init__(self, script: list[str], retries: int = 2, max_age_s: int = 21_600) -> None:
        self.script = list(script)
        self.calls = 0
        self.request_ids: list[str] = []
        self.config = SimpleNamespace(maximum_retry_attempts=retries, maximum_event_age_s=max_age_s)

    def function(self, name):
        return SimpleNamespace(config=self.config)

    async def invoke(self, name, payload, request_id):
        self.calls += 1
        self.request_ids.append(request_id)
        step = self.script.pop(0)
        if step == "throttle":
            raise Throttled(name, request_id)
        error = "Unhandled" if step == "error" else None
        return SimpleNamespace(function_error=error, error_type="RuntimeError" if error else None)


def run_queue(pool: FakePool) -> tuple[list[float], list[str]]:
    delays: list[float] = []
    lines: list[str] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    queue = asyncinvoke.AsyncQueue(pool, lambda _f, line: lines.append(line), sleep, lambda: now[0])
    asyncio.run(queue.run(asyncinvoke.AsyncEvent("f", b"{}", 0.0)))
    return delays, lines


def test_async_function_errors_are_retried_twice_after_one_then_two_minutes():
    pool = FakePool(["error", "throttle", "error", "error"])
    delays, lines = run_queue(pool)
    assert (pool.calls, delays) == (4, [60.0, 1.0, 120.0])
    assert lines == ["async event dropped after 3 attempts: RuntimeError"]
    # Every attempt is the same invocation to the function: one request id (re:Post,
    # lambda-function-duplicate-invocations: a retry has "the same request ID").
    assert len(set(pool.request_ids)) == 1 and uuid.UUID(pool.request_ids[0]).version == 4


def test_async_retries_follow_maximum_retry_attempts_and_stop_on_success():
    assert run_queue(FakePool(["error"], retries=0)) == (
        [],
        ["async event dropped after 1 attempts: RuntimeError"],
    )
    pool = FakePool(["error", "ok"])
    assert run_queue(pool) == ([60.0], []) and pool.calls == 2


def test_async_throttles_back_off_exponentially_up_to_five_minutes_within_the_event_age():
    pool = FakePool(["throttle"] * 12 + ["ok"])
    delays, lines = run_queue(pool)
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300] and lines == []
    delays, lines = run_queue(FakePool(["throttle"] * 20, max_age_s=60))
    assert sum(delays) <= 60 and lines == ["async event dropped: older than 60 s"]


# -- configuration --------------------------------------------------------------------------------
def write(tmp_path, text: str):
    path = tmp_path / "e.toml"
    path.write_text(text + '\n[[functions]]\nname = "f"\nhandler = "m.h"\n')
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[stage_variables]\n"bad-name" = "x"', "stage variable name 'bad-name'"),
        ('[stage_variables]\nv = "has space"', "must be a string matching"),
        ('binary_media_types = ["png"]', "binary_media_types must be media types"),
        ('api_id = "UPPER"', "api_id must be 10 lowercase"),
    ],
)
def test_api_settings_are_checked(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_a_runtime_other_than_the_interpreter_is_refused(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('[[functions]]\nname = "f"\nhandler = "m.h"\nruntime = "python2.7"\n')
    with pytest.raises(
        ConfigError, match=f"not the interpreter that runs the environments \\({HOST_RUNTIME}"
    ):
        load_config(path)
    path.write_text(f'[[functions]]\nname = "f"\nhandler = "m.h"\nruntime = "{HOST_RUNTIME}"\n')
    assert load_config(path).functions[0].runtime == HOST_RUNTIME


def test_a_code_dir_that_is_not_there_is_refused_at_start(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('[[functions]]\nname = "f"\nhandler = "m.h"\ncode_dir = "gone"\n')
    with pytest.raises(ConfigError, match=r"code_dir .*gone is not a directory"):
        load_config(path)
