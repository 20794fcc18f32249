"""API Gateway's throttling: a token bucket of ``rate`` tokens per second, ``burst`` deep.

The bucket starts full; it refills continuously at ``rate`` and never holds more than
``burst``. ``clock() -> int`` is in nanoseconds (``time.perf_counter_ns``, injected so that a
test steps it exactly).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not {rate}/{burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last_ns = clock()

    def take(self) -> bool:
        """Take one token if there is one; False means throttle this request."""
        now_ns = self._clock()
        self._tokens = min(self.burst, self._tokens + (now_ns - self._last_ns) * self.rate / 1e9)
        self._last_ns = now_ns
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
