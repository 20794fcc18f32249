"""Reading Lambda's REPORT line back: from an invocation's log tail or a CloudWatch message.

``bench`` gets the line from Invoke's ``LogType=Tail`` (the emulator or AWS) and from CloudWatch
Logs, and keeps its figures as the schema's record (``bench.results.reportline.ReportLine``).
The emulator writes the line (``handler.local.reportline.format_report``); the two are checked
against each other and against lines captured from Lambda in ``tests/test_coldstart.py``.

Form, fields separated by tabs, as captured from Lambda in 2026 (python3.12; see
``docs/conformance.md``): ``Init Duration`` on cold starts only; a line that ends normally
ends with a tab; a line for an invocation that timed out or failed in the runtime ends with
``Status: timeout`` or ``Status: error\\tError Type: Runtime.OutOfMemory`` and no trailing tab.
"""

from __future__ import annotations

import re

from bench.results.reportline import ReportLine

_FIELD = re.compile(
    r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration): ([0-9.]+) (?:ms|MB)"
)
_REQUEST_ID = re.compile(r"REPORT RequestId: (\S+)")
_STATUS = re.compile(r"\tStatus: (\w+)")
_ERROR_TYPE = re.compile(r"\tError Type: (\S+)")
_REQUIRED = {"Duration", "Billed Duration", "Memory Size", "Max Memory Used"}


def parse_report(text: str) -> ReportLine | None:
    """The first REPORT line in ``text`` (a log tail, a CloudWatch message), or None."""
    for line in text.splitlines():
        match = _REQUEST_ID.search(line)
        if not match:
            continue
        fields = {name: float(value) for name, value in _FIELD.findall(line)}
        if not fields.keys() >= _REQUIRED:
            continue
        status, error_type = _STATUS.search(line), _ERROR_TYPE.search(line)
        return ReportLine(
            request_id=match.group(1),
            duration_ms=fields["Duration"],
            billed_duration_ms=int(fields["Billed Duration"]),
            memory_size_mb=int(fields["Memory Size"]),
            max_memory_used_mb=int(fields["Max Memory Used"]),
            init_duration_ms=fields.get("Init Duration"),
            status=status.group(1) if status else None,
            error_type=error_type.group(1) if error_type else None,
        )
    return None
