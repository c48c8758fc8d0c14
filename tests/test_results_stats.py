"""Plain-Python statistics against hand computations."""

from __future__ import annotations

import math

import pytest

from xsched_ops.results.stats import (
    binomial_cdf,
    distribution,
    early_stopping_estimate,
    early_stopping_verdict,
    least_squares_slope,
    mean_interval,
    median,
    min_within_bound,
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


def test_percentile_and_slope_agree_with_the_hand_formula_on_random_data():
    import random

    generator = random.Random(5)
    for _ in range(200):
        values = sorted(generator.expovariate(0.1) for _ in range(generator.randint(2, 400)))
        for q in (50.0, 90.0, 99.0, 99.9):
            position = (len(values) - 1) * q / 100.0
            lower = math.floor(position)
            upper = min(lower + 1, len(values) - 1)
            expected = values[lower] + (position - lower) * (values[upper] - values[lower])
            assert percentile(values, q) == pytest.approx(expected, rel=1e-12)
    xs, ys = [0.0, 1.0, 2.0, 3.0], [2.0, 2.5, 4.5, 5.0]
    # slope = sum (x - 1.5)(y - 3.5) / sum (x - 1.5)^2 = (2.25 + 0.5 + 0.5 + 2.25) / 5 = 1.1
    assert least_squares_slope(xs, ys) == pytest.approx(1.1)


def test_binomial_cdf_against_hand_sums():
    # n = 3, p = 0.5: P(X <= 1) = (1 + 3) / 8
    assert binomial_cdf(1, 3, 0.5) == pytest.approx(0.5)
    # n = 10, p = 0.1: P(X = 0) = 0.9^10
    assert binomial_cdf(0, 10, 0.1) == pytest.approx(0.9 ** 10)
    assert binomial_cdf(2, 5, 0.3) == pytest.approx(0.7 ** 5 + 5 * 0.3 * 0.7 ** 4 + 10 * 0.09 * 0.7 ** 3)
    assert binomial_cdf(-1, 5, 0.3) == 0.0 and binomial_cdf(5, 5, 0.3) == 1.0


def test_min_within_bound_matches_loadgen():
    # t = 0: the least h with 0.99^h < 0.01 is ceil(ln 0.01 / ln 0.99) = ceil(458.2) = 459.
    assert min_within_bound(0) == math.ceil(math.log(0.01) / math.log(0.99)) == 459
    # t = 1: LoadGen's floors, h(1) + 1 = 662 requests for P99 and 64 for P90.
    assert min_within_bound(1) + 1 == 662
    assert min_within_bound(1, 0.90) + 1 == 64
    # by hand at t = 1, n = h + 1: 0.99^n + n 0.01 0.99^(n-1) must fall below 0.01 first at n = 662
    def tail(n: int) -> float:
        return 0.99 ** n + n * 0.01 * 0.99 ** (n - 1)
    assert tail(662) < 0.01 <= tail(661)
    needed = [min_within_bound(t) for t in range(6)]
    assert needed == sorted(needed) and len(set(needed)) == 6  # more over the bound, more requests needed


def test_early_stopping_verdict():
    verdict = early_stopping_verdict(3600, 20)  # 0.56 % over the bound: P99 within it, enough requests
    assert verdict.met and not verdict.exceeded and verdict.more_needed == 0
    short = early_stopping_verdict(500, 2)  # too few requests to tell
    assert not short.met and not short.exceeded
    assert short.needed == min_within_bound(2) + 2 and short.more_needed == short.needed - 500
    over = early_stopping_verdict(3600, 80)  # 2.2 % over the bound: P99 is over it, more requests cannot help
    assert over.exceeded and not over.met
    with pytest.raises(ValueError):
        early_stopping_verdict(10, 11)


def test_early_stopping_estimate_matches_published_loadgen_summaries():
    # LoadGen summaries (SingleStream, 90th percentile): "Processed at least 64 queries (2048).
    # Would discard 172 highest latency queries."; 2116 -> 178; 2145 -> 181; 7469 -> 685.
    for count, discarded in ((2048, 172), (2116, 178), (2145, 181), (7469, 685)):
        values = [float(v) for v in range(count)]
        estimate, dropped = early_stopping_estimate(values, 0.90)
        assert dropped == discarded
        assert estimate == values[count - 1 - discarded]
    assert early_stopping_estimate([1.0] * 661) is None  # below 662 values: no P99 estimate
    estimate, dropped = early_stopping_estimate([float(v) for v in range(662)])
    assert (estimate, dropped) == (661.0, 0)  # exactly the floor: the maximum
