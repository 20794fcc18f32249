"""What the Locust harness records per endpoint, and how workers' records merge on the master.

Per request (Locust's ``request`` event; the exact float it carries, never its rounded
buckets): the end-to-end time from the actual send (Locust's own ``perf_counter`` span:
request written to body read), in µs; under open loop also the time from the *intended* send
(schedule lag + end-to-end, as wrk2 and MLPerf LoadGen measure) and the lag itself; the
handler's own time from ``Server-Timing`` (``handler``, else ``predict``); cold starts apart:
a request with either init figure, each kept in a series of its own (never one standing in for
the other): the handler's ``Server-Timing: init`` (``cold_handler_init``) and the emulator's
Init Duration, its ``X-Emulator-Init-Duration-Ms`` (``cold_init_duration``). Every
request the harness sends is counted once in ``sent`` and, when it ends, in exactly one
outcome: 2xx, 4xx (not 429), 429, 5xx, other (1xx/3xx), connection_error, or cancelled
(still in flight when its user was stopped). Not measured: DNS and connection setup are
inside the first request of each connection; client CPU time is inside every figure.

A worker's recorder is drained into a plain dict (encoded histograms and counters, str keys
for msgpack) at each ``report_to_master``; the master adds them up. A per-second timeline
keeps counts and a small histogram (2 significant digits) per wall-clock second.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

from bench.latency import LatencyRecorder
from bench.servertiming import duration_ns, parse_server_timing

OUTCOMES = ("2xx", "4xx", "429", "5xx", "other", "connection_error", "cancelled")
INIT_HEADER = "X-Emulator-Init-Duration-Ms"
# The emulator's resource model flags an init or invocation whose wall time its CPU time at its
# share does not explain while the host was saturated (handler.local): e.g. "invoke 1.8".
CONTENDED_HEADER = "X-Emulator-Contended"
SERIES = (
    "e2e",
    "e2e_intended",
    "handler",
    "cold_e2e",
    "cold_handler_init",
    "cold_init_duration",
    "schedule_lag",
    "throttled",
)
# The emulator's mark on its answer to a Lambda concurrency throttle (handler.local.pool).
THROTTLED_HEADER = "X-Emulator-Throttled"
COUNTERS = (
    "sent",
    "verify_failures",
    "missed_sends",
    "contended_inits",
    "contended_invokes",
    "measured",
    "lambda_throttles",  # failed answers the emulator marked as a Lambda throttle (any status)
    "lambda_throttles_429",  # of them, those answered 429 (--throttling-expected does not count these)
    # inits with the emulator's Init Duration: their sum, and the sum of what they needed at their
    # CPU share (wall / the contention factor when contended): bench.hostmade's estimate
    "init_figures",
    "init_wall_us",
    "init_needed_us",
    "init_figures_contended",
)
_INIT_FACTOR = re.compile(r"init ([0-9.]+)")
TIMELINE_HIGHEST_US = 60_000_000
TIMELINE_DIGITS = 2


def outcome_of(status_code: int | None) -> str:
    """The outcome class of an HTTP status; 0 or None (no response) is a connection error."""
    if not status_code:
        return "connection_error"
    if status_code == 429:
        return "429"
    if 200 <= status_code < 300:
        return "2xx"
    if 400 <= status_code < 500:
        return "4xx"
    if 500 <= status_code < 600:
        return "5xx"
    return "other"


def _header_ms_to_ns(value: str | None) -> int | None:
    if not value:
        return None
    try:
        milliseconds = float(value)
    except ValueError:
        return None
    if not 0.0 <= milliseconds < 1e12:  # also rejects NaN and inf
        return None
    return round(milliseconds * 1_000_000)


def timeline_histogram() -> HdrHistogram:
    return HdrHistogram(1, TIMELINE_HIGHEST_US, TIMELINE_DIGITS)


class Second:
    """One wall-clock second of one endpoint: counts and coarse latency histograms, of every
    answer and of the 2xx ones alone (under overload, the admitted requests' latency must not
    be averaged with the fast refusals'). ``errors`` counts every answer but 2xx and every failed
    verify; ``throttled`` the 429 answers; ``lambda_throttles`` the answers the emulator marked as a
    Lambda concurrency throttle (any status: API Gateway answers one with a 500)."""

    __slots__ = (
        "cold_starts",
        "errors",
        "histogram",
        "lambda_throttles",
        "ok",
        "ok_histogram",
        "requests",
        "throttled",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.cold_starts = 0
        self.ok = 0
        self.throttled = 0
        self.lambda_throttles = 0
        self.histogram = timeline_histogram()
        self.ok_histogram = timeline_histogram()

    def to_payload(self) -> dict:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "cold_starts": self.cold_starts,
            "ok": self.ok,
            "throttled": self.throttled,
            "lambda_throttles": self.lambda_throttles,
            "histogram": self.histogram.encode().decode("ascii") if self.requests else "",
            "ok_histogram": self.ok_histogram.encode().decode("ascii") if self.ok else "",
        }

    def add_payload(self, payload: dict) -> None:
        self.requests += payload["requests"]
        self.errors += payload["errors"]
        self.cold_starts += payload["cold_starts"]
        self.ok += payload["ok"]
        self.throttled += payload["throttled"]
        self.lambda_throttles += payload["lambda_throttles"]
        if payload["histogram"]:
            self.histogram.decode_and_add(payload["histogram"].encode("ascii"))
        if payload["ok_histogram"]:
            self.ok_histogram.decode_and_add(payload["ok_histogram"].encode("ascii"))

    def add(self, other: Second) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.cold_starts += other.cold_starts
        self.ok += other.ok
        self.throttled += other.throttled
        self.lambda_throttles += other.lambda_throttles
        self.histogram.add(other.histogram)
        self.ok_histogram.add(other.ok_histogram)


class EndpointRecord:
    """Everything recorded for one endpoint (one ``--function``)."""

    def __init__(self) -> None:
        self.series = {name: LatencyRecorder("us") for name in SERIES}
        self.outcomes: Counter[str] = Counter({name: 0 for name in OUTCOMES})
        self.counters: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self.timeline: dict[int, Second] = {}

    def second(self, wall_second: int) -> Second:
        entry = self.timeline.get(wall_second)
        if entry is None:
            entry = self.timeline[wall_second] = Second()
        return entry

    def to_payload(self) -> dict:
        return {
            "series": {name: rec.encode() for name, rec in self.series.items() if rec.count},
            "outcomes": dict(self.outcomes),
            "counters": dict(self.counters),
            "timeline": {str(second): entry.to_payload() for second, entry in self.timeline.items()},
        }

    def add_payload(self, payload: dict) -> None:
        for name, encoded in payload["series"].items():
            self.series[name].add_encoded(encoded)
        self.outcomes.update(payload["outcomes"])
        self.counters.update(payload["counters"])
        for second, entry in payload["timeline"].items():
            self.second(int(second)).add_payload(entry)


class RunRecorder:
    """The records of every endpoint in this process (a worker's since its last report)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, EndpointRecord] = {}
        self.workers_reporting: set[str] = set()
        self.workers_final: set[str] = set()

    def endpoint(self, name: str) -> EndpointRecord:
        record = self.endpoints.get(name)
        if record is None:
            record = self.endpoints[name] = EndpointRecord()
        return record

    def note_sent(self, name: str) -> None:
        self.endpoint(name).counters["sent"] += 1

    def note_cancelled(self, name: str) -> None:
        self.endpoint(name).outcomes["cancelled"] += 1

    def note_missed(self, name: str) -> None:
        self.endpoint(name).counters["missed_sends"] += 1

    def note_lag(self, name: str, lag_ns: int) -> None:
        self.endpoint(name).series["schedule_lag"].record_ns(max(lag_ns, 0))

    def record(
        self,
        name: str,
        *,
        status_code: int | None,
        response_time_ms: float,
        headers: object | None,
        wall_second: int,
        lag_ns: int | None = None,
        verify_failed: bool = False,
    ) -> None:
        """One finished request. ``headers`` needs only ``.get(name)`` (case-insensitive)."""
        record = self.endpoint(name)
        e2e_ns = round(response_time_ms * 1_000_000)
        outcome = outcome_of(status_code)
        record.outcomes[outcome] += 1
        if verify_failed:
            record.counters["verify_failures"] += 1
        record.series["e2e"].record_ns(e2e_ns)
        if lag_ns is not None:
            record.series["e2e_intended"].record_ns(max(lag_ns, 0) + e2e_ns)
        if outcome == "429":
            record.series["throttled"].record_ns(e2e_ns)
        second = record.second(wall_second)
        second.requests += 1
        second.errors += outcome != "2xx" or verify_failed
        timeline_us = min(max(round(e2e_ns / 1_000), 1), TIMELINE_HIGHEST_US)
        second.histogram.record_value(timeline_us)
        if outcome == "2xx":
            second.ok += 1
            second.ok_histogram.record_value(timeline_us)
        elif outcome == "429":
            second.throttled += 1
        if headers is None:
            return
        if outcome != "2xx" and headers.get(THROTTLED_HEADER) is not None:  # type: ignore[attr-defined]
            record.counters["lambda_throttles"] += 1
            record.counters["lambda_throttles_429"] += outcome == "429"
            second.lambda_throttles += 1
        if headers.get("X-Emulator-Duration-Cpu-Us") is not None:  # type: ignore[attr-defined]
            record.counters["measured"] += 1  # the resource model measured this invocation
        contended = headers.get(CONTENDED_HEADER) or ""  # type: ignore[attr-defined]
        if "init" in contended:
            record.counters["contended_inits"] += 1
        if "invoke" in contended:
            record.counters["contended_invokes"] += 1
        timing = parse_server_timing(headers.get("Server-Timing"))  # type: ignore[attr-defined]
        handler_ns = duration_ns(timing, "handler")
        if handler_ns is None:
            handler_ns = duration_ns(timing, "predict")
        if handler_ns is not None:
            record.series["handler"].record_ns(handler_ns)
        emulator_init_ns = _header_ms_to_ns(headers.get(INIT_HEADER))  # type: ignore[attr-defined]
        if emulator_init_ns is not None:
            found = _INIT_FACTOR.search(contended)
            factor = float(found.group(1)) if found else 0.0
            needed_ns = emulator_init_ns / factor if factor > 0 else None
            record.counters["init_figures"] += 1
            record.counters["init_wall_us"] += emulator_init_ns // 1_000
            record.counters["init_needed_us"] += round((needed_ns or emulator_init_ns) / 1_000)
            record.counters["init_figures_contended"] += needed_ns is not None
        handler_init_ns = duration_ns(timing, "init")
        if handler_init_ns is not None:
            record.series["cold_handler_init"].record_ns(handler_init_ns)
        if emulator_init_ns is not None:
            record.series["cold_init_duration"].record_ns(emulator_init_ns)
        if handler_init_ns is not None or emulator_init_ns is not None:  # a cold start
            record.series["cold_e2e"].record_ns(e2e_ns)
            second.cold_starts += 1

    def drain(self, final: bool = False) -> dict:
        """This process's records as a payload for the master, and a fresh start."""
        payload = {
            "endpoints": {name: record.to_payload() for name, record in self.endpoints.items()},
            "final": final,
        }
        self.endpoints = {}
        return payload

    def add_payload(self, worker_id: str, payload: dict) -> None:
        self.workers_reporting.add(worker_id)
        if payload.get("final"):
            self.workers_final.add(worker_id)
        for name, endpoint_payload in payload["endpoints"].items():
            self.endpoint(name).add_payload(endpoint_payload)

    def merge_timelines(self, names: Iterable[str] | None = None) -> dict[int, Second]:
        """The timeline across the named endpoints (all by default)."""
        merged: dict[int, Second] = {}
        for name in names if names is not None else self.endpoints:
            for wall_second, entry in self.endpoints[name].timeline.items():
                merged.setdefault(wall_second, Second()).add(entry)
        return merged
