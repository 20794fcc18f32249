"""The CPU latency limit (Linux PM QoS, ``/dev/cpu_dma_latency``): read it, and hold one.

A request through the emulator wakes three processes in turn (client, gateway, environment).
On a VM whose idle vCPUs halt (this machine: cpuidle driver ``haltpoll`` with guest polling
off), each wake-up of a halted vCPU goes through the hypervisor and costs tens of µs; a
warm request pays it several times. The kernel's documented remedy is a CPU latency QoS
request: write a 32-bit limit in µs to ``/dev/cpu_dma_latency`` and keep the file open; idle
CPUs then only enter states that exit within the limit (0: they poll instead of halting).
The request ends when the file is closed, so it never outlives the process that holds it.
tuned's ``latency-performance`` profile does the same. The price: an idle CPU spins.

Reading the device gives the effective limit of all requests (``NO_LIMIT`` when none), which
is what results record, so every figure says which regime it was measured in.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

DEVICE = Path("/dev/cpu_dma_latency")
CPUIDLE_DRIVER = Path("/sys/devices/system/cpu/cpuidle/current_driver")
NO_LIMIT = 2_000_000_000  # the kernel's PM_QOS_CPU_LATENCY_DEFAULT_VALUE


class CpuLatencyUnavailable(RuntimeError):
    """The limit cannot be held here; the message says why in one line."""


@contextlib.contextmanager
def held(limit_us: int = 0, device: Path | None = None) -> Iterator[None]:
    """Hold a CPU latency limit of ``limit_us`` µs for the duration of the block."""
    device = DEVICE if device is None else device
    if limit_us < 0:
        raise ValueError(f"limit_us must be >= 0, not {limit_us}")
    try:
        descriptor = os.open(device, os.O_WRONLY)
    except OSError as exc:
        raise CpuLatencyUnavailable(f"cannot open {device}: {exc.strerror}") from None
    try:
        try:
            os.write(descriptor, struct.pack("=i", limit_us))
        except OSError as exc:
            raise CpuLatencyUnavailable(f"cannot write {device}: {exc.strerror}") from None
        yield
    finally:
        os.close(descriptor)


def effective_limit_us(device: Path | None = None) -> int | None:
    """The limit in force (``NO_LIMIT`` if nobody holds one); None where it cannot be read."""
    device = DEVICE if device is None else device
    try:
        with open(device, "rb") as file:
            data = file.read(4)
    except OSError:
        return None
    return struct.unpack("=i", data)[0] if len(data) == 4 else None


def cpuidle_driver(path: Path | None = None) -> str | None:
    path = CPUIDLE_DRIVER if path is None else path
    try:
        return path.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def describe() -> dict:
    """The machine's idle regime, for a result's metadata."""
    limit = effective_limit_us()
    return {
        "cpuidle_driver": cpuidle_driver(),
        "latency_limit_us": None if limit is None or limit == NO_LIMIT else limit,
        "latency_limit_readable": limit is not None,
    }
