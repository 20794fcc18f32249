"""Lambda's Invoke and configuration API, so that boto3 (``endpoint_url=...``) and tools
written for AWS (Lambda Power Tuning, lambda-perf) run unchanged against the emulator.

``POST /2015-03-31/functions/{name}/invocations`` (RequestResponse, Event, DryRun;
``X-Amz-Log-Type: Tail`` returns the last 4 KB of the log, REPORT line included, base64, in
``X-Amz-Log-Result``; the emulator's EMULATOR line follows the REPORT line there, and its
figures are ``X-Emulator-*`` headers), ``GET /2015-03-31/functions/{name}[/configuration]`` and
``PUT /2015-03-31/functions/{name}/configuration``: a change of environment variables
recycles the function's environments, so the next invocation is cold.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json

from aiohttp import web

from handler.local.invocation import emulator_headers
from handler.local.pool import ACCOUNT_ID, MAX_REQUEST_BYTES, Outcome, Pool, Throttled, UnknownFunction

PREFIX = "/2015-03-31/functions"
LOG_TAIL_BYTES = 4096
RUNTIME = "python3.12"


def _aws_error(status: int, error_type: str, message: str, **extra: str) -> web.Response:
    return web.json_response(
        {"Type": "User", "message": message, **extra},
        status=status,
        headers={"x-amzn-ErrorType": error_type},
    )


def log_tail(outcome: Outcome) -> str:
    """The invocation's log as Lambda returns it for LogType=Tail: base64 of the last 4 KB."""
    lines = [f"START RequestId: {outcome.request_id} Version: $LATEST", *outcome.logs]
    lines.append(f"END RequestId: {outcome.request_id}")
    if outcome.report is not None:
        lines.append(outcome.report.format())
    if outcome.emulator is not None:
        lines.append(outcome.emulator.format())
    text = ("\n".join(lines) + "\n").encode("utf-8")[-LOG_TAIL_BYTES:]
    return base64.b64encode(text).decode("ascii")


class InvokeApi:
    def __init__(self, pool: Pool, region: str) -> None:
        self.pool = pool
        self.region = region
        self._background: set[asyncio.Task] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{PREFIX}/{{name}}/invocations", self.invoke)
        app.router.add_get(f"{PREFIX}/{{name}}/configuration", self.get_configuration)
        app.router.add_put(f"{PREFIX}/{{name}}/configuration", self.update_configuration)
        app.router.add_get(f"{PREFIX}/{{name}}", self.get_function)

    def _arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}"

    def _not_found(self, name: str) -> web.Response:
        return _aws_error(404, "ResourceNotFoundException", f"Function not found: {self._arn(name)}")

    def configuration(self, name: str) -> dict:
        state = self.pool.function(name)
        config = state.config
        return {
            "FunctionName": config.name,
            "FunctionArn": self._arn(config.name),
            "Runtime": RUNTIME,
            "Role": f"arn:aws:iam::{ACCOUNT_ID}:role/lambda-local",
            "Handler": config.handler,
            "CodeSize": 0,
            "Description": "local emulator",
            "Timeout": int(config.timeout_s),
            "MemorySize": config.memory_mb,
            "EphemeralStorage": {"Size": config.ephemeral_storage_mb},
            "LastModified": dt.datetime.fromtimestamp(state.last_modified, dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000+0000"
            ),
            "Version": "$LATEST",
            "Environment": {"Variables": dict(config.env)},
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
        }

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            self.pool.function(name)
        except UnknownFunction:
            return self._not_found(name)
        payload = await request.read() or b"{}"
        if len(payload) > MAX_REQUEST_BYTES:
            return _aws_error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the InvokeFunction operation",
            )
        try:
            json.loads(payload)
        except ValueError:
            return _aws_error(400, "InvalidRequestContentException", "Could not parse request body into json")
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            return web.Response(status=204)
        if invocation_type == "Event":
            task = asyncio.create_task(self._invoke_quietly(name, payload))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return web.Response(status=202)
        if invocation_type != "RequestResponse":
            return _aws_error(
                400,
                "InvalidParameterValueException",
                f"bad X-Amz-Invocation-Type {invocation_type}",
            )
        try:
            outcome = await self.pool.invoke(name, payload)
        except Throttled:
            return _aws_error(
                429,
                "TooManyRequestsException",
                "Rate Exceeded.",
                Reason="ReservedFunctionConcurrentInvocationLimitExceeded",
            )
        headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": outcome.request_id}
        headers.update(emulator_headers(outcome))
        if outcome.function_error is not None:
            headers["X-Amz-Function-Error"] = outcome.function_error
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            await asyncio.sleep(0.002)  # let output written before the reply reach the log
            headers["X-Amz-Log-Result"] = log_tail(outcome)
        return web.Response(body=outcome.payload, headers=headers, content_type="application/json")

    async def _invoke_quietly(self, name: str, payload: bytes) -> None:
        # Lambda would retry a throttled async event; the emulator drops it.
        with contextlib.suppress(Throttled):
            await self.pool.invoke(name, payload)

    async def get_configuration(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            return web.json_response(self.configuration(name))
        except UnknownFunction:
            return self._not_found(name)

    async def get_function(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            configuration = self.configuration(name)
        except UnknownFunction:
            return self._not_found(name)
        return web.json_response({"Configuration": configuration, "Code": {}, "Tags": {}})

    async def update_configuration(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            self.pool.function(name)
        except UnknownFunction:
            return self._not_found(name)
        try:
            body = json.loads(await request.read() or b"{}")
            variables = body.get("Environment", {}).get("Variables")
            memory = body.get("MemorySize")
            timeout = body.get("Timeout")
            if variables is not None and not all(isinstance(v, str) for v in variables.values()):
                raise ValueError("environment values must be strings")
            if memory is not None and not (isinstance(memory, int) and 128 <= memory <= 10_240):
                raise ValueError(f"MemorySize {memory!r}")
            if timeout is not None and not (isinstance(timeout, int) and 1 <= timeout <= 900):
                raise ValueError(f"Timeout {timeout!r}")
        except (ValueError, AttributeError) as exc:
            return _aws_error(400, "InvalidParameterValueException", str(exc))
        self.pool.update_configuration(
            name,
            env=variables,
            memory_mb=memory,
            timeout_s=float(timeout) if timeout is not None else None,
        )
        return web.json_response(self.configuration(name))
