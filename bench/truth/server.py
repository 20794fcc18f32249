"""``python -m bench.truth.server``: an HTTP endpoint whose latency is known, to check the harness.

- ``GET /truth/<us>``: busy-waits exactly ``<us>`` µs (``perf_counter_ns``), then answers 200
  with ``Server-Timing: handler;dur=<measured ms>``.
- ``GET /stall/<after_ms>/<stall_ms>``: answers at once, except that the first request after
  ``<after_ms>`` ms of the server's life blocks the whole server for ``<stall_ms>`` ms: every
  request in flight or arriving meanwhile waits (a GC pause, a stuck host). Once.

aiohttp on 127.0.0.1 (uvloop when installed). Prints ``truth: http://127.0.0.1:<port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

_STARTED_NS = time.perf_counter_ns()
_stalled = False


def busy_wait_ns(duration_ns: int) -> int:
    started = time.perf_counter_ns()
    deadline = started + duration_ns
    while time.perf_counter_ns() < deadline:
        pass
    return time.perf_counter_ns() - started


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"message": message}), content_type="application/json")


def _int(request: web.Request, key: str) -> int:
    try:
        value = int(request.match_info[key])
    except ValueError:
        raise _bad(f"{key} is not an integer") from None
    if not 0 <= value <= 10_000_000:
        raise _bad(f"{key} is out of range")
    return value


async def truth(request: web.Request) -> web.Response:
    spent_ns = busy_wait_ns(_int(request, "us") * 1_000)
    return web.json_response({"ok": True}, headers={"Server-Timing": f"handler;dur={spent_ns / 1e6:.6f}"})


async def stall(request: web.Request) -> web.Response:
    global _stalled
    after_ms, stall_ms = _int(request, "after_ms"), _int(request, "stall_ms")
    if not _stalled and time.perf_counter_ns() - _STARTED_NS >= after_ms * 1_000_000:
        _stalled = True
        time.sleep(stall_ms / 1_000)  # blocks the event loop on purpose: the server stalls
    return web.json_response({"ok": True})


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/truth/{us}", truth)
    app.router.add_get("/stall/{after_ms}/{stall_ms}", stall)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"truth: http://127.0.0.1:{bound}", flush=True)
    try:
        await asyncio.Event().wait()  # until cancelled (SIGINT/SIGTERM)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.truth.server", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    return run_until_signalled(serve(args.port))


def run_until_signalled(main: Coroutine[Any, Any, int | None]) -> int:
    """Run ``main`` (on uvloop where installed) until it returns or SIGINT/SIGTERM ends it; its
    exit code (0 when it returns None or is ended by a signal). Shared with bench.truth.proxy."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is not on Windows
        pass
    # SIGINT too: a shell script's background job starts with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        return asyncio.run(main) or 0
    except KeyboardInterrupt:
        return 0
    finally:
        main.close()  # never started (a signal before the loop ran it): no "never awaited" warning


if __name__ == "__main__":
    sys.exit(main())
