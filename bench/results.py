"""The results schema: versioned JSON documents written atomically, read with a version check.

Every results file is ``{"kind": ..., "schema_version": N, "metadata": {...}, ...}``.
``kind`` is one of KINDS. Readers reject an unknown kind or a schema version they do not
know with a one-line :class:`ResultsError`. Format history (bump on any incompatible change):

- inprocess 1, endpoint 1, coldstart 1, locust 1, harness 1: first versions.
- fuzz 1, overload 1, faults 1: first versions.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from handler.local import cpulatency

SCHEMA_VERSIONS = {
    "inprocess": 1,
    "endpoint": 1,
    "coldstart": 1,
    "locust": 1,
    "harness": 1,
    "fuzz": 1,
    "overload": 1,
    "faults": 1,
}
KINDS = tuple(SCHEMA_VERSIONS)
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
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ResultsError(ValueError):
    """A results file cannot be read; the message is one line naming the file and the problem."""


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


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in REPORTED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class Metadata:
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

    @classmethod
    def collect(cls, options: dict | None = None, argv: list[str] | None = None) -> Metadata:
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
            versions=_versions(),
            options=options or {},
            cpu_idle=cpulatency.describe(),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Metadata:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def write_json_atomic(path: Path, document: dict) -> Path:
    """Write ``document`` to ``path`` via a temporary file and a rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2, allow_nan=False)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_results(path: Path) -> dict:
    """Read a results file and check its kind and schema version."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ResultsError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ResultsError(f"{path}: not a results document (top level is not an object)")
    kind = document.get("kind")
    if kind not in SCHEMA_VERSIONS:
        raise ResultsError(f"{path}: unknown results kind {kind!r}; expected one of {KINDS}")
    version = document.get("schema_version")
    if version != SCHEMA_VERSIONS[kind]:
        raise ResultsError(
            f"{path}: {kind} schema_version {version!r} is not supported "
            f"(this version reads {SCHEMA_VERSIONS[kind]})"
        )
    return document


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
