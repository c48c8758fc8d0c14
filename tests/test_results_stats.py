"""Plain-Python statistics against hand computations."""

from __future__ import annotations

import math

import pytest

from xsched_ops.results.stats import (
    distribution,
    least_squares_slope,
    mean_interval,
    median,
    percentile,
    t_critical_95,
)


def test_percentile_interpolates_between_closest_ranks():
    values = [1.0, 2.0, 3.0, 4.0]
    # position (n-1)*q/100: p50 -> 1.5 -> 2.5; p99 -> 2.97 -> 3 + 0.97 * 1
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile([7.0], 99.9) == 7.0
    hundred = [float(i) for i in range(1, 101)]
    assert percentile(hundred, 99) == pytest.approx(99.01)
    assert percentile(hundred, 99.9) == pytest.approx(99.901)
    assert median([3.0, 1.0, 2.0]) == 2.0


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_distribution_of_one_to_twenty():
    dist = distribution([float(v) for v in range(20, 0, -1)])
    assert dist.count == 20
    assert dist.mean == pytest.approx(10.5)
    assert dist.p50 == pytest.approx(10.5)  # h = 9.5
    assert dist.p90 == pytest.approx(18.1)  # h = 17.1 -> 18 + 0.1
    assert dist.p99 == pytest.approx(19.81)  # h = 18.81 -> 19 + 0.81
    assert dist.min == 1.0 and dist.max == 20.0
    assert distribution([]).count == 0 and distribution([]).p99 is None


def test_least_squares_slope():
    assert least_squares_slope([0.0, 1.0, 2.0], [1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert least_squares_slope([0.0, 1.0, 2.0, 3.0], [1.0, 0.0, 1.0, 0.0]) == pytest.approx(-0.2)
    assert least_squares_slope([1.0], [1.0]) is None
    assert least_squares_slope([2.0, 2.0], [1.0, 5.0]) is None


def test_mean_interval_t_95():
    interval = mean_interval([1.0, 2.0, 3.0])
    half = 4.303 * 1.0 / math.sqrt(3)  # sd = 1, df = 2
    assert interval.mean == pytest.approx(2.0)
    assert interval.low == pytest.approx(2.0 - half)
    assert interval.high == pytest.approx(2.0 + half)
    assert interval.method == "t-interval 95%"
    single = mean_interval([5.0, None])
    assert single.n == 1 and single.low is None and single.method == "n=1, no interval"
    assert "no interval" in single.describe()
    assert mean_interval([]).method == "no data"


def test_t_critical_table():
    assert t_critical_95(1) == 12.706
    assert t_critical_95(30) == 2.042
    assert t_critical_95(45) == 2.021  # between rows: the smaller df, a wider interval
    assert t_critical_95(1000) == 1.960
    with pytest.raises(ValueError):
        t_critical_95(0)
