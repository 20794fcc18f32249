"""Lambda's Invoke and configuration API, so that boto3 (``endpoint_url=...``) and tools
written for AWS (Lambda Power Tuning, lambda-perf) run unchanged against the emulator.

``POST /2015-03-31/functions/{name}/invocations`` (RequestResponse, Event, DryRun;
``X-Amz-Log-Type: Tail`` returns the last 4 KB of the log, REPORT line included, base64, in
``X-Amz-Log-Result``; the emulator's EMULATOR line follows the REPORT line there, and its
figures are ``X-Emulator-*`` headers), ``GET /2015-03-31/functions/{name}[/configuration]`` and
``PUT /2015-03-31/functions/{name}/configuration``: a change of environment variables
recycles the function's environments, so the next invocation is cold.

``{name}`` is any of Lambda's forms (a name, an ARN, a partial ARN, with ``:qualifier``;
``handler.local.functionname``); ``Qualifier`` is ``$LATEST`` or not found. ``ClientContext``
reaches the function's ``context.client_context`` (synchronous invocations only, as on Lambda);
an ``Event`` invocation is queued and retried as Lambda retries it (``handler.local.asyncinvoke``).
Errors carry botocore's shapes (lambda service-2.json): ``x-amzn-ErrorType`` and ``Type`` plus
``Message`` (ResourceNotFoundException) or ``message`` (the others).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json

from aiohttp import web

from handler.local import functionname
from handler.local.asyncinvoke import AsyncQueue
from handler.local.functionname import ApiError
from handler.local.invocation import emulator_headers
from handler.local.pool import (
    ACCOUNT_ID,
    MAX_REQUEST_BYTES,
    THROTTLE_REASON,
    THROTTLED_HEADER,
    FunctionState,
    Outcome,
    Pool,
    Throttled,
    UnknownFunction,
)
from handler.local.reportline import format_report

PREFIX = "/2015-03-31/functions"
LOG_TAIL_BYTES = 4096
# botocore's Invoke documentation (2025-10): "For asynchronous invocations, the maximum payload
# size is 1 MB" (it was 256 KB; AWS Compute Blog, "More room to build: serverless services now
# support payloads up to 1 MB").
MAX_ASYNC_REQUEST_BYTES = 1_048_576
# The members botocore reads for each error (lambda service-2.json): only
# ResourceNotFoundException's message is ``Message``; the others' is ``message``.
CAPITALIZED_MESSAGE = frozenset({"ResourceNotFoundException"})
INVALID_CLIENT_CONTEXT = "Client context must be a valid Base64-encoded JSON object."


def _aws_error(status: int, error_type: str, message: str, **extra: str) -> web.Response:
    key = "Message" if error_type in CAPITALIZED_MESSAGE else "message"
    return web.json_response(
        {"Type": "User", key: message, **extra},
        status=status,
        headers={"x-amzn-ErrorType": error_type},
    )


def _api_error(error: ApiError) -> web.Response:
    return _aws_error(error.status, error.code, error.message)


def client_context(header: str | None) -> str | None:
    """``X-Amz-Client-Context`` (base64 of a JSON object) → the JSON text for the runtime's
    ``Lambda-Runtime-Client-Context`` (AWS's RIE decodes it the same way,
    internal/lambda/rie/handlers.go); anything else is AWS's InvalidRequestContentException
    "Client context must be a valid Base64-encoded JSON object." (asserted against Lambda by
    AWS's Rust SDK test ``test_client_context_field_against_naughty_strings_list``)."""
    if header is None:
        return None
    try:
        text = base64.b64decode(header, validate=True).decode("utf-8")
        if not isinstance(json.loads(text), dict):
            raise ValueError("not an object")
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "InvalidRequestContentException", INVALID_CLIENT_CONTEXT) from exc
    return text


def log_tail(outcome: Outcome) -> str:
    """The invocation's log as Lambda returns it for LogType=Tail: base64 of the last 4 KB."""
    lines = [f"START RequestId: {outcome.request_id} Version: $LATEST", *outcome.logs]
    lines.append(f"END RequestId: {outcome.request_id}")
    if outcome.report is not None:
        lines.append(format_report(outcome.report))
    if outcome.emulator is not None:
        lines.append(outcome.emulator.format())
    text = ("\n".join(lines) + "\n").encode("utf-8")[-LOG_TAIL_BYTES:]
    return base64.b64encode(text).decode("ascii")


class InvokeApi:
    def __init__(self, pool: Pool, region: str) -> None:
        self.pool = pool
        self.region = region
        self.queue = AsyncQueue(pool, pool.logs.emulator_line)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{PREFIX}/{{name}}/invocations", self.invoke)
        app.router.add_get(f"{PREFIX}/{{name}}/configuration", self.get_configuration)
        app.router.add_put(f"{PREFIX}/{{name}}/configuration", self.update_configuration)
        app.router.add_get(f"{PREFIX}/{{name}}", self.get_function)
        app.on_shutdown.append(self._close)  # queued async events do not outlive the emulator

    async def _close(self, app: web.Application) -> None:
        await self.queue.close()

    def _arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}"

    def _resolve(self, request: web.Request, invoke: bool) -> FunctionState:
        """The function ``{name}`` (+ ``?Qualifier=``) names, or ApiError as Lambda answers."""
        ref = functionname.parse(
            request.match_info["name"], request.query.get("Qualifier"), self.region, ACCOUNT_ID
        )
        try:
            state = self.pool.function(ref.name)
        except UnknownFunction:
            raise functionname.not_found(self.region, ACCOUNT_ID, ref, invoke) from None
        if ref.qualifier not in (None, functionname.LATEST):  # no versions or aliases here
            raise functionname.not_found(self.region, ACCOUNT_ID, ref, invoke)
        return state

    def configuration(self, name: str) -> dict:
        state = self.pool.function(name)
        config = state.config
        return {
            "FunctionName": config.name,
            "FunctionArn": self._arn(config.name),
            "Runtime": config.runtime,  # the interpreter the environments run (config.HOST_RUNTIME)
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
        try:
            state = self._resolve(request, invoke=True)
            context = client_context(request.headers.get("X-Amz-Client-Context"))
        except ApiError as error:
            return _api_error(error)
        name = state.config.name
        payload = await request.read() or b"{}"
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        limit = MAX_ASYNC_REQUEST_BYTES if invocation_type == "Event" else MAX_REQUEST_BYTES
        if len(payload) > limit:
            operation = "InvokeAsync" if invocation_type == "Event" else "InvokeFunction"
            return _aws_error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {limit} bytes for the {operation} operation",
            )
        try:
            json.loads(payload)
        except ValueError:
            return _aws_error(400, "InvalidRequestContentException", "Could not parse request body into json")
        executed = {"X-Amz-Executed-Version": functionname.LATEST}
        if invocation_type == "DryRun":
            return web.Response(status=204, headers=executed)
        if invocation_type == "Event":
            request_id = self.queue.submit(name, payload)  # ClientContext: "for synchronous invocations only"
            return web.Response(status=202, headers={**executed, "x-amzn-RequestId": request_id})
        if invocation_type != "RequestResponse":
            return _aws_error(
                400,
                "InvalidParameterValueException",
                f"bad X-Amz-Invocation-Type {invocation_type}",
            )
        try:
            outcome = await self.pool.invoke(name, payload, client_context=context)
        except Throttled as throttled:
            response = _aws_error(429, "TooManyRequestsException", "Rate Exceeded.", Reason=THROTTLE_REASON)
            response.headers[THROTTLED_HEADER] = THROTTLE_REASON
            response.headers["x-amzn-RequestId"] = throttled.request_id  # its log line's
            return response
        headers = {**executed, "x-amzn-RequestId": outcome.request_id}
        headers.update(emulator_headers(outcome))
        if outcome.function_error is not None:
            headers["X-Amz-Function-Error"] = outcome.function_error
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            await asyncio.sleep(0.002)  # let output written before the reply reach the log
            headers["X-Amz-Log-Result"] = log_tail(outcome)
        return web.Response(body=outcome.payload, headers=headers, content_type="application/json")

    async def get_configuration(self, request: web.Request) -> web.StreamResponse:
        try:
            return web.json_response(self.configuration(self._resolve(request, invoke=False).config.name))
        except ApiError as error:
            return _api_error(error)

    async def get_function(self, request: web.Request) -> web.StreamResponse:
        try:
            configuration = self.configuration(self._resolve(request, invoke=False).config.name)
        except ApiError as error:
            return _api_error(error)
        return web.json_response({"Configuration": configuration, "Code": {}, "Tags": {}})

    async def update_configuration(self, request: web.Request) -> web.StreamResponse:
        try:
            name = self._resolve(request, invoke=False).config.name
        except ApiError as error:
            return _api_error(error)
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
