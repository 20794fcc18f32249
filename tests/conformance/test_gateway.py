"""Conformance of the gateway, through the real emulator (tests/conformance/emulator.toml): the events it
builds and the replies it maps, each case with its source (handler/local/events.py and
replies.py quote them; docs/conformance.md has the table).

Every event is validated against aws-lambda-powertools' ``APIGatewayProxyEventModel`` and
compared key by key with the event AWS documents and the one recorded against AWS (SHAPE below).
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel

from tests.conftest import PROJECT_ROOT, start_emulator

pytestmark = pytest.mark.slow  # the emulator runs as a real process

# The keys of AWS's events and the type of each value: the top level as in DOC-INPUT's example
# (set-up-lambda-proxy-integrations.html), requestContext and identity as in the event LocalStack
# recorded against AWS (test_apigateway_lambda.snapshot.json, test_lambda_aws_proxy_integration,
# 2024-08-02; no authorizer, no API key). None: null for a GET without query, path parameters or
# stage variables.
STR, INT, DICT, NULL = str, int, dict, type(None)
SHAPE = {
    "resource": STR,
    "path": STR,
    "httpMethod": STR,
    "headers": DICT,
    "multiValueHeaders": DICT,
    "queryStringParameters": NULL,
    "multiValueQueryStringParameters": NULL,
    "requestContext": DICT,
    "pathParameters": NULL,
    "stageVariables": DICT,  # configured in tests/conformance/emulator.toml; null when there are none
    "body": NULL,
    "isBase64Encoded": bool,
}
CONTEXT_SHAPE = {
    "accountId": STR,
    "apiId": STR,
    "deploymentId": STR,
    "domainName": STR,
    "domainPrefix": STR,
    "extendedRequestId": STR,
    "httpMethod": STR,
    "identity": DICT,
    "path": STR,
    "protocol": STR,
    "requestId": STR,
    "requestTime": STR,
    "requestTimeEpoch": INT,
    "resourceId": STR,
    "resourcePath": STR,
    "stage": STR,
}
IDENTITY_SHAPE = {
    "accessKey": NULL,
    "accountId": NULL,
    "caller": NULL,
    "cognitoAuthenticationProvider": NULL,
    "cognitoAuthenticationType": NULL,
    "cognitoIdentityId": NULL,
    "cognitoIdentityPoolId": NULL,
    "principalOrgId": NULL,
    "sourceIp": STR,
    "user": NULL,
    "userAgent": STR,
    "userArn": NULL,
}
DOMAIN = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"


def get(url: str, headers: dict | None = None, method: str = "GET", data: bytes | None = None):
    """(status, the response's headers (every value of a repeated one: ``get_all``), body)."""
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    log_file = tmp_path_factory.mktemp("conformance") / "emulator.log"
    running = start_emulator(
        config=PROJECT_ROOT / "tests" / "conformance" / "emulator.toml", log_file=log_file
    )
    try:
        yield running
    finally:
        assert running.stop() == [], "environment processes outlived the emulator"


def echo(api, path="echo", query="", headers=None, method="GET", data=None) -> dict:
    status, _, body = get(api.url(path, query, stage="test"), headers, method, data)
    assert status == 200, body
    event = json.loads(body)["event"]
    APIGatewayProxyEventModel.model_validate(event)  # aws-lambda-powertools' model of the event
    return event


def shape(document: dict, expected: dict) -> dict:
    return {key: type(value) for key, value in document.items()} | {
        key: None for key in expected.keys() - document.keys()
    }


def test_a_get_has_the_keys_and_types_of_awss_event(api):
    event = echo(api, headers={"User-Agent": "conformance/1"})
    assert shape(event, SHAPE) == SHAPE
    assert shape(event["requestContext"], CONTEXT_SHAPE) == CONTEXT_SHAPE
    assert shape(event["requestContext"]["identity"], IDENTITY_SHAPE) == IDENTITY_SHAPE
    context = event["requestContext"]
    assert (context["domainName"], context["domainPrefix"], context["apiId"]) == (
        DOMAIN,
        "a1b2c3d4e5",
        "a1b2c3d4e5",
    )
    assert context["path"] == "/test/echo" and event["path"] == "/echo"  # TUTORIAL: stage in context.path
    assert context["extendedRequestId"] != context["requestId"]
    assert event["stageVariables"] == {"alias": "blue", "url": "https://example.com/v1?x=1&y=2"}


def raw_get(api, path: str, headers: list[tuple[str, str]], version: str = "HTTP/1.1") -> dict:
    """A request as written (header names in their case; HTTP/1.0 without Host); its event."""
    host, port = api.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        if version == "HTTP/1.0":
            connection._http_vsn, connection._http_vsn_str = 10, "HTTP/1.0"
        connection.putrequest("GET", path, skip_host=version == "HTTP/1.0", skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 200
        event = json.loads(response.read())["event"]
    finally:
        connection.close()
    APIGatewayProxyEventModel.model_validate(event)  # headers are dicts, never null
    return event


def test_headers_api_gateway_adds(api):
    event = raw_get(api, "/test/echo", [("X-Forwarded-For", "198.51.100.1"), ("tEsT-HEADeR", "aValUE")])
    headers = event["headers"]
    assert headers["Host"] == DOMAIN  # TUTORIAL: the API's domain, not the local address
    assert headers["X-Forwarded-For"] == "198.51.100.1, 127.0.0.1"
    assert (headers["X-Forwarded-Port"], headers["X-Forwarded-Proto"]) == ("443", "https")
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert headers["tEsT-HEADeR"] == "aValUE"  # CAPTURE: the client's case kept
    assert event["multiValueHeaders"]["tEsT-HEADeR"] == ["aValUE"]


def test_semicolon_splits_and_repeated_keys_keep_the_last(api):
    event = echo(api, query="a=1;b=2&p=1&p=2")
    assert event["queryStringParameters"] == {"a": "1", "b": "2", "p": "2"}  # KNOWN; CAPTURE
    assert event["multiValueQueryStringParameters"]["p"] == ["1", "2"]


def test_proxy_path_and_methods(api):
    event = echo(api, path="echo/a/b", method="DELETE")
    assert (event["resource"], event["path"]) == ("/echo/{proxy+}", "/echo/a/b")
    assert event["pathParameters"] == {"proxy": "a/b"} and event["httpMethod"] == "DELETE"
    # supported-gateway-response-types.html: an unsupported method is MISSING_AUTHENTICATION_TOKEN
    status, _, body = get(api.url("echo", stage="test"), method="PROPFIND")
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})


def test_the_stages_fast_path_splits_the_path_as_the_router_does(api):
    """``/test/...`` skips aiohttp's router (handler/local/httperrors.FastPath); a path that only
    decodes to ``/test/...`` (``/t%65st/...``) is routed. Both give the same event, ``%2F``
    decoded inside a part, as the router decodes it."""
    fast = raw_get(api, "/test/echo/a%2Fb/c", [])
    routed = raw_get(api, "/t%65st/echo/a%2Fb/c", [])
    for event in (fast, routed):
        assert (event["resource"], event["pathParameters"]) == ("/echo/{proxy+}", {"proxy": "a/b/c"})
    assert raw_get(api, "/test/echo/", [])["pathParameters"] == {"proxy": ""}
    for path in ("/test/", "/test//echo", "/test/nosuch", "/other/echo"):
        status, _, body = get(api.base_url + path)
        assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"}), path


@pytest.mark.parametrize(
    ("content_type", "encoded"),
    [("application/octet-stream", True), ("image/png", True), ("text/plain", False)],
)
def test_request_bodies_by_binary_media_types(api, content_type, encoded):
    body = b"\x00\x01binary\xff"
    event = echo(api, headers={"Content-Type": content_type}, method="POST", data=body)
    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"]) == (
        body if encoded else body.decode("utf-8", "replace")
    )


def test_an_api_key_method_has_the_key_in_its_identity(api):
    event = echo(api, path="keyed-echo", headers={"x-api-key": "conformance-key-0123456789"})
    identity = event["requestContext"]["identity"]
    assert identity["apiKey"] == "conformance-key-0123456789"
    assert isinstance(identity["apiKeyId"], str) and len(identity["apiKeyId"]) == 10


def test_an_http10_request_without_host_is_a_valid_event(api):
    event = raw_get(api, "/test/echo", [], version="HTTP/1.0")
    assert event["headers"]["Host"] == DOMAIN and event["requestContext"]["protocol"] == "HTTP/1.1"


REPLIES = [
    # (id, the function's reply, Accept, status, header expected, body, source)
    ("no-body", {"statusCode": 200}, None, 200, ("Content-Type", "application/json"), b"", "CAPTURE"),
    (
        "bool-header",
        {"statusCode": 200, "headers": {"header-bool": True}},
        None,
        200,
        ("header-bool", "true"),
        b"",
        "CAPTURE",
    ),
    (
        "merged",
        {"multiValueHeaders": {"m": ["v1"]}, "headers": {"m": "v2"}},
        None,
        200,
        ("m", "v1, v2"),
        b"",
        "CAPTURE",
    ),
    (
        "same-pair",
        {"multiValueHeaders": {"m": ["v1"]}, "headers": {"m": "v1"}},
        None,
        200,
        ("m", "v1"),
        b"",
        "DOC-OUTPUT",
    ),
    (
        "b64-text",
        {"body": "dGVzdA==", "isBase64Encoded": True},
        "text/html",
        200,
        None,
        b"dGVzdA==",
        "ENCODINGS",
    ),
    (
        "b64-binary",
        {"body": "dGVzdA==", "isBase64Encoded": True},
        "image/png",
        200,
        None,
        b"test",
        "ENCODINGS",
    ),
    ("b64-bad", {"body": "%%%", "isBase64Encoded": True}, "image/png", 500, None, None, "ENCODINGS: 500"),
    ("cookies", {"statusCode": 200, "cookies": ["a=1"]}, None, 502, None, None, "sst #2760"),
    ("multi-not-list", {"multiValueHeaders": {"m": "v"}}, None, 502, None, None, "CAPTURE"),
    ("status-str", {"statusCode": "201"}, None, 201, None, b"", "CAPTURE"),
]


@pytest.mark.parametrize(
    ("case", "data", "accept", "status", "header", "body", "source"), REPLIES, ids=[c[0] for c in REPLIES]
)
def test_reply_mapping_through_the_gateway(api, case, data, accept, status, header, body, source):
    headers = {"Content-Type": "application/json", **({"Accept": accept} if accept else {})}
    got_status, got_headers, got_body = get(
        api.url("reply", stage="test"), headers, "POST", json.dumps(data).encode()
    )
    assert got_status == status, (source, got_body)
    if header is not None:
        assert ", ".join(got_headers.get_all(header[0]) or []) == header[1], (source, got_headers)
    if body is not None:
        assert got_body == body, source
    else:
        assert json.loads(got_body) == {"message": "Internal server error"}, source
