"""What ``bench.compare`` compares: from each results document, its subjects (a function, a
variant, a function at a memory size), each with the key that says which runs are alike and
the figures one run gives.

Two runs are alike when they have the same **kind**, **function** (or variant), **scenario**
and **load**: a step run is not a before/after of a steady one, nor a 50 req/s run of a
100 req/s one. Every figure here is one the run already computed (percentiles from its
HdrHistograms, the medians of its trials); none is computed here.

A figure is named by what it measures, the same name meaning the same thing in every kind
(docs/results.md, "Init figures"): ``Init Duration p50`` is Lambda's own Init Duration wherever it
appears; the cold figures say from which instant to which.

Figures with ``interval=False`` are not samples of a distribution (the largest Max Memory
Used of a run, a cost derived from durations): they get a ratio and "no interval".
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.latency import Series
from bench.results import (
    ColdstartEndpointRun,
    ColdstartRun,
    Document,
    EndpointRun,
    InprocessRun,
    LocustRun,
    PowertuneRun,
)
from bench.results.compare import run_conditions

COMPARABLE_KINDS = ("locust", "powertune", "coldstart", "coldstart-endpoint", "endpoint", "inprocess")


@dataclass(frozen=True, order=True)
class PairKey:
    """Which runs are alike: a pair is one key with runs on both sides."""

    kind: str
    function: str
    scenario: str
    load: str

    def describe(self) -> str:
        return f"{self.kind} {self.function} ({self.scenario}; {self.load})"


@dataclass(frozen=True)
class Figure:
    """One run's value of one figure; ``interval`` False: a single value, no distribution."""

    name: str
    unit: str
    value: float
    interval: bool = True


def _percentiles(prefix: str, series: Series | None, unit: str = "µs") -> list[Figure]:
    if series is None or not series.count:
        return []
    return [Figure(f"{prefix} p50", unit, series.p50), Figure(f"{prefix} p99", unit, series.p99)]


def _p50(name: str, series: Series | None) -> list[Figure]:
    return [Figure(f"{name} p50", "µs", series.p50)] if series is not None and series.count else []


def _locust(document: LocustRun) -> list[tuple[PairKey, list[Figure]]]:
    scenario, load = run_conditions(document)
    subjects = []
    for name, endpoint in document.endpoints.items():
        e2e = endpoint.e2e_us
        if document.verdict.series == "e2e_intended_us" and endpoint.e2e_intended_us is not None:
            e2e = endpoint.e2e_intended_us  # the series the run was judged on (open loop)
        figures = _percentiles("end-to-end", e2e) + _percentiles("in-handler", endpoint.handler_us)
        cold = endpoint.cold_starts
        if cold.count:
            figures.append(Figure("cold request end-to-end p50", "µs", cold.e2e_us.p50))
        figures += _p50("Init Duration", cold.init_duration_us) + _p50("handler init", cold.handler_init_us)
        subjects.append((PairKey("locust", name, scenario, load), figures))
    return subjects


def _powertune(document: PowertuneRun) -> list[tuple[PairKey, list[Figure]]]:
    _scenario, load = run_conditions(document)
    subjects = []
    for sweep in document.functions:
        for size in sweep.sizes:
            if not size.fits:
                continue
            figures = _percentiles("REPORT Duration", size.warm_duration_us)
            figures += _p50("Init + first Duration", size.cold_start_us)
            figures += _p50("Init Duration", size.init_duration_us)
            if size.max_memory_used_mb is not None:
                figures.append(Figure("Max Memory Used", "MB", float(size.max_memory_used_mb), False))
            cost = size.cost_per_million_usd.get(sweep.architecture)
            if cost:
                figures.append(Figure("cost per million", "USD", cost, False))
            key = PairKey("powertune", sweep.function, f"{size.memory_mb} MB", load)
            subjects.append((key, figures))
    return subjects


def _coldstart(document: ColdstartRun) -> list[tuple[PairKey, list[Figure]]]:
    scenario, load = run_conditions(document)
    subjects = []
    for variant in document.variants:
        figures = [Figure("spawn to first call p50", "µs", variant.cold_start_us.p50)]
        figures.append(Figure("start to ready", "µs", variant.start_to_ready_us))
        figures += _percentiles("in-handler", variant.warm_us)
        figures.append(Figure("peak RSS", "MB", variant.peak_rss_mb, False))
        if variant.cost_per_million_usd:
            figures.append(Figure("cost per million", "USD", variant.cost_per_million_usd, False))
        subjects.append((PairKey("coldstart", variant.name, scenario, load), figures))
    return subjects


def _coldstart_endpoint(document: ColdstartEndpointRun) -> list[tuple[PairKey, list[Figure]]]:
    figures = []
    if document.first_request_us is not None:
        figures.append(Figure("first request p50", "µs", document.first_request_us.p50))
    if document.init_duration_us is not None:
        figures.append(Figure("Init Duration p50", "µs", document.init_duration_us.p50))
    figures += _percentiles("warm Invoke", document.warm_us)
    if document.peak_rss_mb is not None:
        figures.append(Figure("Max Memory Used", "MB", float(document.peak_rss_mb), False))
    if document.cost_per_million_usd:
        figures.append(Figure("cost per million", "USD", document.cost_per_million_usd, False))
    return [(PairKey("coldstart-endpoint", document.function, *run_conditions(document)), figures)]


def _endpoint(document: EndpointRun) -> list[tuple[PairKey, list[Figure]]]:
    options = document.metadata.options
    function = str(options.get("function") or urlsplit(str(options.get("url") or "endpoint")).path)
    figures = _percentiles("end-to-end", document.warm.e2e_us) + _percentiles(
        "in-handler", document.warm.in_handler_us
    )
    return [(PairKey("endpoint", function, *run_conditions(document)), figures)]


def _inprocess(document: InprocessRun) -> list[tuple[PairKey, list[Figure]]]:
    return [
        (
            PairKey("inprocess", variant.name, *run_conditions(document)),
            _percentiles("in-handler", variant.handler_us),
        )
        for variant in document.variants
    ]


def subjects(document: Document) -> list[tuple[PairKey, list[Figure]]]:
    """The subjects of one run with their figures; empty for a kind that is not compared."""
    if isinstance(document, LocustRun):
        return _locust(document)
    if isinstance(document, PowertuneRun):
        return _powertune(document)
    if isinstance(document, ColdstartRun):
        return _coldstart(document)
    if isinstance(document, ColdstartEndpointRun):
        return _coldstart_endpoint(document)
    if isinstance(document, EndpointRun):
        return _endpoint(document)
    if isinstance(document, InprocessRun):
        return _inprocess(document)
    return []
