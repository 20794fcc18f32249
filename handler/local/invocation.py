"""One invocation as the emulator carries it, and what it returned (``Outcome``).

``Outcome`` holds the payload, the function error and the two log lines written after it:
Lambda's REPORT line (``report``, read after the caller's reply: Max Memory Used reads the
kernel) and the emulator's own (``emulator``: CPU times, share, contention), whose figures are
also response headers (:func:`emulator_headers`) at the gateway and the Invoke API.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from handler.local.reportline import EmulatorLine, ReportLine

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
    init_duration_ms: float | None = None
    logs: tuple[str, ...] = ()
    measure: Callable[[], ReportLine] | None = field(default=None, repr=False, compare=False)
    emulator: EmulatorLine | None = None

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
        self, payload: bytes, loop: asyncio.AbstractEventLoop, client_context: str | None = None
    ) -> None:
        self.request_id = str(uuid.uuid4())
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
