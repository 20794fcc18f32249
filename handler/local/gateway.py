"""API Gateway (REST API, Lambda proxy integration) in front of the pool.

Any method on ``/{stage}/{function}`` (and below it) becomes API Gateway's v1 proxy event;
the function's reply is mapped back as API Gateway does: ``statusCode``, ``headers``,
``multiValueHeaders``, ``body``, ``isBase64Encoded``. A reply with only a ``body`` (the
tutorial's) is 200 ``application/json``, as SAM CLI and LocalStack do. A malformed reply or a
function error is 502 ``{"message": "Internal server error"}``; no reply within the
integration timeout (29 s) is 504. Throttling is API Gateway's: a token bucket per stage and
one per API key (usage plan), 429 ``{"message": "Too Many Requests"}``; a function that
requires a key answers 403 ``{"message": "Forbidden"}`` without a valid ``x-api-key``. A
Lambda concurrency throttle is 500, as API Gateway answers it (configurable).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid

from aiohttp import web
from multidict import CIMultiDict

from handler.local.config import EmulatorConfig
from handler.local.httperrors import message_response as _message
from handler.local.invocation import emulator_headers
from handler.local.pool import (
    ACCOUNT_ID,
    MAX_REQUEST_BYTES,
    DeadlineExceeded,
    Pool,
    Throttled,
    UnknownFunction,
)
from handler.local.throttle import TokenBucket

ALLOWED_REPLY_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded", "cookies"}
)
COLD_START_HEADER = "X-Emulator-Init-Duration-Ms"


class MalformedReply(ValueError):
    pass


def _map_reply(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda proxy reply -> (status, headers, body); MalformedReply if API Gateway would 502."""
    try:
        reply = json.loads(payload)
    except ValueError as exc:
        raise MalformedReply("not JSON") from exc
    if not isinstance(reply, dict):
        raise MalformedReply("not an object")
    unknown = set(reply) - ALLOWED_REPLY_KEYS
    if unknown:
        raise MalformedReply(f"unexpected keys {sorted(unknown)}")
    status = reply.get("statusCode", 200)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedReply(f"statusCode {status!r}")
    headers: list[tuple[str, str]] = []
    single = reply.get("headers") or {}
    multi = reply.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        raise MalformedReply("headers must be objects")
    for name, value in single.items():
        if isinstance(value, dict | list):
            raise MalformedReply(f"header {name!r}")
        headers.append((str(name), str(value)))
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedReply(f"multiValueHeader {name!r}")
        headers.extend((str(name), str(value)) for value in values)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = reply.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        if reply.get("isBase64Encoded") is True:
            try:
                data = base64.b64decode(body, validate=True)
            except ValueError as exc:
                raise MalformedReply("body is not base64") from exc
        else:
            data = body.encode("utf-8")
    else:
        raise MalformedReply("body must be a string")
    return status, headers, data


class Gateway:
    def __init__(self, config: EmulatorConfig, pool: Pool) -> None:
        self.config = config
        self.pool = pool
        self.stage_bucket = TokenBucket(config.throttle.rate, config.throttle.burst)
        self.key_buckets = {key.value: TokenBucket(key.rate, key.burst) for key in config.api_keys}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{stage}/{function}", self.handle)
        app.router.add_route("*", "/{stage}/{function}/{proxy:.*}", self.handle)

    def url(self, host: str, port: int, function: str) -> str:
        return f"http://{host}:{port}/{self.config.stage}/{function}"

    def _event(self, request: web.Request, function: str, body: bytes, request_id: str) -> dict:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in request.query.items():
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        try:
            text: str | None = body.decode("utf-8") if body else None
            encoded = False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
        proxy = request.match_info.get("proxy")
        resource = f"/{function}/{{proxy+}}" if proxy is not None else f"/{function}"
        path = f"/{function}/{proxy}" if proxy is not None else f"/{function}"
        now = time.time()
        peer = request.remote or "127.0.0.1"
        return {
            "resource": resource,
            "path": path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {"proxy": proxy} if proxy is not None else None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": resource,
                "httpMethod": request.method,
                "extendedRequestId": request_id,
                "requestTime": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.config.stage}{path}",
                "accountId": ACCOUNT_ID,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "stage": self.config.stage,
                "domainPrefix": "localhost",
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "sourceIp": peer,
                    "userAgent": request.headers.get("User-Agent"),
                    "apiKey": request.headers.get("x-api-key"),
                },
                "domainName": request.host,
                "apiId": "local",
            },
            "body": text,
            "isBase64Encoded": encoded,
        }

    @staticmethod
    def _with_figures(response: web.Response, outcome) -> web.Response:
        """The emulator's CPU figures on an error reply too (a 502 after an OOM, say)."""
        response.headers.update(emulator_headers(outcome))
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["stage"] != self.config.stage:
            return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        function = request.match_info["function"]
        try:
            state = self.pool.function(function)
        except UnknownFunction:
            return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        api_key = request.headers.get("x-api-key")
        key_bucket = self.key_buckets.get(api_key) if api_key is not None else None
        if state.config.api_key_required and key_bucket is None:
            return _message(403, "Forbidden", "ForbiddenException")
        if not self.stage_bucket.take() or (key_bucket is not None and not key_bucket.take()):
            return _message(429, "Too Many Requests", "TooManyRequestsException")
        request_id = str(uuid.uuid4())
        event = self._event(request, function, await request.read(), request_id)
        payload = json.dumps(event).encode()
        if len(payload) > MAX_REQUEST_BYTES:  # the event would exceed Lambda's invocation limit
            return _message(413, "Request Too Long", "RequestTooLargeException")
        try:
            outcome = await self.pool.invoke(function, payload, self.config.integration_timeout_s)
        except Throttled:
            status = self.config.lambda_throttle_status
            if status == 429:
                return _message(429, "Too Many Requests", "TooManyRequestsException")
            return _message(status, "Internal server error", "InternalServerErrorException")
        except DeadlineExceeded:
            return _message(504, "Endpoint request timed out", "IntegrationTimeout")
        if outcome.function_error is not None:
            return self._with_figures(
                _message(502, "Internal server error", "InternalServerErrorException"), outcome
            )
        try:
            status, headers, body = _map_reply(outcome.payload)
        except MalformedReply:
            return self._with_figures(
                _message(502, "Internal server error", "InternalServerErrorException"), outcome
            )
        response_headers = CIMultiDict(headers)
        response_headers.update(emulator_headers(outcome))
        response_headers["x-amzn-RequestId"] = request_id
        if outcome.cold and outcome.init_duration_ms:
            response_headers[COLD_START_HEADER] = f"{outcome.init_duration_ms:.3f}"
        return web.Response(status=status, body=body, headers=response_headers)
