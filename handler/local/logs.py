"""The emulator's log: each function's output and, per invocation, Lambda's REPORT line and the
emulator's EMULATOR line after it (``handler.local.reportline``), to a log file and, unless
quiet, the REPORT and EMULATOR lines to stdout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from bench.results.reportline import ReportLine
from handler.local.reportline import EmulatorLine, format_report


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

    def report(self, function: str, report: ReportLine, emulator: EmulatorLine | None = None) -> None:
        text = f"[{function}] {format_report(report)}\n"
        if emulator is not None:
            text += f"[{function}] {emulator.format()}\n"
        self._write(text)

    def emulator_line(self, function: str, line: str) -> None:
        """A line of the emulator's own about a function's environment (an init deadline moved)."""
        self._write(f"[{function}] {line}\n")

    def _write(self, text: str) -> None:
        if self._file is not None:
            self._file.write(text)
        if not self._quiet:
            self._console.write(text)
            self._console.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
