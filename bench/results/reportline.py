"""Lambda's REPORT line as a results record: its figures, in Lambda's own units (ms, MB).

Lambda writes one REPORT line per invocation to CloudWatch Logs (its "platform" line)::

    REPORT RequestId: <id>\\tDuration: 2.37 ms\\tBilled Duration: 427 ms\\tMemory Size: 1024 MB\\t
    Max Memory Used: 95 MB\\tInit Duration: 423.98 ms\\t

This module is the record alone, the part every layer shares: the emulator builds one per
invocation and formats it (``handler.local.reportline``), ``bench`` parses one back from a log
tail or CloudWatch (``bench.reportline``) and stores it in results (cold starts, power
tuning), ``reports`` reads it. It imports nothing of the project beyond ``bench.records``
(standard library only), so the emulator reaches no more than the schema through it.

Billing follows the rules in force since 2025-08-01 (AWS Compute Blog, "AWS Lambda
standardizes billing for INIT Phase"): a cold on-demand invocation bills
``ceil(Init Duration + Duration)`` ms, a warm one ``ceil(Duration)`` ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.records import Record


@dataclass(frozen=True)
class ReportLine(Record):
    """The figures of one REPORT line, in Lambda's units (ms, MB)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None  # cold starts only
    status: str | None = None  # None: the invocation ended normally; "timeout" or "error"
    error_type: str | None = None  # with status "error": e.g. Runtime.OutOfMemory

    @classmethod
    def measured(
        cls,
        request_id: str,
        duration_ms: float,
        memory_size_mb: int,
        max_memory_used_mb: int,
        init_duration_ms: float | None = None,
        status: str | None = None,
        error_type: str | None = None,
    ) -> ReportLine:
        """A line for an invocation that was timed here: Billed Duration computed as Lambda bills it."""
        return cls(
            request_id=request_id,
            duration_ms=duration_ms,
            billed_duration_ms=math.ceil(duration_ms + (init_duration_ms or 0.0)),
            memory_size_mb=memory_size_mb,
            max_memory_used_mb=max_memory_used_mb,
            init_duration_ms=init_duration_ms,
            status=status,
            error_type=error_type,
        )
