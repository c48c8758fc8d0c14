"""Small statistics in plain Python (no numpy): percentiles, least squares, t-intervals, early stopping.

Percentiles are the standard library's ``statistics.quantiles(method="inclusive")``: linear
interpolation between closest ranks (numpy's default, Hyndman-Fan type 7). For sorted values
``x[0..n-1]`` and ``q`` in [0, 100], position ``h = (n - 1) * q / 100`` and the result is
``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. The slope is
``statistics.linear_regression``'s (ordinary least squares).

Early stopping is MLPerf LoadGen's rule (``loadgen/early_stopping.cc``), written anew here: with
``t`` of ``n`` requests over a latency bound, the percentile ``p`` is below the bound at confidence
``c`` when a system whose true share of requests within the bound were only ``p`` would show ``t``
or fewer over it in ``n`` with a probability below ``1 - c`` (a binomial tail). The fewest requests
within the bound that make it so, ``h(t)``, rises with ``t``: 459 for t = 0 at p = 0.99, c = 0.99;
``h(1) + 1`` = 662 is the least a P99 estimate needs (64 for P90), as in LoadGen's summaries.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from xsched_ops.results.models import Distribution, Interval

# Two-sided 95 % Student t critical values by degrees of freedom.
_T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}
EARLY_STOPPING_CONFIDENCE = 0.99  # LoadGen's
EARLY_STOPPING_TOLERANCE = 0.0  # LoadGen's


def t_critical_95(degrees_of_freedom: int) -> float:
    """The 97.5 % quantile of Student's t; between table rows the smaller df (a wider interval)."""
    if degrees_of_freedom < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if degrees_of_freedom > 120:
        return 1.960
    usable = max(df for df in _T95 if df <= degrees_of_freedom)
    return _T95[usable]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Percentile ``q`` (0-100) of values already sorted ascending (type 7 interpolation)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError("q must be in [0, 100]")
    share = Fraction(str(q)).limit_denominator(1_000_000) / 100
    if len(sorted_values) == 1 or share == 0:
        return sorted_values[0]
    if share == 1:
        return sorted_values[-1]
    # quantiles(n=N) returns the N - 1 cut points i/N; q/100 = numerator/denominator is one of them.
    cuts = statistics.quantiles(sorted_values, n=share.denominator, method="inclusive")
    return cuts[share.numerator - 1]


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50.0)


def distribution(values_ms: Sequence[float]) -> Distribution:
    if not values_ms:
        return Distribution(count=0)
    ordered = sorted(values_ms)
    return Distribution(
        count=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        min=ordered[0],
        p50=percentile(ordered, 50.0),
        p90=percentile(ordered, 90.0),
        p99=percentile(ordered, 99.0),
        p999=percentile(ordered, 99.9),
        max=ordered[-1],
    )


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Slope of the ordinary least-squares line through (x, y); None with < 2 distinct x."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    if len(xs) < 2:
        return None
    try:
        return statistics.linear_regression(xs, ys).slope
    except statistics.StatisticsError:  # every x the same
        return None


def mean_interval(values: Sequence[float | None]) -> Interval:
    """Mean and 95 % t-interval of per-repeat values (None values are left out)."""
    present = [float(value) for value in values if value is not None]
    n = len(present)
    if n == 0:
        return Interval(n=0, mean=None, method="no data")
    mean = statistics.fmean(present)
    if n == 1:
        return Interval(n=1, mean=mean, values=present, method="n=1, no interval")
    half_width = t_critical_95(n - 1) * statistics.stdev(present, mean) / math.sqrt(n)
    return Interval(n=n, mean=mean, low=mean - half_width, high=mean + half_width, values=present,
                    method="t-interval 95%")


# --------------------------------------------------------------------------- early stopping (MLPerf LoadGen)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (exact enough for n in the millions)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_ratio = math.log(p) - math.log1p(-p)
    term = n * math.log1p(-p)  # log P(X = 0); then log P(X = x + 1) = log P(X = x) + log((n - x) p / ((x + 1) q))
    terms = [term]
    for x in range(k):
        term += math.log((n - x) / (x + 1)) + log_ratio
        terms.append(term)
    largest = max(terms)
    return min(1.0, math.exp(largest) * math.fsum(math.exp(term - largest) for term in terms))


def min_within_bound(overlatency: int, percentile_share: float = 0.99,
                     confidence: float = EARLY_STOPPING_CONFIDENCE,
                     tolerance: float = EARLY_STOPPING_TOLERANCE) -> int:
    """LoadGen's ``h``: the fewest requests within the bound that, beside ``overlatency`` requests over it,
    show at ``confidence`` that the ``percentile_share`` percentile is within the bound."""
    if overlatency < 0:
        raise ValueError("overlatency must be at least 0")
    if not 0.0 < percentile_share - tolerance < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError("percentile, tolerance and confidence must leave a share in (0, 1)")
    over_share = 1.0 - percentile_share + tolerance

    def passes(within: int) -> bool:
        return binomial_cdf(overlatency, within + overlatency, over_share) < 1.0 - confidence

    # h is near t * p / (1 - p) (the share) plus a margin: start there, double until it passes.
    low, high = 0, max(1, int(overlatency * (1.0 - over_share) / over_share))
    while not passes(high):
        low, high = high + 1, high * 2
    while low < high:  # the least passing value in [low, high]
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle + 1
    return low


@dataclass(frozen=True)
class EarlyStoppingVerdict:
    """The rule for one sample against one latency bound (LoadGen's Server scenario)."""

    requests: int
    overlatency: int
    needed: int  # requests the rule needs given this many over the bound (h + t)
    met: bool  # enough requests: the percentile is within the bound at the confidence
    exceeded: bool  # the percentile is over the bound at the same confidence: more requests cannot help

    @property
    def more_needed(self) -> int:
        return max(0, self.needed - self.requests)


def early_stopping_verdict(requests: int, overlatency: int, percentile_share: float = 0.99,
                           confidence: float = EARLY_STOPPING_CONFIDENCE) -> EarlyStoppingVerdict:
    """Is the percentile within the bound with ``overlatency`` of ``requests`` over it? And if not, is it
    over it at the same confidence (at least ``overlatency`` over the bound would then be this unlikely)?"""
    if not 0 <= overlatency <= requests:
        raise ValueError("overlatency must be between 0 and requests")
    needed = min_within_bound(overlatency, percentile_share, confidence) + overlatency
    over_share = 1.0 - percentile_share
    exceeded = overlatency > 0 and 1.0 - binomial_cdf(overlatency - 1, requests, over_share) < 1.0 - confidence
    return EarlyStoppingVerdict(requests, overlatency, needed, requests >= needed, exceeded)


def early_stopping_estimate(sorted_values: Sequence[float], percentile_share: float = 0.99,
                            confidence: float = EARLY_STOPPING_CONFIDENCE) -> tuple[float, int] | None:
    """LoadGen's percentile estimate (SingleStream): the ``t``-th highest value for the largest ``t`` with
    ``h(t) + t <= n``, and the ``t - 1`` highest values it discards; None below ``h(1) + 1`` values."""
    count = len(sorted_values)
    if count < min_within_bound(1, percentile_share, confidence) + 1:
        return None
    low, high = 1, count  # h(t) + t rises with t: the largest t that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if min_within_bound(middle, percentile_share, confidence) + middle <= count:
            low = middle
        else:
            high = middle - 1
    return sorted_values[count - low], low - 1
