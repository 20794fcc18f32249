"""The Lambda Runtime API (2018-06-01) that each environment's runtime client talks to.

One aiohttp low-level server (``web.Server``: no application, router or middleware; two of a
proxied request's three HTTP exchanges are here, and in a minimal proxy aiohttp's application
cost 488 µs of CPU per proxied request against 404 for its low-level server, docs/benchmarks.md
"The emulator's own cost"); the four paths are matched here. Each environment gets its own
listening socket on 127.0.0.1, so the local port of a connection says which environment is
calling. Endpoints:
``GET /runtime/invocation/next``, ``POST /runtime/invocation/{id}/response``,
``POST /runtime/invocation/{id}/error``, ``POST /runtime/init/error``. The ``/next`` reply
always carries ``Content-Type`` (awslambdaric 4.2.2 crashes without it) and the documented
``Lambda-Runtime-*`` headers; aiohttp sets TCP_NODELAY on every connection (no Nagle delay).
"""

from __future__ import annotations

import asyncio
import socket
import time

from aiohttp import web

from handler.local.environment import MAX_RESPONSE_BYTES, Environment

PREFIX = "/2018-06-01/runtime"
NEXT_PATH = f"{PREFIX}/invocation/next"
INVOCATION_PREFIX = f"{PREFIX}/invocation/"
INIT_ERROR_PATH = f"{PREFIX}/init/error"
ACCEPTED_BODY = b'{"status": "OK"}'
CLIENT_MAX_BYTES = MAX_RESPONSE_BYTES + 1_048_576  # past Lambda's limit: its own 413 is ours


def _accepted() -> web.Response:
    return web.Response(status=202, body=ACCEPTED_BODY, content_type="application/json")


def _not_allowed(method: str, allowed: str) -> web.Response:
    response = web.json_response(
        {"errorMessage": f"method {method} not allowed", "errorType": "MethodNotAllowed"}, status=405
    )
    response.headers["Allow"] = allowed
    return response


def _trace_id(request_id: str) -> str:
    """An X-Ray trace header as Lambda passes it (``Root=1-<epoch hex>-<24 hex>;Parent=;Sampled=``)."""
    digits = request_id.replace("-", "")
    return f"Root=1-{int(time.time()):08x}-{digits[:24]};Parent={digits[-16:]};Sampled=0"


def _not_found() -> web.Response:
    return web.json_response({"errorMessage": "not found", "errorType": "NotFound"}, status=404)


class RuntimeApi:
    def __init__(self) -> None:
        self.runner: web.ServerRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sites: dict[int, web.SockSite] = {}
        self._environments: dict[int, Environment] = {}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        server = web.Server(self._dispatch, request_factory=self._request)
        self.runner = web.ServerRunner(server, access_log=None, handle_signals=False)
        await self.runner.setup()

    def _request(self, message, payload, protocol, writer, task) -> web.BaseRequest:
        """As ``web.Server`` builds a request, with room for Lambda's 6 MB response (the
        default allows 1 MiB)."""
        size = CLIENT_MAX_BYTES
        return web.BaseRequest(message, payload, protocol, writer, task, self._loop, client_max_size=size)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        """The four endpoints; another path is 404, another method on one of them 405."""
        # the raw path: the runtime's paths are ASCII (its request ids are UUIDs), nothing to decode
        path, method = request.raw_path.partition("?")[0], request.method
        if path == NEXT_PATH:
            return await self._next(request) if method == "GET" else _not_allowed(method, "GET")
        if path.startswith(INVOCATION_PREFIX):
            request_id, _, action = path[len(INVOCATION_PREFIX) :].partition("/")
            if request_id and action in ("response", "error"):
                if method != "POST":
                    return _not_allowed(method, "POST")
                if action == "response":
                    return await self._response(request, request_id)
                return await self._error(request, request_id)
        elif path == INIT_ERROR_PATH:
            return await self._init_error(request) if method == "POST" else _not_allowed(method, "POST")
        return _not_found()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def open_endpoint(self, environment: Environment) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert self.runner is not None, "start() first"
        site = web.SockSite(self.runner, sock)
        await site.start()
        self._sites[port] = site
        self._environments[port] = environment
        return port

    async def close_endpoint(self, port: int) -> None:
        self._environments.pop(port, None)
        site = self._sites.pop(port, None)
        if site is not None:
            await site.stop()

    def _environment(self, request: web.BaseRequest) -> Environment:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        environment = self._environments.get(sockname[1]) if sockname else None
        if environment is None:
            raise web.HTTPForbidden(text='{"errorMessage": "unknown environment"}')
        return environment

    async def _next(self, request: web.BaseRequest) -> web.StreamResponse:
        environment = self._environment(request)
        invocation = await environment.next_invocation()
        config = environment.config
        deadline_ms = int(time.time() * 1000 + config.timeout_s * 1000)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": environment.function_arn,
            "Lambda-Runtime-Trace-Id": _trace_id(invocation.request_id),
        }
        if invocation.client_context is not None:
            # runtimes-api.html: "Lambda-Runtime-Client-Context – For invocations from the AWS
            # Mobile SDK, data about the client application and device": the decoded JSON, as
            # AWS's runtime interface emulator passes it (internal/lambda/rapi/rendering.go)
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        return web.Response(body=invocation.payload, headers=headers, content_type="application/json")

    async def _response(self, request: web.BaseRequest, request_id: str) -> web.StreamResponse:
        environment = self._environment(request)
        try:
            payload = await request.read()
        except web.HTTPRequestEntityTooLarge:
            payload, size = b"", request.content_length or MAX_RESPONSE_BYTES + 1
        else:
            size = len(payload)
        if size > MAX_RESPONSE_BYTES:
            environment.response(request_id, b"", None, size=size)
            return web.json_response(
                {
                    "errorMessage": "Exceeded maximum allowed payload size",
                    "errorType": "RequestEntityTooLarge",
                },
                status=413,
            )
        if not environment.response(request_id, payload, None):
            return web.json_response({"errorMessage": "Invalid request ID"}, status=400)
        return _accepted()

    async def _error(self, request: web.BaseRequest, request_id: str) -> web.StreamResponse:
        environment = self._environment(request)
        payload = await request.read()
        if not environment.response(request_id, payload, "Unhandled"):
            return web.json_response({"errorMessage": "Invalid request ID"}, status=400)
        return _accepted()

    async def _init_error(self, request: web.BaseRequest) -> web.StreamResponse:
        environment = self._environment(request)
        environment.init_failed(await request.read())
        return _accepted()
