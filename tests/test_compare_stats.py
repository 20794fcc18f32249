"""bench.compare.stats against hand-checked figures and synthetic runs with known answers."""

from __future__ import annotations

import math
import random

import pytest

from bench.compare.stats import (
    geometric_mean,
    paired_ratio_interval,
    per_interval_confidence,
    ratio_interval,
    words,
)


def test_the_interval_matches_a_hand_computed_t_interval():
    # Logs of each side equally spaced by ln 1.1: means ln 110 and ln 121, ratio exactly 1.1.
    # Pooled variance = 2 (ln 1.1)^2 * 2 / 4 = (ln 1.1)^2; SE = ln 1.1 * sqrt(2/3) = 0.077821;
    # t(0.975, 4 df) = 2.776445 (any t table); half-width 0.216066:
    # exp(0.095310 - 0.216066) = 0.88625, exp(0.095310 + 0.216066) = 1.36530.
    interval = ratio_interval([100.0, 110.0, 121.0], [110.0, 121.0, 133.1], 0.95)
    assert interval.ratio == pytest.approx(1.1)
    assert interval.degrees_of_freedom == 4
    assert interval.low == pytest.approx(0.88625, abs=1e-5)
    assert interval.high == pytest.approx(1.36530, abs=1e-5)
    assert interval.significant is False
    assert not interval.regression(0.0)


def test_a_clear_difference_is_significant_and_a_regression_past_its_threshold():
    interval = ratio_interval([100.0, 101.0, 99.0], [120.0, 121.0, 119.0], 0.95)
    assert interval.ratio == pytest.approx(120.0 / 100.0, rel=1e-3)
    assert interval.significant is True
    assert interval.regression(0.10) and not interval.regression(0.25)
    faster = ratio_interval([120.0, 121.0, 119.0], [100.0, 101.0, 99.0], 0.95)
    assert faster.significant is True and faster.high < 1.0 and not faster.regression(0.0)


def test_fewer_than_three_runs_a_side_gives_the_ratio_and_no_interval():
    interval = ratio_interval([100.0], [121.0], 0.95)
    assert interval.ratio == pytest.approx(1.21)
    assert interval.low is None and interval.significant is None
    assert "at least 3 runs per side" in interval.reason
    assert not interval.regression(0.0)
    assert ratio_interval([100.0, 101.0], [100.0, 101.0, 99.0], 0.95).low is None


def test_identical_runs_on_each_side_make_no_significance_claim_however_small_the_ratio():
    # every run's figure in the same histogram bucket: the interval would be the point 1.001
    interval = ratio_interval([1000.0] * 3, [1001.0] * 3, 0.95)
    assert interval.ratio == pytest.approx(1.001)
    assert interval.low is None and interval.high is None and interval.significant is None
    assert "identical values" in interval.reason and "no significance claim" in interval.reason
    assert not interval.regression(0.0)
    assert words(interval.ratio, interval.significant) == "1.00x, no change (no interval)"
    # one side spread is enough for an interval
    assert ratio_interval([1000.0] * 3, [1001.0, 1002.0, 1001.0], 0.95).low is not None


def test_geometric_mean_and_bonferroni_by_hand():
    assert geometric_mean([1.0, 4.0, 16.0]) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        geometric_mean([1.0, 0.0])
    assert per_interval_confidence(0.95, 5) == pytest.approx(0.99)
    assert per_interval_confidence(0.95, 0) == pytest.approx(0.95)


def test_words_say_the_direction_and_the_claim():
    assert words(1.21, True) == "1.21x slower (significant)"
    assert words(1 / 1.02, False) == "1.02x faster (not significant)"
    assert words(1.3, None) == "1.30x slower (no interval)"
    assert words(1.001, False) == "1.00x, no change (not significant)"
    assert words(1.1, None, "larger", "smaller") == "1.10x larger (no interval)"


def _runs(rng: random.Random, median: float, sigma: float, runs: int = 3) -> list[float]:
    """Per-run figures of a noisy machine: log-normal around ``median``, ``sigma`` between runs."""
    return [median * math.exp(rng.gauss(0.0, sigma)) for _ in range(runs)]


def test_same_versus_same_is_significant_at_about_the_stated_rate_over_many_seeds():
    trials, false_claims, false_regressions = 4000, 0, 0
    for seed in range(trials):
        rng = random.Random(seed)
        interval = ratio_interval(_runs(rng, 1000.0, 0.08), _runs(rng, 1000.0, 0.08), 0.95)
        false_claims += bool(interval.significant)
        false_regressions += interval.regression(0.0)
    # 5 % two-sided, 2.5 % one-sided; binomial SD over 4,000 trials is 0.34 % and 0.25 %.
    assert 0.035 < false_claims / trials < 0.065
    assert 0.015 < false_regressions / trials < 0.035


def test_bonferroni_holds_the_family_rate_across_the_figures_of_a_comparison():
    trials, families_with_a_false_claim, figures = 2000, 0, 5
    confidence = per_interval_confidence(0.95, figures)
    for seed in range(trials):
        rng = random.Random(10_000 + seed)
        claims = [
            ratio_interval(_runs(rng, 500.0, 0.1), _runs(rng, 500.0, 0.1), confidence).significant
            for _ in range(figures)
        ]
        families_with_a_false_claim += any(claims)
    assert families_with_a_false_claim / trials <= 0.06  # at most 5 % (+ sampling error)
    assert families_with_a_false_claim / trials > 0.03  # and not a test that cannot fail


def test_a_side_15_percent_slower_is_caught_with_three_runs_a_side():
    trials, caught = 1000, 0
    confidence = per_interval_confidence(0.95, 4)  # a Locust pair: four figures with intervals
    for seed in range(trials):
        rng = random.Random(50_000 + seed)
        interval = ratio_interval(_runs(rng, 1000.0, 0.02), _runs(rng, 1150.0, 0.02), confidence)
        caught += interval.regression(0.0)
        assert interval.ratio == pytest.approx(1.15, rel=0.1)
    assert caught / trials >= 0.9


def test_the_paired_interval_matches_a_hand_computed_paired_t_interval():
    # Per-run log ratios ln 1.1 - 0.01, ln 1.1, ln 1.1 + 0.01: mean ln 1.1 = 0.0953102, SD 0.01,
    # SE 0.01 / sqrt(3) = 0.0057735; t(0.975, 2 df) = 4.302653 (any t table); half-width
    # 0.0248414: exp(0.0704688) = 1.073011, exp(0.1201516) = 1.127668.
    base = [100.0, 1000.0, 50.0]
    new = [value * 1.1 * math.exp(step) for value, step in zip(base, (-0.01, 0.0, 0.01), strict=True)]
    interval = paired_ratio_interval(base, new, 0.95)
    assert interval.ratio == pytest.approx(1.1)
    assert interval.degrees_of_freedom == 2
    assert interval.low == pytest.approx(1.073011, abs=1e-5)
    assert interval.high == pytest.approx(1.127668, abs=1e-6)
    assert interval.significant is True and interval.regression(0.05)


def test_side_by_side_runs_cancel_a_host_that_changes_speed_between_runs():
    """Known answer: the new version costs 1.15x; the host's speed changes run to run by up to
    1.6x, alike for both versions of a run (measured together). Unpaired, the swings drown the
    difference; paired, they cancel."""
    rng = random.Random(7)
    caught_paired = caught_unpaired = 0
    for _ in range(200):
        speeds = [rng.choice((1.0, 1.0, 1.45, 1.6)) for _ in range(3)]
        base = [1000.0 * s * rng.lognormvariate(0, 0.01) for s in speeds]
        new = [1150.0 * s * rng.lognormvariate(0, 0.01) for s in speeds]
        caught_paired += paired_ratio_interval(base, new, 0.9875).regression(0.05)
        caught_unpaired += ratio_interval(base, new, 0.9875).regression(0.05)
    assert caught_paired >= 150 and caught_unpaired <= 40, (caught_paired, caught_unpaired)


def test_paired_runs_need_three_and_a_spread():
    assert paired_ratio_interval([1.0, 2.0], [1.1, 2.2], 0.95).low is None
    same_ratio = paired_ratio_interval([1.0, 2.0, 4.0], [2.0, 4.0, 8.0], 0.95)
    assert (
        same_ratio.low is None
        and "same ratio" in same_ratio.reason
        and same_ratio.ratio == pytest.approx(2.0)
    )
    with pytest.raises(ValueError):
        paired_ratio_interval([1.0, 2.0, 3.0], [1.0, 2.0], 0.95)


def test_same_versus_same_side_by_side_keeps_its_false_alarm_rate():
    """Synthetic same-vs-same pairs with host swings: a one-sided false regression at family 95 %
    (one interval, 97.5 % on the high side) in at most ~2.5 % of comparisons."""
    rng = random.Random(11)
    alarms = 0
    for _ in range(2000):
        speeds = [rng.choice((1.0, 1.45)) for _ in range(3)]
        base = [s * rng.lognormvariate(0, 0.02) for s in speeds]
        new = [s * rng.lognormvariate(0, 0.02) for s in speeds]
        alarms += paired_ratio_interval(base, new, 0.95).regression(0.0)
    assert alarms <= 2000 * 0.035, alarms
