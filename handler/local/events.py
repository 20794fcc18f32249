"""API Gateway's event for a REST API with a Lambda proxy integration (payload 1.0), as AWS builds it.

Pure: from what the client sent (method, path, headers, raw query string, body, peer address)
and the API's settings to the event dict; no aiohttp, no I/O, so every rule here is unit-tested.
Each rule cites where AWS documents it, or the captured event it follows (``docs/conformance.md``
has the table). The references used throughout:

- DOC-INPUT: "Input format of a Lambda function for proxy integration",
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
- CAPTURE: a real event recorded against AWS by LocalStack (``@markers.aws.validated``, 2024-08-02),
  localstack/localstack tests/aws/services/apigateway/test_apigateway_lambda.snapshot.json,
  ``test_lambda_aws_proxy_integration``;
- TUTORIAL: a real regional event in the API Gateway guide's "Tutorial: Build a Hello World REST
  API with Lambda proxy integration" (awsdocs/amazon-api-gateway-developer-guide,
  doc_source/api-gateway-create-api-as-simple-proxy-for-lambda.md);
- CONTEXT: the ``$context`` variable reference,
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html
- KNOWN: "Amazon API Gateway important notes for REST APIs",
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-known-issues.html
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

import orjson

from handler.local.ids import random_bytes

# DOC-INPUT / CONTEXT ($context.httpMethod): "Valid values include: DELETE, GET, HEAD, OPTIONS,
# PATCH, POST, and PUT" (the methods ANY covers); another method is an unsupported one: 403.
HTTP_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})

# CAPTURE and DOC-INPUT: every identity key is present, null when unknown (no authorizer, no IAM).
IDENTITY_KEYS = (
    "accessKey",
    "accountId",
    "caller",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
    "sourceIp",
    "user",
    "userAgent",
    "userArn",
)


@dataclass(frozen=True)
class Api:
    """What the event needs to know about the API, its stage and its deployment."""

    api_id: str
    region: str
    account_id: str
    stage: str
    stage_variables: dict[str, str] = field(default_factory=dict)
    binary_media_types: tuple[str, ...] = ()

    @property
    def domain_name(self) -> str:
        """A regional endpoint's host: ``{api-id}.execute-api.{region}.amazonaws.com`` (TUTORIAL)."""
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    @property
    def deployment_id(self) -> str:
        return _short_id(f"deployment:{self.api_id}:{self.stage}")

    @classmethod
    def of(cls, config, account_id: str) -> Api:
        """The API an emulator configuration (``handler.local.config.EmulatorConfig``) describes:
        what the gateway serves and what ``bench.requests`` builds Invoke events for."""
        return cls(
            api_id=config.api_id,
            region=config.region,
            account_id=account_id,
            stage=config.stage,
            stage_variables=dict(config.stage_variables),
            binary_media_types=tuple(config.binary_media_types),
        )


@dataclass(frozen=True)
class ClientRequest:
    """One request as the client sent it (``headers`` in order, with the client's case)."""

    method: str
    function: str
    proxy: str | None  # the greedy path below the function (``{proxy+}``), or None
    headers: Sequence[tuple[str, str]]
    raw_query: str
    body: bytes
    peer: str
    api_key: str | None = None  # the key, when the method requires one (usage plans)
    api_key_id: str | None = None


@functools.lru_cache(maxsize=4096)  # per request, for a handful of stable seeds
def _short_id(seed: str, length: int = 6) -> str:
    """A stable lowercase id, as API Gateway's ids look: 6 characters for a resource or a
    deployment (``"resourceId": "3htbry"`` in TUTORIAL), 10 for an API or an API key."""
    digest = hashlib.sha256(seed.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[byte % len(alphabet)] for byte in digest[:length])


def api_key_id(value: str) -> str:
    """The id API Gateway would give the API key ``value`` (``$context.identity.apiKeyId``)."""
    return _short_id(f"apikey:{value}", 10)


def extended_request_id() -> str:
    """16 characters of base64 ending in ``=``, as in every capture (``"a1b2c3d4e5f6g7h="`` in
    TUTORIAL); CONTEXT: "The extended ID that API Gateway generates" (not $context.requestId)."""
    return base64.b64encode(random_bytes(11)).decode("ascii")


def trace_header(now_s: float) -> str:
    """An X-Ray trace header as API Gateway adds it (``Root=1-<8 hex epoch>-<24 hex>``, TUTORIAL)."""
    return f"Root=1-{int(now_s):08x}-{random_bytes(12).hex()}"


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """The query string as REST APIs split and decode it.

    KNOWN: "The semicolon character (;) is not supported for any request URL query string and
    results in the data being split" and "REST APIs decode URL-encoded request parameters": ``;``
    separates like ``&``; ``+`` is a space (CAPTURE, ``invocation-payload-with-params-encoding``:
    ``plus=test+alias@gmail.com`` arrives as ``"test alias@gmail.com"``); a key without ``=`` has
    the value ``""`` (as SAM CLI's samcli/local/apigw/event_constructor.py ``_query_string_params``).
    """
    pairs = []
    for part in (raw_query.replace(";", "&") if ";" in raw_query else raw_query).split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:  # else nothing to decode (ten pairs: 9.3 µs → 3.0)
            name, value = unquote_plus(name), unquote_plus(value)
        pairs.append((name, value))
    return pairs


@functools.lru_cache(maxsize=4)  # per request, the same second over and over
def _clf_time(epoch_s: int) -> str:
    """``$context.requestTime`` (CONTEXT: "The CLF-formatted request time (dd/MMM/yyyy:HH:mm:ss
    +-hhmm)"), in UTC as captured."""
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """DOC-INPUT "Support for multi-value headers and query string parameters": every value, in
    order, in the multi-value map; the single-value map keeps the last (CAPTURE,
    ``invocation-payload-with-params-encoding-multi``: ``price=10&price=20&price=30`` → ``"30"``)."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def media_type(content_type: str | None) -> str | None:
    """``text/plain; charset=utf-8`` → ``text/plain``; None when there is none."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def matches_binary(media: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether ``media`` is one of the API's binaryMediaTypes: an exact type, ``type/*`` or ``*/*``.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html:
    "You can use the wildcard character (*) to cover multiple media types. For example, */*
    includes all content types"; ``image/*`` checked against AWS by ministackorg/ministack PR #767.
    """
    if media is None:
        return False
    kind = media.split("/", 1)[0]
    for pattern in binary_media_types:
        pattern = pattern.strip().lower()
        if pattern in (media, "*/*") or pattern == f"{kind}/*":
            return True
    return False


def request_body(body: bytes, content_type: str | None, api: Api) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``.

    api-gateway-payload-encodings-workflow.html, "API request content type conversions" (a proxy
    integration's contentHandling is undefined): binaryMediaTypes set and the request's
    Content-Type matching → the body is base64-encoded, ``isBase64Encoded: true``; otherwise
    it is passed as a UTF-8 string (bytes that are not UTF-8 become U+FFFD: inferred, AWS does
    not say). No body → ``null`` (TUTORIAL: a GET's "body parameter will be null").
    """
    if not body:
        return None, False
    if matches_binary(media_type(content_type), api.binary_media_types):
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8", "replace"), False


def forwarded_headers(
    headers: Sequence[tuple[str, str]], api: Api, peer: str, now_s: float
) -> list[tuple[str, str]]:
    """The headers the function sees: the client's, in order and in its case (KNOWN: "Regional
    API endpoints pass all header names through as-is"), with ``Host`` the API's domain and the
    ones API Gateway adds (TUTORIAL's regional capture: ``X-Amzn-Trace-Id``, ``X-Forwarded-For``
    (the client's address), ``X-Forwarded-Port: 443``, ``X-Forwarded-Proto: https``; API Gateway
    serves HTTPS only). A client's own ``X-Forwarded-For`` is kept with its address appended, as a
    proxy does (edge capture in aws-powertools/powertools-lambda-python PR #820: ``"83.41.50.10,
    54.200.158.122"``); a client's ``X-Amzn-Trace-Id`` is kept (X-Ray: API Gateway continues an
    incoming trace)."""
    lowered = {name.lower() for name, _ in headers}
    prior_forwarded = [value for name, value in headers if name.lower() == "x-forwarded-for"]
    replaced = {"host", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
    result = [(name, value) for name, value in headers if name.lower() not in replaced]
    result.insert(0, ("Host", api.domain_name))
    if "x-amzn-trace-id" not in lowered:
        result.append(("X-Amzn-Trace-Id", trace_header(now_s)))
    result.append(("X-Forwarded-For", ", ".join([*prior_forwarded, peer])))
    result.append(("X-Forwarded-Port", "443"))
    result.append(("X-Forwarded-Proto", "https"))
    return result


def rest_event(request: ClientRequest, api: Api, request_id: str, now_s: float | None = None) -> dict:
    """The proxy event (keys in DOC-INPUT's order; ``requestContext`` as in CAPTURE)."""
    now_s = time.time() if now_s is None else now_s
    proxy = request.proxy
    resource = f"/{request.function}/{{proxy+}}" if proxy is not None else f"/{request.function}"
    path = f"/{request.function}/{proxy}" if proxy is not None else f"/{request.function}"
    headers = forwarded_headers(request.headers, api, request.peer, now_s)
    single_headers, multi_headers = _single_and_multi(headers)
    query, multi_query = _single_and_multi(parse_query(request.raw_query))
    content_type = next((value for name, value in headers if name.lower() == "content-type"), None)
    body, encoded = request_body(request.body, content_type, api)
    identity: dict[str, str | None] = dict.fromkeys(IDENTITY_KEYS)
    identity["sourceIp"] = request.peer
    identity["userAgent"] = next((value for name, value in headers if name.lower() == "user-agent"), None)
    if request.api_key is not None:
        # CONTEXT: $context.identity.apiKey "For API methods that require an API key, ... the API
        # key associated with the method request"; apiKeyId "The API key ID".
        identity["apiKey"] = request.api_key
        identity["apiKeyId"] = request.api_key_id
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": single_headers,  # never null: it always has Host (the API's domain)
        "multiValueHeaders": multi_headers,
        # null, not {}, when there is none (CAPTURE, TUTORIAL)
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": {
            "accountId": api.account_id,
            "apiId": api.api_id,
            "deploymentId": api.deployment_id,
            "domainName": api.domain_name,  # CONTEXT: "the same as the incoming Host header"
            "domainPrefix": api.api_id,  # CONTEXT: "The first label of the $context.domainName"
            "extendedRequestId": extended_request_id(),
            "httpMethod": request.method,
            "identity": identity,
            "path": f"/{api.stage}{path}",  # TUTORIAL: "/test/helloworld" (the stage included)
            # CONTEXT $context.protocol: API Gateway calls integrations with HTTP/1.1
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": _clf_time(int(now_s)),  # CLF, CONTEXT
            "requestTimeEpoch": int(now_s * 1000),  # CONTEXT: milliseconds
            "resourceId": _short_id(f"resource:{api.api_id}:{resource}"),
            "resourcePath": resource,
            "stage": api.stage,
        },
        "pathParameters": {"proxy": proxy} if proxy is not None else None,
        "stageVariables": dict(api.stage_variables) or None,  # DOC-INPUT, TUTORIAL: null when none
        "body": body,
        "isBase64Encoded": encoded,
    }


def event_bytes(event: dict) -> bytes:
    """The event as the function receives it: compact JSON, UTF-8 (orjson: 1 µs against 17 for
    ``json.dumps`` here; ``OPT_NON_STR_KEYS`` because aiohttp's header names are ``istr``, a str
    subclass orjson otherwise refuses as a key). A string that is not valid UTF-8 (a header's
    undecodable bytes, which aiohttp keeps as surrogate escapes) goes through ``json.dumps``,
    which escapes it."""
    try:
        return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(event, separators=(",", ":")).encode()
