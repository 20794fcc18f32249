"""What an invocation costs. Pure arithmetic, no I/O (REPORT lines: ``handler.local.reportline``).

Cost follows AWS Lambda Power Tuning
(``lambda/utils.js``, ``computePrice``): per invocation ``ceil(billed ms) × price per ms at
128 MB × memory / 128``, x86 price 2.1e-9 USD per ms at 128 MB (us-east-1), plus 0.20 USD per
million requests. Since August 2025 Lambda bills INIT too, so a cold invocation bills
``ceil(init + duration)`` ms.
"""

from __future__ import annotations

import math

PRICE_PER_MS_128MB_X86 = 2.1e-9
PRICE_PER_REQUEST = 0.20 / 1_000_000


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
