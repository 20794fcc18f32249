"""The emulator's log: each function's output and one REPORT line per invocation
(``handler.local.reportline``), to a log file and, unless quiet, REPORT lines to stdout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from handler.local.reportline import ReportLine


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

    def report(self, function: str, report: ReportLine) -> None:
        line = report.format()
        if self._file is not None:
            self._file.write(f"[{function}] {line}\n")
        if not self._quiet:
            self._console.write(f"[{function}] {line}\n")
            self._console.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
