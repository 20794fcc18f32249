"""Errors at the HTTP layer answered as API Gateway answers errors: JSON ``{"message": ...}``.

Two kinds reach a client before any route runs:

- a request aiohttp's parser refuses (a bad request line, an unknown method token, a header
  or line over the size limits, a broken chunked body): aiohttp answers those itself from
  ``RequestHandler.handle_error`` as plain text and logs the parser's traceback;
  :class:`JsonErrorRequestHandler` answers them in JSON and logs one line;
- an ``HTTPException`` raised inside a route (a body over ``client_max_size`` raises 413 at
  ``request.read()``): :func:`json_errors` turns its text body into JSON.

Either way the client gets a 4xx it can parse and the log gets no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

LOG = logging.getLogger("handler.local.http")
# The messages API Gateway's default gateway responses use, where one applies.
MESSAGES = {413: "Request Too Long", 414: "Request-URI Too Long", 431: "Request Header Fields Too Large"}
# A request line or one header field may be this long (aiohttp's default is 8,190 bytes;
# a 10 kB query value or header is still a request to answer, with a 400 from the handler).
MAX_LINE_BYTES = 16 * 1024


def _message_for(status: int) -> str:
    if status in MESSAGES:
        return MESSAGES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def message_response(status: int, message: str, error_type: str | None = None) -> web.Response:
    """API Gateway's error shape: JSON ``{"message": ...}``, with ``x-amzn-ErrorType``."""
    headers = {"x-amzn-ErrorType": error_type} if error_type else None
    return web.json_response({"message": message}, status=status, headers=headers)


def error_response(status: int) -> web.Response:
    return message_response(status, _message_for(status))


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler; only the parser's error answer is changed."""

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        reason = " ".join(str(message or exc).split())[:200]
        LOG.warning("refused a request from %s: %d %s", request.remote, status, reason)
        if request.writer.output_size > 0:  # as aiohttp: too late for an answer
            raise ConnectionError("response already started; cannot send the error")
        response = error_response(status)
        response.force_close()
        return response


class _HandlerFactory:
    """Stands in for aiohttp's ``web.Server`` as the asyncio protocol factory: each connection
    gets a :class:`JsonErrorRequestHandler` registered with the real server, so keep-alive
    tracking and graceful shutdown are aiohttp's own."""

    def __init__(self, server: web.Server, **handler_options: Any) -> None:
        self._server = server
        self._options = handler_options

    def __call__(self) -> JsonErrorRequestHandler:
        return JsonErrorRequestHandler(self._server, loop=self._server._loop, **self._options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class FastPath:
    """The server's request handler: a request whose path starts with ``prefix`` goes straight
    to ``handler`` (with :func:`json_errors`' answer for an ``HTTPException``); any other to the
    application (its router and middleware). The application's machinery (router resolution,
    match info, middleware, signals) was ~6 % of a profile's samples per proxied request
    (docs/benchmarks.md, "The emulator's own cost"); the gateway's hot path skips it."""

    def __init__(self, prefix: str, handler: Handler, application: Handler) -> None:
        self.prefix, self._handler, self._application = prefix, handler, application

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if not request.raw_path.startswith(self.prefix):
            return await self._application(request)
        try:
            return await self._handler(request)
        except web.HTTPException as exc:
            return json_error(exc)


class JsonErrorAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer parser errors in JSON; ``fast_path``
    (a prefix and its handler) bypasses the application for the paths it covers."""

    def __init__(
        self, app: web.Application, fast_path: tuple[str, Handler] | None = None, **options: Any
    ) -> None:
        options.setdefault("max_line_size", MAX_LINE_BYTES)
        options.setdefault("max_field_size", MAX_LINE_BYTES)
        super().__init__(app, **options)
        self._fast_path = fast_path

    async def _make_server(self) -> Any:
        server = await super()._make_server()
        if self._fast_path is not None:  # read by each connection's RequestHandler as it starts
            server.request_handler = FastPath(*self._fast_path, server.request_handler)
        return _HandlerFactory(server, **server._kwargs)


def json_error(exc: web.HTTPException) -> web.StreamResponse:
    """An ``HTTPException`` under 500 as API Gateway's JSON (its Allow and Location kept)."""
    if exc.status >= 500:
        raise exc
    response = error_response(exc.status)
    for name in ("Allow", "Location"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """An ``HTTPException`` from a route (e.g. 413 at ``request.read()``) as JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return json_error(exc)
