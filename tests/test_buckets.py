"""Locust's response-time buckets as the plugin replaces them (bench.load.buckets): pure
arithmetic, no Locust imported here (importing it monkey-patches the test runner with gevent).
The replacement at work in real Locust processes, a master and its workers, is checked by
tests/test_locust.py (its CSV and its web UI against our HdrHistograms)."""

from __future__ import annotations

import math

import pytest

from bench.load.buckets import bucket_ms


@pytest.mark.parametrize(
    ("response_time", "key"),
    [
        (0, 0),
        (0.0004, 0.0),  # below 1 µs: no key finer than the harness's unit
        (0.01234, 0.012),
        (0.48712, 0.487),
        (1.1349, 1.13),  # Locust's own rounding makes this 1
        (4.1437, 4.14),
        (12.345, 12.3),
        (99.96, 100),
        (123.4, 123),
        (1234.5, 1230),
        (58760.0, 58800),
    ],
)
def test_three_significant_figures_down_to_a_microsecond(response_time, key):
    assert bucket_ms(response_time) == key


def test_whole_milliseconds_from_100_ms_are_ints_below_are_floats():
    assert isinstance(bucket_ms(123.4), int) and isinstance(bucket_ms(1234.5), int)
    assert isinstance(bucket_ms(4.1437), float)  # Locust's CSV then prints "4.14", not "4"


def test_every_key_is_within_half_a_unit_of_the_third_figure():
    values = [0.1 * 1.0007**step for step in range(20_000)]  # 0.1 ms to ~120 s
    worst = max(abs(bucket_ms(value) - value) / value for value in values)
    assert worst <= 0.005


def test_at_most_900_keys_per_decade():
    for decade in (0.1, 1.0, 10.0, 100.0, 1000.0):
        keys = {bucket_ms(decade * (1 + step / 10_000)) for step in range(90_000)}
        assert len(keys) <= 901, decade  # 1.00 .. 9.99, and the next decade's 10.0
        assert math.isclose(min(keys), decade)
