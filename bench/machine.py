"""Where a result is being measured: collects the ``metadata`` block of a results document.

The record itself (:class:`bench.results.metadata.Metadata`) is plain data in the schema, so
that ``reports`` reads it without reaching what collects it: the machine (CPU, memory, git
SHA, package versions through ``handler.versions``) and the CPU idle regime
(``handler.local.cpulatency``), read here, in ``bench``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from bench.results.metadata import PROJECT_ROOT, Metadata
from handler.local import cpulatency
from handler.versions import package_versions as installed

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
    return installed(packages)


def collect_metadata(
    options: dict | None = None, argv: list[str] | None = None, resource_model: dict | None = None
) -> Metadata:
    """This machine, now: what every results document records beside its figures."""
    try:
        import psutil

        memory_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is a dependency
        memory_gib = 0.0
    return Metadata(
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
