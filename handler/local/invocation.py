"""One invocation as the emulator carries it, and what it returned (``Outcome``).

``Outcome`` holds the payload, the function error and the two log lines written after it:
Lambda's REPORT line (``report``, read after the caller's reply: Max Memory Used reads the
kernel) and the emulator's own (``emulator``: CPU times, share, contention), whose figures are
also response headers (:func:`emulator_headers`) at the gateway and the Invoke API. Also here:
the texts of Lambda's platform failures (the timeout's message, the INIT_REPORT line) and the
meter that keeps Max Memory Used once the process is gone (:class:`KeptPeak`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from bench.results.reportline import ReportLine
from handler.local.ids import uuid4_text
from handler.local.lifecycle import InitPhase
from handler.local.process import MemoryMeter
from handler.local.reportline import EmulatorLine

DURATION_CPU_HEADER = "X-Emulator-Duration-Cpu-Us"
INIT_CPU_HEADER = "X-Emulator-Init-Cpu-Us"
CONTENDED_HEADER = "X-Emulator-Contended"


@dataclass(frozen=True)
class Outcome:
    """What an invocation returned: the payload and, for an error, its type.

    ``report`` (the REPORT line's figures) is computed on first use: Max Memory Used reads
    the kernel, and that read belongs after the caller's reply, not before it.
    """

    request_id: str
    payload: bytes
    function_error: str | None
    cold: bool
    init_duration_ms: float | None = None  # the REPORT line's Init Duration
    logs: tuple[str, ...] = ()
    measure: Callable[[], ReportLine] | None = field(default=None, repr=False, compare=False)
    emulator: EmulatorLine | None = None
    # A cold invocation's init: its Init Duration, or after an init retried at the invocation
    # (suppressed: its REPORT has no Init Duration, as on Lambda) the retried init's own (the
    # first, timed-out attempt is only in the request's wall time). The gateway's
    # X-Emulator-Init-Duration-Ms, so that a client counts the request as a cold start.
    cold_init_ms: float | None = None

    @cached_property
    def report(self) -> ReportLine | None:
        return self.measure() if self.measure is not None else None

    @property
    def error_type(self) -> str | None:
        if self.function_error is None:
            return None
        try:
            return str(json.loads(self.payload).get("errorType"))
        except (ValueError, AttributeError):
            return None


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


MAX_RESPONSE_BYTES = 6_291_556  # Lambda's synchronous response limit


def oversize_payload(size: int) -> bytes | None:
    """Lambda's error for a synchronous response of ``size`` bytes over its limit (None within)."""
    if size <= MAX_RESPONSE_BYTES:
        return None
    message = (
        f"Response payload size ({size} bytes) exceeded maximum allowed "
        f"payload size ({MAX_RESPONSE_BYTES} bytes)."
    )
    return error_payload("Function.ResponseSizeTooLarge", message)


TIMED_OUT = "Sandbox.Timedout"


def timeout_message(request_id: str, timeout_s: float) -> str:
    """Lambda's errorMessage for a timeout, as real Invoke responses show it today (2024-2026:
    ``RequestId: 1f60b20c-… Error: Task timed out after 3.00 seconds``; RIE formats
    ``RequestId: %s Error: %v`` around ``Task timed out after %.2f seconds``). The seconds are
    the configured timeout. The older form, ``<ISO time> <id> Task timed out after 3.07 seconds``
    with the elapsed time, is gone from current captures."""
    return f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"


def timeout_payload(request_id: str, timeout_s: float) -> tuple[bytes, float]:
    """A timeout's Invoke payload and its REPORT's Duration, which is the timeout (current
    captures: ``Duration: 3000.00 ms`` ... ``Status: timeout``; ``180000.00 ms`` for 180 s)."""
    return error_payload(TIMED_OUT, timeout_message(request_id, timeout_s)), timeout_s * 1000


def init_report_line(duration_ms: float, phase: InitPhase, status: str, error_type: str | None = None) -> str:
    """Lambda's INIT_REPORT line for an init that did not succeed (lambda-runtime-environment,
    "Failures during the Init phase"; captured: ``INIT_REPORT Init Duration: 9999.79 ms\tPhase:
    init\tStatus: timeout``, ``... Phase: invoke\tStatus: error\tError Type: Runtime.Unknown``)."""
    line = f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: {phase.value}\tStatus: {status}"
    return line + (f"\tError Type: {error_type}" if error_type is not None else "")


class KeptPeak:
    """Max Memory Used that outlives the process: the largest figure ``meter`` has given.

    A peak only grows, so the last one read while the process lived is a lower bound of its
    peak; once the process is gone (a crash, the kill after an oversized reply) its meter reads
    0 (no ``/proc/<pid>``; the cgroup removed), and this answers the last peak instead. Lambda
    reports the memory used after a crash (``Max Memory Used: 3 MB`` after ``Runtime.ExitError``,
    ``102 MB`` after a failed init, in captured logs), never 0. Read at the end of the init, by
    every REPORT, before an oversized reply's kill and by the pool's memory watchdog.
    """

    __slots__ = ("_meter", "peak_mb")

    def __init__(self, meter: MemoryMeter) -> None:
        self._meter = meter
        self.peak_mb = 0

    def mb(self) -> int:
        self.peak_mb = max(self.peak_mb, self._meter.mb())
        return self.peak_mb

    def close(self) -> None:
        self._meter.close()


def emulator_headers(outcome: Outcome) -> dict[str, str]:
    """The EMULATOR line's figures as headers (not AWS headers): CPU µs, contention."""
    line = outcome.emulator
    if line is None:
        return {}
    headers: dict[str, str] = {}
    if line.duration_cpu_ms is not None:
        headers[DURATION_CPU_HEADER] = str(round(line.duration_cpu_ms * 1000))
    if line.init_cpu_ms is not None:
        headers[INIT_CPU_HEADER] = str(round(line.init_cpu_ms * 1000))
    contended = line.contended_header()
    if contended is not None:
        headers[CONTENDED_HEADER] = contended
    return headers


class Invocation:
    __slots__ = (
        "client_context",
        "cold",
        "cpu_start",
        "dispatched_ns",
        "future",
        "init_duration_ms",
        "logs",
        "payload",
        "phase",
        "request_id",
        "timer",
    )

    def __init__(
        self,
        payload: bytes,
        loop: asyncio.AbstractEventLoop,
        client_context: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.request_id = request_id or uuid4_text()
        self.payload = payload
        # Invoke's ClientContext, decoded (JSON text): the runtime's Lambda-Runtime-Client-Context
        self.client_context = client_context
        self.future: asyncio.Future[Outcome] = loop.create_future()
        self.cold = False
        self.init_duration_ms: float | None = None
        self.dispatched_ns = 0
        self.logs: list[str] = []
        self.timer: asyncio.TimerHandle | None = None
        self.cpu_start: tuple[int | None, int | None] | None = None  # CPU ns, host PSI µs at dispatch
        self.phase = None  # the invocation's resources.Phase, once the runtime answered
