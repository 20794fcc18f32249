"""What an invocation costs. Pure arithmetic, no I/O (REPORT lines: ``bench.results.reportline``).

Cost follows AWS Lambda Power Tuning
(``lambda/utils.js``, ``computePrice``): per invocation ``ceil(billed ms) × price per ms at
128 MB × memory / 128``, with its per-ms prices at 128 MB (``template.yml``, ``baseCosts``,
``default``): x86_64 2.1e-9 USD, arm64 1.7e-9 USD (us-east-1, first tier; AWS's per-GB-s
prices give 2.083e-9 and 1.667e-9: docs/research/powertuning.md), plus the request charge of
0.20 USD per million requests, which Power Tuning leaves out. Since August 2025 Lambda bills
INIT too, so a cold invocation bills ``ceil(init + duration)`` ms.
"""

from __future__ import annotations

import math

PRICE_PER_MS_128MB = {"x86_64": 2.1e-9, "arm64": 1.7e-9}
PRICE_PER_MS_128MB_X86 = PRICE_PER_MS_128MB["x86_64"]
PRICE_PER_REQUEST = 0.20 / 1_000_000
ARCHITECTURES = tuple(PRICE_PER_MS_128MB)


def _price_per_ms(memory_mb: int, architecture: str) -> float:
    if architecture not in PRICE_PER_MS_128MB:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {architecture!r}")
    return PRICE_PER_MS_128MB[architecture] * memory_mb / 128


def duration_price(billed_ms: float, memory_mb: int, architecture: str = "x86_64") -> float:
    """Power Tuning's ``computePrice``: USD for ``ceil(billed_ms)`` at ``memory_mb``, no request charge."""
    return math.ceil(billed_ms) * _price_per_ms(memory_mb, architecture)


def invocation_cost(billed_ms: float, memory_mb: int, architecture: str = "x86_64") -> float:
    """USD for one invocation billed ``billed_ms`` (rounded up to 1 ms) at ``memory_mb``."""
    return duration_price(billed_ms, memory_mb, architecture) + PRICE_PER_REQUEST


def cost_per_million(
    warm_ms: float, cold_ms: float, memory_mb: int, cold_fraction: float, architecture: str = "x86_64"
) -> float:
    """USD per million predictions when ``cold_fraction`` of them pay a cold (INIT-billed) start."""
    _check_fraction(cold_fraction)
    warm = invocation_cost(max(warm_ms, 1e-9), memory_mb, architecture)
    cold = invocation_cost(max(cold_ms, 1e-9), memory_mb, architecture)
    return 1_000_000 * ((1 - cold_fraction) * warm + cold_fraction * cold)


def mean_billed_cost_per_million(
    warm_billed_mean_ms: float,
    cold_billed_mean_ms: float,
    memory_mb: int,
    cold_fraction: float,
    architecture: str = "x86_64",
) -> float:
    """USD per million predictions from *mean* billed durations: each invocation was already
    billed whole milliseconds (REPORT ``Billed Duration``), so their mean is the expected
    billed time and is not rounded up again; ``cold_fraction`` of them are cold."""
    _check_fraction(cold_fraction)
    per_ms = _price_per_ms(memory_mb, architecture)
    billed_ms = (1 - cold_fraction) * warm_billed_mean_ms + cold_fraction * cold_billed_mean_ms
    return 1_000_000 * (billed_ms * per_ms + PRICE_PER_REQUEST)


def _check_fraction(cold_fraction: float) -> None:
    if not 0.0 <= cold_fraction <= 1.0:
        raise ValueError(f"cold fraction must be in [0, 1], not {cold_fraction}")
