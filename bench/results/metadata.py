"""Where and how a result was measured: the ``metadata`` block of every results document.

The dataclass is plain data, so that ``reports`` reads it without reaching what collects it:
``bench.machine.collect_metadata`` reads the machine (CPU, memory, git SHA, package versions,
the CPU idle regime) when a tool writes its results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from bench.results.core import Record

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class Metadata(Record):
    """Where and how a result was measured: enough to reproduce it and to judge it."""

    utc_time: str
    command: str
    git_sha: str | None
    host: str
    cpu_model: str
    cpu_count: int
    memory_gib: float
    platform: str
    versions: dict[str, str]
    options: dict = field(default_factory=dict)
    # The idle regime (handler.local.cpulatency.describe): on a VM it moves warm latency by 2x.
    cpu_idle: dict = field(default_factory=dict)
    # The resource model that produced the figures (bench.target): the emulator's (cgroups or
    # the host's CPU), "in-process", or "aws". Empty in files written before it existed.
    resource_model: dict = field(default_factory=dict)


def resource_model_phrase(model: dict | None) -> str:
    """``metadata.resource_model`` as one phrase for a report or a console line."""
    if not model:
        return "resource model not recorded"
    kind = model.get("kind", "unknown")
    if kind.startswith("cgroup"):
        parts = [f"{kind}: memory cap and CPU share by memory size"]
        if model.get("init_cpu"):
            parts.append(f"init CPU {model['init_cpu']}")
        if "freeze" in model:
            parts.append("frozen between invocations" if model["freeze"] else "not frozen")
        return ", ".join(parts)
    return f"{kind}: {model.get('reason', 'limits not enforced')}"


def cpu_idle_phrase(cpu_idle: dict | None) -> str:
    """``handler.local.cpulatency.describe()``'s record as one phrase, e.g. "cpuidle haltpoll,
    CPU latency limit none"."""
    if not cpu_idle:
        return "CPU idle regime not recorded"
    driver = cpu_idle.get("cpuidle_driver") or "no cpuidle driver"
    if not cpu_idle.get("latency_limit_readable"):
        return f"cpuidle {driver}, CPU latency limit unknown"
    limit = cpu_idle.get("latency_limit_us")
    return f"cpuidle {driver}, CPU latency limit {'none' if limit is None else f'{limit} µs'}"


def utc_stamp() -> str:
    """A file-name-safe UTC timestamp, e.g. 20261125T101500Z."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
