"""Random ids for requests and traces, without a system call per id.

``uuid.uuid4()`` reads 16 bytes from ``os.urandom`` (a ``getrandom`` call) and builds a
``UUID`` object: 4.1 µs here, and a proxied request needs two (API Gateway's request id and
Lambda's) plus two more random strings (the extended request id, the trace id). These ids only
need to be unique, not unpredictable (nothing is authorised by one), so they come from one
Mersenne Twister seeded from the OS (``random.Random``; 1.5 µs a UUID), reseeded in a forked
child so that no two processes share a sequence.
"""

from __future__ import annotations

import os
import random

_random = random.Random(os.urandom(32))


def _reseed() -> None:  # pragma: no cover - runs in a forked child
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)

_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant (as uuid.uuid4)


def uuid4_text() -> str:
    """A random version-4 UUID in its canonical text form (``str(uuid.uuid4())``'s shape)."""
    digits = f"{_random.getrandbits(128) & _VERSION_MASK | _VERSION_BITS:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def random_bytes(count: int) -> bytes:
    return _random.randbytes(count)
