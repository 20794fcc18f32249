"""A function's configuration during a sweep: changed size by size, put back whatever happens.

:class:`FunctionSession` reads the function's configuration once (GetFunctionConfiguration:
``MemorySize``, the environment variables, the architecture), sets each memory size with
UpdateFunctionConfiguration followed by the ``function_updated_v2`` waiter (GetFunction until
``LastUpdateStatus`` is ``Successful``; the emulator answers ``Successful`` at once), and
:meth:`restore` puts the original memory size and variables back (the cold-start forcing of
:mod:`bench.coldstart.forcing` adds a variable of its own), then waits again.

:func:`interruptible` turns SIGTERM into :class:`Interrupted` (SIGINT already raises
KeyboardInterrupt), so that the ``finally`` that restores runs on Ctrl-C, SIGTERM and any
error alike; :func:`shielded` defers both signals while the restore itself runs, so that a
second Ctrl-C cannot leave the function half restored. The same boto3 calls serve AWS and the
emulator. Times nothing.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field

WAITER = "function_updated_v2"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # like KeyboardInterrupt: not an Exception
    """SIGTERM (or SIGINT) arrived; unwinds like KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises :class:`Interrupted` in the main thread for the ``with`` block."""
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Deferred:
    received: list[int] = field(default_factory=list)

    def __call__(self, signum: int, _frame: object) -> None:
        self.received.append(signum)


@contextlib.contextmanager
def shielded() -> Iterator[_Deferred]:
    """SIGINT and SIGTERM are recorded, not acted on, for the ``with`` block."""
    deferred = _Deferred()
    previous = {signum: signal.signal(signum, deferred) for signum in SIGNALS}
    try:
        yield deferred
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass
class FunctionSession:
    """One function's configuration: the original, read at the start, and the changes since."""

    client: object  # a boto3 Lambda client
    function: str
    original_memory_mb: int = 0
    original_variables: dict[str, str] = field(default_factory=dict)
    architecture: str = "x86_64"
    changed: bool = False

    def read(self) -> FunctionSession:
        """GetFunctionConfiguration; a missing function raises botocore's ClientError."""
        current = self.client.get_function_configuration(FunctionName=self.function)
        self.original_memory_mb = int(current["MemorySize"])
        self.original_variables = dict(current.get("Environment", {}).get("Variables", {}))
        self.architecture = (current.get("Architectures") or ["x86_64"])[0]  # Power Tuning's default
        return self

    def _update(self, **changes: object) -> None:
        self.changed = True
        self.client.update_function_configuration(FunctionName=self.function, **changes)
        self.client.get_waiter(WAITER).wait(FunctionName=self.function)

    def set_memory(self, memory_mb: int) -> None:
        """The next invocation runs at ``memory_mb``, in a new environment (a cold start)."""
        self._update(MemorySize=memory_mb)

    def restore(self) -> None:
        """The original memory size and environment variables, then the waiter; nothing to do
        if nothing was changed. Raises what boto3 raises (the caller reports it)."""
        if not self.changed:
            return
        self._update(MemorySize=self.original_memory_mb, Environment={"Variables": self.original_variables})
        self.changed = False

    def describe(self) -> str:
        return f"{self.function}: MemorySize {self.original_memory_mb} MB and its environment variables"
