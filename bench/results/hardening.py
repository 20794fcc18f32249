"""The hardening kinds: ``fuzz``, ``faults`` and ``overload`` (``bench.hardening``).

Each carries its verdict as :class:`~bench.results.gate.Gate` records and the ``status``
judged from them (``fuzz`` 1, ``faults`` 1, ``overload`` 1 had a ``passed`` flag and, for
overload, ``goals``: version 2 of each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench.results.core import Document, Record
from bench.results.gate import Gate
from bench.results.metadata import Metadata


@dataclass(frozen=True)
class FuzzCampaign(Record):
    surface: str  # "handler" (in process) or "gateway" (HTTP over loopback)
    variants: list[str]
    cases: int
    outcomes: dict[str, int]
    seconds: float
    failure: str | None
    checks: dict
    refused_by_http_parser: int | None = None


@dataclass(frozen=True)
class FuzzRun(Document):
    KIND: ClassVar[str] = "fuzz"
    SCHEMA_VERSION: ClassVar[int] = 2

    metadata: Metadata
    campaigns: list[FuzzCampaign]
    gates: list[Gate]  # one a campaign: every rule held over every case
    status: str


@dataclass(frozen=True)
class FaultsRun(Document):
    KIND: ClassVar[str] = "faults"
    SCHEMA_VERSION: ClassVar[int] = 2

    metadata: Metadata
    rounds: int
    faults: list[dict]
    injected: int
    expected_answer: int
    recovered: int
    wrong: list[str]
    by_fault: dict[str, dict[str, int]]
    environments_started: int
    emulator_exit_code: int | None
    leftover_processes: int
    seconds: float
    init_timeout_s: float
    gates: list[Gate]  # AWS's answer to every fault, recovery, a clean exit, no process left
    status: str


@dataclass(frozen=True)
class OverloadRun(Document):
    KIND: ClassVar[str] = "overload"
    SCHEMA_VERSION: ClassVar[int] = 2

    metadata: Metadata
    plan: dict
    capacity_rps: float
    offered_rps: dict[str, float]
    stages: dict[str, dict]
    outcomes: dict[str, int]
    sent: int
    throttled_us: dict[str, float]
    recovery_s: float | None
    seconds_over_bound: dict
    gateway_rss_mib: dict
    schedule: dict | None
    gates: list[Gate]  # the overload goals, each stated in words
    status: str
    cpu_placement: dict | None = None  # --pin: which CPUs the generator and the emulator had
