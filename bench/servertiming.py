"""Parse the ``Server-Timing`` header (W3C): ``name;dur=<ms>[;desc=...], name2;dur=...``."""

from __future__ import annotations


def parse_server_timing(header: str | None) -> dict[str, float]:
    """Metric name -> duration in ms; metrics without a valid ``dur`` are left out."""
    metrics: dict[str, float] = {}
    if not header:
        return metrics
    for entry in header.split(","):
        name, _, params = entry.strip().partition(";")
        if not name:
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "dur":
                try:
                    duration = float(value.strip().strip('"'))
                except ValueError:
                    break
                if duration == duration and duration >= 0.0:  # not NaN, not negative
                    metrics[name.strip()] = duration
                break
    return metrics


def duration_ns(metrics: dict[str, float], name: str) -> int | None:
    value = metrics.get(name)
    return None if value is None else round(value * 1_000_000)
