"""API Gateway (REST API, Lambda proxy integration) in front of the pool.

Any of API Gateway's seven methods on ``/{stage}/{function}`` (and below it) becomes API
Gateway's v1 proxy event (``handler.local.events``: the API's Host and forwarding headers, the
full ``requestContext``, stage variables, binaryMediaTypes); the function's reply is mapped back
as API Gateway does (``handler.local.replies``). A malformed reply or a function error is 502
``{"message": "Internal server error"}``, a base64 body that does not decode 500; no reply within
the integration timeout (29 s) is 504. Another method, stage or path is 403 ``{"message":
"Missing Authentication Token"}``. Throttling is API Gateway's: a token bucket per stage and
one per API key (usage plan), 429 ``{"message": "Too Many Requests"}``; a function that requires
a key answers 403 ``{"message": "Forbidden"}`` without a valid ``x-api-key``. A Lambda
concurrency throttle is 500, as API Gateway answers it (configurable). ``docs/conformance.md``
has each behaviour with its source.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from handler.local.config import EmulatorConfig
from handler.local.events import HTTP_METHODS, Api, ClientRequest, api_key_id, event_bytes, rest_event
from handler.local.httperrors import message_response as _message
from handler.local.ids import uuid4_text
from handler.local.invocation import emulator_headers
from handler.local.pool import (
    ACCOUNT_ID,
    MAX_REQUEST_BYTES,
    THROTTLE_REASON,
    THROTTLED_HEADER,
    DeadlineExceeded,
    Pool,
    Throttled,
    UnknownFunction,
)
from handler.local.replies import BinaryDecodeError, MalformedReply, map_reply
from handler.local.throttle import TokenBucket

COLD_START_HEADER = "X-Emulator-Init-Duration-Ms"


def _unquote_part(value: str) -> str:
    """A path part as aiohttp's router decodes it (``web_urldispatcher._unquote_path_safe``)."""
    return value if "%" not in value else value.replace("%2F", "/").replace("%25", "%")


class Gateway:
    def __init__(self, config: EmulatorConfig, pool: Pool) -> None:
        self.config = config
        self.pool = pool
        self.stage_bucket = TokenBucket(config.throttle.rate, config.throttle.burst)
        self.key_buckets = {key.value: TokenBucket(key.rate, key.burst) for key in config.api_keys}
        self.api = Api(
            api_id=config.api_id,
            region=config.region,
            account_id=ACCOUNT_ID,
            stage=config.stage,
            stage_variables=dict(config.stage_variables),
            binary_media_types=config.binary_media_types,
        )

    def add_routes(self, app: web.Application) -> None:
        """Any stage's paths, for the router; the server sends its own stage's to
        :meth:`handle_stage` first (``prefix``), and the router sees only the others."""
        app.router.add_route("*", "/{stage}/{function}", self.handle)
        app.router.add_route("*", "/{stage}/{function}/{proxy:.*}", self.handle)

    @property
    def prefix(self) -> str:
        return f"/{self.config.stage}/"

    def url(self, host: str, port: int, function: str) -> str:
        return f"http://{host}:{port}/{self.config.stage}/{function}"

    def _event(
        self,
        request: web.BaseRequest,
        function: str,
        proxy: str | None,
        body: bytes,
        request_id: str,
        api_key: str | None,
    ) -> dict:
        """API Gateway's proxy event for ``request`` (``handler.local.events``)."""
        client = ClientRequest(
            method=request.method,
            function=function,
            proxy=proxy,
            headers=list(request.headers.items()),
            raw_query=request.raw_path.partition("?")[2].partition("#")[0],
            body=body,
            peer=request.remote or "127.0.0.1",
            api_key=api_key,
            api_key_id=api_key_id(api_key) if api_key is not None else None,
        )
        return rest_event(client, self.api, request_id)

    @staticmethod
    def _with_figures(response: web.Response, outcome) -> web.Response:
        """The emulator's CPU figures on an error reply too (a 502 after an OOM, say)."""
        response.headers.update(emulator_headers(outcome))
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """A routed request: ``/{stage}/{function}[/{proxy}]`` of any stage."""
        info = request.match_info
        if info["stage"] != self.config.stage:
            return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        return await self.proxy(request, info["function"], info.get("proxy"))

    async def handle_stage(self, request: web.BaseRequest) -> web.StreamResponse:
        """A request under ``prefix``, unrouted: the path split as the router splits it (on the
        path with ``%2F`` and ``%25`` still encoded, each part then decoded)."""
        rest = request.rel_url.path_safe[len(self.prefix) :]
        function, slash, proxy = rest.partition("/")
        return await self.proxy(request, _unquote_part(function), _unquote_part(proxy) if slash else None)

    async def proxy(self, request: web.BaseRequest, function: str, proxy: str | None) -> web.StreamResponse:
        """The function's invocation through the Lambda proxy integration."""
        # supported-gateway-response-types.html, MISSING_AUTHENTICATION_TOKEN (403): "including
        # the cases when the client attempts to invoke an unsupported API method or resource"
        if request.method not in HTTP_METHODS:
            return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
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
        request_id = uuid4_text()
        method_key = api_key if state.config.api_key_required else None
        event = self._event(request, function, proxy, await request.read(), request_id, method_key)
        payload = event_bytes(event)
        if len(payload) > MAX_REQUEST_BYTES:  # the event would exceed Lambda's invocation limit
            return _message(413, "Request Too Long", "RequestTooLargeException")
        try:
            outcome = await self.pool.invoke(function, payload, self.config.integration_timeout_s)
        except Throttled:
            status = self.config.lambda_throttle_status
            if status == 429:
                response = _message(429, "Too Many Requests", "TooManyRequestsException")
            else:
                response = _message(status, "Internal server error", "InternalServerErrorException")
            response.headers[THROTTLED_HEADER] = THROTTLE_REASON
            return response
        except DeadlineExceeded:
            return _message(504, "Endpoint request timed out", "IntegrationTimeout")
        if outcome.function_error is not None:
            return self._with_figures(
                _message(502, "Internal server error", "InternalServerErrorException"), outcome
            )
        try:
            status, headers, body = map_reply(
                outcome.payload, request.headers.get("Accept"), self.config.binary_media_types
            )
        except MalformedReply:
            return self._with_figures(
                _message(502, "Internal server error", "InternalServerErrorException"), outcome
            )
        except BinaryDecodeError:
            return self._with_figures(
                _message(500, "Internal server error", "InternalServerErrorException"), outcome
            )
        response_headers = CIMultiDict(headers)
        response_headers.update(emulator_headers(outcome))
        response_headers["x-amzn-RequestId"] = request_id
        if outcome.cold and outcome.cold_init_ms:  # also a retried init's (Outcome.cold_init_ms)
            response_headers[COLD_START_HEADER] = f"{outcome.cold_init_ms:.3f}"
        return web.Response(status=status, body=body, headers=response_headers)
