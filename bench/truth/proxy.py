"""``python -m bench.truth.proxy``: the floor, the least a proxy in front of AWS's runtime client can do.

A proxied request is three HTTP exchanges: the client's request to the front, the runtime
client's ``GET /2018-06-01/runtime/invocation/next`` reply, and its ``POST
…/invocation/{id}/response``. This does those three and nothing else, on two aiohttp
low-level servers (``web.Server``: no application, router or middleware) on 127.0.0.1, with
uvloop when installed, in front of ONE ``python -m awslambdaric <handler>`` environment:

- the front answers any path: it builds a minimal event (``httpMethod``, ``path``,
  ``queryStringParameters``; no headers, no body), queues it for the runtime, awaits the
  function's reply and answers its ``statusCode``, ``headers`` and ``body`` (502 if the
  function failed or its reply has no ``statusCode``);
- the Runtime API (2018-06-01) answers ``GET …/invocation/next`` with the next queued event
  and the ``Lambda-Runtime-*`` headers (and ``Content-Type``: awslambdaric 4.2.2 crashes
  without it), and ``POST …/invocation/{id}/response`` and ``…/error`` with 202; anything
  else is 404.

It is not an emulator: no event fidelity (no request context, headers or body), no resource
model (memory, CPU share, freeze), no throttles, no REPORT lines or logs (the environment's
output goes to /dev/null), no timeouts, one environment, no restart if it dies (the proxy
then exits 1). It exists for ``python -m bench.emulator_cost``, which measures it beside the
emulator and a bare aiohttp server, so that the cost of the architecture (three exchanges)
is seen apart from the emulator's own work. Prints ``proxy: http://127.0.0.1:<port>`` (the
front) once it listens, before the environment's init has finished.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from aiohttp import web

from bench.truth.server import run_until_signalled

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INVOCATION_PREFIX = "/2018-06-01/runtime/invocation/"
NEXT_PATH = f"{INVOCATION_PREFIX}next"
FUNCTION_NAME = "floor"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
TRACE_ID = "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"
DEADLINE_MS = 900_000  # Lambda's longest timeout
ACCEPTED_BODY = b'{"status": "OK"}'
FAILED_BODY = b'{"message": "Internal server error"}'  # API Gateway's words for a failed function
INHERITED = ("PATH", "HOME", "LANG", "VIRTUAL_ENV")
SHUTDOWN_S = 0.5  # what a stop waits for handlers in flight (a /next waits forever) before cancelling them

Reply = asyncio.Future[bytes | None]  # the function's reply body; None if it failed (/error)


class Floor:
    """The front and the Runtime API, joined by a queue of invocations."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, bytes, Reply]] = asyncio.Queue()
        self.pending: dict[str, Reply] = {}

    async def front(self, request: web.BaseRequest) -> web.Response:
        event = {
            "httpMethod": request.method,
            "path": request.path,
            "queryStringParameters": dict(request.query) or None,
            "headers": {},
            "body": None,
        }
        request_id = str(uuid.uuid4())
        reply: Reply = asyncio.get_running_loop().create_future()
        self.pending[request_id] = reply
        try:
            await self.queue.put((request_id, json.dumps(event).encode(), reply))
            payload = await reply
        finally:
            self.pending.pop(request_id, None)
        answer = json.loads(payload) if payload is not None else None
        if not isinstance(answer, dict) or "statusCode" not in answer:
            return web.Response(status=502, body=FAILED_BODY, content_type="application/json")
        body = answer.get("body") or ""
        return web.Response(
            status=int(answer["statusCode"]),
            headers={str(key): str(value) for key, value in (answer.get("headers") or {}).items()},
            body=body.encode("utf-8") if isinstance(body, str) else body,
        )

    async def runtime(self, request: web.BaseRequest) -> web.Response:
        path = request.path
        if request.method == "GET" and path == NEXT_PATH:
            request_id, payload, _reply = await self.queue.get()
            headers = {
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1_000) + DEADLINE_MS),
                "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                "Lambda-Runtime-Trace-Id": TRACE_ID,
                "Content-Type": "application/json",
            }
            return web.Response(body=payload, headers=headers)
        if request.method == "POST" and path.startswith(INVOCATION_PREFIX):
            request_id, _, outcome = path[len(INVOCATION_PREFIX) :].partition("/")
            reply = self.pending.get(request_id)
            if outcome in ("response", "error") and reply is not None:
                body = await request.read()
                if not reply.done():
                    reply.set_result(body if outcome == "response" else None)
                return web.Response(status=202, body=ACCEPTED_BODY, content_type="application/json")
        return web.Response(status=404)


async def _listen(handler: web.Server, port: int) -> tuple[web.ServerRunner, int]:
    runner = web.ServerRunner(handler, shutdown_timeout=SHUTDOWN_S)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, runner.addresses[0][1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the environment is killed if the proxy dies, so none is ever orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def environment_variables(code_dir: Path, runtime_port: int, extra: dict[str, str]) -> dict[str, str]:
    """What the one environment sees: a few of this process's variables, Lambda's, and ``--env``."""
    return {
        **{key: os.environ[key] for key in INHERITED if key in os.environ},
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "AWS_LAMBDA_LOG_STREAM_NAME": FUNCTION_NAME,
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(code_dir),
        **extra,
    }


async def serve(port: int, code_dir: Path, handler: str, env: dict[str, str]) -> int:
    """Listen, start the environment, and run until a signal (0) or the environment's exit (1)."""
    floor = Floor()
    runtime_runner, runtime_port = await _listen(web.Server(floor.runtime, access_log=None), 0)
    front_runner: web.ServerRunner | None = None
    environment: asyncio.subprocess.Process | None = None
    try:
        front_runner, front_port = await _listen(web.Server(floor.front, access_log=None), port)
        environment = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "awslambdaric",
            handler,
            cwd=code_dir,
            env=environment_variables(code_dir, runtime_port, env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        print(f"proxy: http://127.0.0.1:{front_port}", flush=True)
        code = await environment.wait()  # until cancelled (SIGINT/SIGTERM)
        print(f"error: the environment exited with {code}", file=sys.stderr, flush=True)
        return 1
    finally:
        if environment is not None and environment.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(environment.pid, signal.SIGKILL)
            await environment.wait()
        for runner in (front_runner, runtime_runner):
            if runner is not None:
                await runner.cleanup()


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.truth.proxy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="the front's port (default 0: any free one)")
    parser.add_argument("--code-dir", type=Path, default=PROJECT_ROOT, help="the task root (the project's)")
    parser.add_argument("--handler", default="handler.app.lambda_handler", help="module.function")
    parser.add_argument(
        "--env", type=_key_value, action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    args = parser.parse_args(argv)
    return run_until_signalled(serve(args.port, args.code_dir.resolve(), args.handler, dict(args.env)))


if __name__ == "__main__":
    sys.exit(main())
