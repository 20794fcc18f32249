"""Latency distributions: an HdrHistogram per series, recorded from ``perf_counter_ns`` durations.

The histogram stores integers in a fixed unit (µs by default, 3 significant digits, as wrk2
and Locust plugins do; ns for in-process timings, where a whole call is a few µs). Summaries
are always given in µs (floats). Histograms travel between processes and into results JSON
as HdrHistogram's own base64 encoding, and are merged with ``decode_and_add``; no percentile
is computed anywhere else in the project.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hdrh.histogram import HdrHistogram

from bench.records import Record

NS_PER_UNIT = {"ns": 1, "us": 1_000}
HIGHEST_NS = 3_600 * 1_000_000_000  # one hour
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


@dataclass(frozen=True)
class LatencySummary(Record):
    """Percentiles of one series, in µs. ``count`` is the number of samples."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


@dataclass(frozen=True)
class Series(LatencySummary):
    """A recorded series as results carry it: the summary in µs, the histogram's unit and its
    HdrHistogram encoding (decode it for any other percentile, or to merge)."""

    unit: str = "us"
    histogram: str = ""

    def decode(self) -> LatencyRecorder:
        return LatencyRecorder.decode(self.histogram, self.unit)


class LatencyRecorder:
    """One latency series. ``record_ns`` takes a duration in nanoseconds."""

    def __init__(self, unit: str = "us") -> None:
        if unit not in NS_PER_UNIT:
            raise ValueError(f"unit must be one of {sorted(NS_PER_UNIT)}, not {unit!r}")
        self.unit = unit
        self._ns_per_unit = NS_PER_UNIT[unit]
        self.histogram = HdrHistogram(1, HIGHEST_NS // self._ns_per_unit, SIGNIFICANT_DIGITS)

    def record_ns(self, duration_ns: int) -> None:
        value = (duration_ns + self._ns_per_unit // 2) // self._ns_per_unit
        self.histogram.record_value(min(max(value, 1), self.histogram.highest_trackable_value))

    @property
    def count(self) -> int:
        return self.histogram.get_total_count()

    def percentile_us(self, percentile: float) -> float:
        return self._to_us(self.histogram.get_value_at_percentile(percentile))

    def count_over_us(self, threshold_us: float) -> int:
        """Samples over ``threshold_us``; a bucket straddling it counts as over (pessimistic)."""
        return sum(
            item.count_at_value_iterated_to
            for item in self.histogram.get_recorded_iterator()
            if self._to_us(item.value_iterated_to) > threshold_us
        )

    def _to_us(self, value: float) -> float:
        return value * self._ns_per_unit / 1_000

    def summary(self) -> LatencySummary:
        if self.count == 0:
            return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        values = self.histogram.get_percentile_to_value_dict(list(PERCENTILES.values()))
        return LatencySummary(
            count=self.count,
            min=self._to_us(self.histogram.get_min_value()),
            mean=round(self._to_us(self.histogram.get_mean_value()), 3),
            max=self._to_us(self.histogram.get_max_value()),
            **{name: self._to_us(values[q]) for name, q in PERCENTILES.items()},
        )

    def encode(self) -> str:
        return self.histogram.encode().decode("ascii")

    def add_encoded(self, encoded: str) -> None:
        self.histogram.decode_and_add(encoded.encode("ascii"))

    def merge(self, other: LatencyRecorder) -> None:
        if other.unit != self.unit:
            raise ValueError(f"cannot merge a {other.unit} histogram into a {self.unit} one")
        self.histogram.add(other.histogram)

    @classmethod
    def decode(cls, encoded: str, unit: str = "us") -> LatencyRecorder:
        recorder = cls(unit)
        if encoded:
            recorder.add_encoded(encoded)
        return recorder

    def series(self) -> Series:
        """Summary in µs plus the encoded histogram and its unit, for results."""
        return Series(**asdict(self.summary()), unit=self.unit, histogram=self.encode())

    def to_dict(self) -> dict:
        return self.series().to_dict()
