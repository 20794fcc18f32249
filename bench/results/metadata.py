"""Where and how a result was measured: the ``metadata`` block of every results document.

``Metadata.collect`` reads the machine (CPU, memory, git SHA, package versions, the CPU idle
regime); the dataclass itself is plain data, so that ``reports`` can read it without
importing what collects it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.results.core import Record

REPORTED_PACKAGES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "skops",
    "onnxruntime",
    "awslambdaric",
    "aiohttp",
    "locust",
    "hdrhistogram",
    "boto3",
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def _git_sha() -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(packages: tuple[str, ...] = REPORTED_PACKAGES) -> dict[str, str]:
    """Python's version and each installed package's (``handler.versions``: one helper for all)."""
    from handler.versions import package_versions as installed

    return installed(packages)


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

    @classmethod
    def collect(
        cls, options: dict | None = None, argv: list[str] | None = None, resource_model: dict | None = None
    ) -> Metadata:
        from handler.local import cpulatency  # what collects it; reading needs none of it

        try:
            import psutil

            memory_gib = round(psutil.virtual_memory().total / 2**30, 1)
        except ImportError:  # pragma: no cover - psutil is a dependency
            memory_gib = 0.0
        return cls(
            utc_time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            command=" ".join(argv if argv is not None else [Path(sys.executable).name, *sys.argv]),
            git_sha=_git_sha(),
            host=socket.gethostname(),
            cpu_model=_cpu_model(),
            cpu_count=os.cpu_count() or 0,
            memory_gib=memory_gib,
            platform=platform.platform(),
            versions=package_versions(),
            options=options or {},
            cpu_idle=cpulatency.describe(),
            resource_model=resource_model or {},
        )


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
