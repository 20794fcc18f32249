"""The ``emulator-cost`` kind: ``python -m bench.emulator_cost``, the emulator's own cost per request.

CPU in ns per round (``*_cpu_ns``) and µs per request (``*_cpu_us_per_request``); wall time
as :class:`~bench.latency.Series` in µs with its HdrHistogram. ``emulator`` is a warm
function through the gateway, ``floor`` the same function behind the least proxy that does a
proxied request's three HTTP exchanges (``bench.truth.proxy``), ``bare`` a bare aiohttp server
(``bench.truth.server`` ``/truth/0``), all measured in the same run, rounds interleaved.
Format history: ``emulator-cost`` 1 is the first version; 2 adds the floor target,
bench.truth.proxy (``floor``, ``floor_cpu_ratio``, ``floor_e2e_p50_ratio``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench.latency import Series
from bench.records import Record
from bench.results.core import Document
from bench.results.metadata import Metadata
from bench.stats import TrialStats


@dataclass(frozen=True)
class CostRound(Record):
    """One round against one target: ``requests`` timed requests on one keep-alive connection."""

    target: str  # "emulator", "floor" or "bare"
    number: int  # 1-based, in the order the rounds ran (the three targets take turns)
    requests: int
    server_cpu_ns: int  # the server process (emulator or floor: front + Runtime API), all threads
    environment_cpu_ns: int | None  # the function's environment processes; None for the bare server
    client_cpu_ns: int  # this process (http.client and the timing loop)
    wall_ns: int  # the round's timed loop, first request written to last body read
    e2e_p50_us: float
    e2e_p99_us: float


@dataclass(frozen=True)
class TargetCost(Record):
    """One target over every round: CPU per request from the summed rounds, the merged histogram."""

    target: str
    url: str
    requests: int  # timed, over all rounds
    statuses: dict[str, int]
    server_cpu_us_per_request: float
    environment_cpu_us_per_request: float | None
    client_cpu_us_per_request: float
    e2e_us: Series
    server_cpu_rounds: TrialStats  # server CPU µs per request, over the rounds
    e2e_p50_rounds: TrialStats  # e2e p50 µs, over the rounds


@dataclass(frozen=True)
class EmulatorCostRun(Document):
    KIND: ClassVar[str] = "emulator-cost"
    SCHEMA_VERSION: ClassVar[int] = 2

    metadata: Metadata
    function: str
    memory_mb: int
    rounds: int  # per target
    requests_per_round: int
    warmup_per_round: int
    cpu_source: str  # how process CPU was read (e.g. "/proc/<pid>/task/*/schedstat")
    emulator: TargetCost
    floor: TargetCost  # bench.truth.proxy: three aiohttp exchanges in front of one awslambdaric
    bare: TargetCost
    round_results: list[CostRound]
    gateway_cpu_ratio: float  # emulator server CPU per request / bare server CPU per request
    e2e_p50_ratio: float  # emulator e2e p50 / bare e2e p50 (merged histograms)
    floor_cpu_ratio: float  # floor server CPU per request / bare server CPU per request
    floor_e2e_p50_ratio: float  # floor e2e p50 / bare e2e p50 (merged histograms)
    gateway_cpu_ratio_goal: float  # the goal set for the emulator: <= 3
    e2e_p50_ratio_goal: float  # the goal set for the emulator: <= 2.5

    @property
    def over_floor_cpu(self) -> float:
        """The emulator's server CPU per request / the floor's: its own work above the three
        exchanges (1.0 would be none)."""
        return self.emulator.server_cpu_us_per_request / self.floor.server_cpu_us_per_request

    @property
    def over_floor_e2e_p50(self) -> float:
        """The emulator's e2e p50 / the floor's (merged histograms)."""
        return self.emulator.e2e_us.p50 / self.floor.e2e_us.p50


__all__ = ["CostRound", "EmulatorCostRun", "TargetCost"]
