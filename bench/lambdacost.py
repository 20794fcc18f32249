"""Lambda's REPORT line and what an invocation costs. Pure arithmetic and parsing, no I/O.

REPORT format (CloudWatch Logs, Lambda's platform line)::

    REPORT RequestId: <id>\\tDuration: 1.23 ms\\tBilled Duration: 2 ms\\tMemory Size: 128 MB\\t
    Max Memory Used: 40 MB\\tInit Duration: 123.45 ms

``Init Duration`` appears on cold starts only. Cost follows AWS Lambda Power Tuning
(``lambda/utils.js``, ``computePrice``): per invocation ``ceil(billed ms) × price per ms at
128 MB × memory / 128``, x86 price 2.1e-9 USD per ms at 128 MB (us-east-1), plus 0.20 USD per
million requests. Since August 2025 Lambda bills INIT too, so a cold invocation bills
``ceil(init + duration)`` ms.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

PRICE_PER_MS_128MB_X86 = 2.1e-9
PRICE_PER_REQUEST = 0.20 / 1_000_000

_FIELD = re.compile(
    r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration): ([0-9.]+) (ms|MB)"
)
_REQUEST_ID = re.compile(r"REPORT RequestId: (\S+)")


@dataclass(frozen=True)
class Report:
    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_mb: int
    init_ms: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def parse_report(text: str) -> Report | None:
    """The first REPORT line in ``text`` (a log tail), or None."""
    for line in text.splitlines():
        match = _REQUEST_ID.search(line)
        if not match:
            continue
        fields = {name: float(value) for name, value, _unit in _FIELD.findall(line)}
        if not {"Duration", "Billed Duration", "Memory Size", "Max Memory Used"} <= fields.keys():
            continue
        return Report(
            request_id=match.group(1),
            duration_ms=fields["Duration"],
            billed_ms=int(fields["Billed Duration"]),
            memory_mb=int(fields["Memory Size"]),
            max_memory_mb=int(fields["Max Memory Used"]),
            init_ms=fields.get("Init Duration"),
        )
    return None


def invocation_cost(billed_ms: float, memory_mb: int) -> float:
    """USD for one invocation billed ``billed_ms`` (rounded up to 1 ms) at ``memory_mb``."""
    return math.ceil(billed_ms) * PRICE_PER_MS_128MB_X86 * memory_mb / 128 + PRICE_PER_REQUEST


def cost_per_million(warm_ms: float, cold_ms: float, memory_mb: int, cold_fraction: float) -> float:
    """USD per million predictions when ``cold_fraction`` of them pay a cold (INIT-billed) start."""
    if not 0.0 <= cold_fraction <= 1.0:
        raise ValueError(f"cold fraction must be in [0, 1], not {cold_fraction}")
    warm = invocation_cost(max(warm_ms, 1e-9), memory_mb)
    cold = invocation_cost(max(cold_ms, 1e-9), memory_mb)
    return 1_000_000 * ((1 - cold_fraction) * warm + cold_fraction * cold)
