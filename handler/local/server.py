"""The emulator process: one aiohttp server for API Gateway and the Invoke API, one for the
Runtime API, and the pool of environments; started and stopped as a unit.

``GET /_emulator/resource-model`` (not an AWS path) answers the resource model the figures are
produced under (``ResourceModel.describe``), so that a measuring tool can record it in its
results' metadata."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from handler.local.config import EmulatorConfig
from handler.local.gateway import Gateway
from handler.local.httperrors import JsonErrorAppRunner, json_errors
from handler.local.httperrors import message_response as _message
from handler.local.invoke_api import InvokeApi
from handler.local.logs import LogSink
from handler.local.pool import Pool
from handler.local.resources import ResourceModel
from handler.local.runtime_api import RuntimeApi
from handler.tutorial import TUTORIAL_QUERY

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
RESOURCE_MODEL_PATH = "/_emulator/resource-model"
TUTORIAL_QUERY_STRING = urlencode(TUTORIAL_QUERY)


async def _missing_token(request: web.Request) -> web.StreamResponse:
    return _message(403, "Missing Authentication Token", "MissingAuthenticationTokenException")


class Emulator:
    def __init__(self, config: EmulatorConfig, resources: ResourceModel | None = None) -> None:
        """``resources``: the resource model (default: detected from ``config``, which removes
        what an emulator that did not stop left behind); closed by ``stop``."""
        self.config = config
        self.resources = resources or ResourceModel.detect(config)
        self.logs = LogSink(config.log_file, config.quiet)
        self.runtime = RuntimeApi()
        self.pool = Pool(config, self.runtime, self.logs, resources=self.resources)
        self.gateway = Gateway(config, self.pool)
        self.app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[json_errors])
        self.app.router.add_get(RESOURCE_MODEL_PATH, self._resource_model)  # before /{stage}/{function}
        InvokeApi(self.pool, config.region).add_routes(self.app)
        self.gateway.add_routes(self.app)
        self.app.router.add_route("*", "/{tail:.*}", _missing_token)
        fast_path = (self.gateway.prefix, self.gateway.handle_stage)
        self._runner = JsonErrorAppRunner(self.app, fast_path, access_log=None, handle_signals=False)
        self._site: web.SockSite | None = None
        self.port = 0

    async def start(self) -> int:
        self.resources.prepare(list(self.config.functions))  # /tmp images, made in the background
        await self.runtime.start()
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        self.port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock, backlog=1024)
        await self._site.start()
        self.pool.start()
        return self.port

    async def _resource_model(self, request: web.Request) -> web.StreamResponse:
        functions = [state.config for state in self.pool.functions.values()]
        return web.json_response(self.resources.describe(functions))

    def urls(self) -> dict[str, str]:
        return {
            name: f"{self.gateway.url(self.config.host, self.port, name)}?{TUTORIAL_QUERY_STRING}"
            for name in self.pool.functions
        }

    def missing_models(self) -> list[str]:
        """Functions whose local MODEL_URI does not exist (they would fail their init)."""
        missing = []
        for state in self.pool.functions.values():
            uri = state.config.env.get("MODEL_URI")
            if uri and not uri.startswith("s3://") and not (state.config.code_dir / uri).exists():
                missing.append(f"{state.config.name}: {Path(state.config.code_dir, uri)}")
        return missing

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop listening, let in-flight requests finish, then stop every environment."""
        if self._site is not None:
            await self._site.stop()
        await self.pool.drain(drain_timeout_s)
        try:
            await self.pool.close()
        finally:
            self.resources.close()  # every group and /tmp directory of this emulator
        await self._runner.cleanup()
        await self.runtime.close()
        self.logs.close()


async def run_until_stopped(emulator: Emulator, stop: asyncio.Event) -> None:
    try:
        await stop.wait()
    finally:
        await emulator.stop()
