"""CloudWatch-style log lines: START, END and REPORT per invocation, to stdout and a log file.

REPORT follows CloudWatch's format; billing follows the rules in force since 2025-08-01:
the INIT phase of an on-demand invocation is billed, so a cold invocation's Billed Duration is
``ceil(Init Duration + Duration)`` ms and a warm one's ``ceil(Duration)`` ms.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@dataclass(frozen=True)
class Report:
    request_id: str
    duration_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None

    @property
    def billed_duration_ms(self) -> int:
        return math.ceil(self.duration_ms + (self.init_duration_ms or 0.0))

    def line(self) -> str:
        text = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {self.billed_duration_ms} ms\tMemory Size: {self.memory_mb} MB\t"
            f"Max Memory Used: {self.max_memory_used_mb} MB"
        )
        if self.init_duration_ms is not None:
            text += f"\tInit Duration: {self.init_duration_ms:.2f} ms"
        return text


class LogSink:
    """Writes each line to the log file and, unless quiet, REPORT lines to stdout."""

    def __init__(self, path: Path | None, quiet: bool = False, console: TextIO = sys.stdout):
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._quiet = quiet
        self._console = console

    def function_line(self, function: str, line: str) -> None:
        if self._file is not None:
            self._file.write(f"[{function}] {line}\n")

    def report(self, function: str, report: Report) -> None:
        line = report.line()
        if self._file is not None:
            self._file.write(f"[{function}] {line}\n")
        if not self._quiet:
            self._console.write(f"[{function}] {line}\n")
            self._console.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
