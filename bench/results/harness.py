"""The ``harness`` kind: the Locust harness measured against a known truth (``bench.truth``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench.results.core import Document, Record
from bench.results.metadata import Metadata


@dataclass(frozen=True)
class Accuracy(Record):
    busy_wait_us: float
    truth_us: float
    harness_e2e_p50_us: float
    harness_e2e_p99_us: float
    server_busy_p50_us: float
    allowed_error_us: float
    error_us: float
    within: bool
    samples: int


@dataclass(frozen=True)
class HarnessRun(Document):
    KIND: ClassVar[str] = "harness"
    SCHEMA_VERSION: ClassVar[int] = 1

    metadata: Metadata
    accuracy: Accuracy
    omission: list[dict]
    capacity: dict
