"""A Lambda proxy integration's reply mapped to the HTTP response, as API Gateway (REST API) maps it.

Pure: the function's payload, the API's binaryMediaTypes and the request's ``Accept`` in; the
status, headers and body out, or :class:`MalformedReply` (API Gateway answers 502 ``{"message":
"Internal server error"}``, logging "Malformed Lambda proxy response") or :class:`BinaryDecodeError`
(500). The references used throughout:

- DOC-OUTPUT: "Output format of a Lambda function for proxy integration",
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
- CAPTURE: replies tried against AWS by LocalStack (``@markers.aws.validated``, 2024-11-15),
  localstack/localstack tests/aws/services/apigateway/test_apigateway_lambda.snapshot.json,
  ``test_aws_proxy_response_payload_format_validation`` (the function returned each reply);
- SAM: aws/aws-sam-cli samcli/local/apigw/local_apigw_service.py,
  ``_parse_v1_payload_format_lambda_output`` and ``get_base_64_encoded``;
- ENCODINGS: "Content type conversions in API Gateway",
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings-workflow.html
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from handler.local.events import matches_binary, media_type

# DOC-OUTPUT's keys; ``base64Encoded`` is REST's undocumented alias, read first (SAM, "based on
# some trials"). ``cookies`` is payload 2.0's: a REST API answers 502 for it (anomalyco/sst #2760,
# "return "cookies" will make API GW error with REST"); so does any other key (CAPTURE,
# ``invoke-api-wrong-format``).
REPLY_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "base64Encoded"}
)


class MalformedReply(ValueError):
    """DOC-OUTPUT: "If the function output is of a different format, API Gateway returns a 502"."""


class BinaryDecodeError(ValueError):
    """ENCODINGS: "If the conversion fails, it returns a 500 response" (the gateway response
    API_CONFIGURATION_ERROR: "base64 decoding fails on binary data when binary support is enacted")."""


def _status(value: object) -> int:
    """``statusCode``: missing → 200 (CAPTURE ``invoke-api-only-headers``); ``"201"`` → 201 (CAPTURE
    ``invoke-api-status-code-str``); ``"test"`` → 502 (CAPTURE ``invoke-api-invalid-status-code``).
    Outside 100..599 → 502 (inferred: no HTTP status)."""
    if value is None:
        return 200
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
        raise MalformedReply(f"statusCode {value!r}")
    return value


def _header_value(name: str, value: object) -> str | None:
    """A header value as API Gateway writes it: a string as is; ``true`` → ``"true"`` (CAPTURE
    ``invoke-api-with-headers``: ``"header-bool": True`` arrives as ``header-bool: true``); a number
    as its JSON text and ``null`` as no header (inferred, as ``true``); an object or a list → 502."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise MalformedReply(f"header {name!r} is not a string")


def _headers(reply: dict) -> list[tuple[str, str]]:
    """``multiValueHeaders`` then ``headers``, merged as DOC-OUTPUT says: "If you specify values
    for both headers and multiValueHeaders, API Gateway merges them into a single list. If the
    same key-value pair is specified in both, only the values from multiValueHeaders will appear"
    (CAPTURE ``invoke-api-multi-headers-overwrite``: ``value-multi, value-solo``; names compared
    without case, ``...-overwrite-casing``). ``null`` maps are none (CAPTURE
    ``invoke-api-with-headers-null``); a multi value that is not a list → 502 (CAPTURE
    ``invoke-api-multi-headers-invalid``)."""
    single = reply.get("headers")
    multi = reply.get("multiValueHeaders")
    if single is None:
        single = {}
    if multi is None:
        multi = {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedReply("headers and multiValueHeaders must be objects")
    merged: list[tuple[str, str]] = []
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedReply(f"multiValueHeaders {name!r} is not a list")
        merged.extend((name, text) for value in values if (text := _header_value(name, value)) is not None)
    for name, value in single.items():
        text = _header_value(name, value)
        if text is None:
            continue
        if any(other.lower() == name.lower() and other_value == text for other, other_value in merged):
            continue
        merged.append((name, text))
    return merged


def _base64_flag(reply: dict) -> bool:
    """``base64Encoded`` (first) or ``isBase64Encoded``: a boolean, or the strings ``"true"``/``"True"``/
    ``"false"``/``"False"``; anything else → 502 (SAM ``get_base_64_encoded``, from trials on AWS)."""
    name = "base64Encoded" if reply.get("base64Encoded") is not None else "isBase64Encoded"
    value = reply.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in ("true", "True", "false", "False"):
        return value in ("true", "True")
    raise MalformedReply(f"{name} {value!r}")


def first_accept(accept: str | None) -> str | None:
    """The first media type of ``Accept``: "When a request contains multiple media types in its
    Accept header, API Gateway honors only the first Accept media type" (KNOWN issues and
    api-gateway-payload-encodings.html)."""
    if not accept:
        return None
    return media_type(accept.split(",", 1)[0])


def decodes_binary(encoded: bool, accept: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether a base64 body goes out decoded: ENCODINGS, "response content type conversions" (no
    contentHandling): binaryMediaTypes set and the first Accept type matching → the binary blob;
    otherwise the text as the function returned it (CAPTURE ``invoke-api-b64-encoded-true``, no
    binaryMediaTypes: the base64 text). ``*/*`` covers every type, an absent Accept too
    (set-up-lambda-proxy-integrations.html: set ``isBase64Encoded`` "and configuring */* as a
    Binary Media Type")."""
    types = tuple(binary_media_types)
    if not encoded or not types:
        return False
    return "*/*" in types or matches_binary(first_accept(accept), types)


def map_reply(
    payload: bytes, accept: str | None = None, binary_media_types: Iterable[str] = ()
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The function's payload → (status, headers, body); MalformedReply (502), BinaryDecodeError (500)."""
    try:
        reply = json.loads(payload)
    except ValueError as exc:
        raise MalformedReply("not JSON") from exc
    if not isinstance(reply, dict):  # CAPTURE invoke-api-just-string
        raise MalformedReply("not an object")
    unknown = set(reply) - REPLY_KEYS
    if unknown:
        raise MalformedReply(f"unexpected keys {sorted(unknown)}")
    status = _status(reply.get("statusCode"))
    headers = _headers(reply)
    encoded = _base64_flag(reply)
    # KNOWN: "API Gateway includes a Content-Type header for all integration responses. By
    # default, the content type is application/json" (CAPTURE invoke-api-no-body).
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = reply.get("body")
    if body is None:  # CAPTURE invoke-api-no-body: 200 with an empty body
        return status, headers, b""
    if not isinstance(body, str):  # vincentsarago/lambda-proxy #59: an object body → 502
        raise MalformedReply("body must be a string")
    if decodes_binary(encoded, accept, binary_media_types):
        try:
            return status, headers, base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BinaryDecodeError("body is not base64") from exc
    return status, headers, body.encode("utf-8")
