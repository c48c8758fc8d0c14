"""Small statistics in plain Python (no numpy): percentiles, least squares, t-intervals.

Percentiles use linear interpolation between closest ranks (numpy's default, Hyndman-Fan type 7):
for sorted values ``x[0..n-1]`` and ``q`` in [0, 100], position ``h = (n - 1) * q / 100`` and the
result is ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xsched_ops.results.models import Distribution, Interval

# Two-sided 95 % Student t critical values by degrees of freedom.
_T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
    26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980,
}


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
    position = (len(sorted_values) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    fraction = position - lower
    return sorted_values[lower] + fraction * (sorted_values[upper] - sorted_values[lower])


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
    n = len(xs)
    if n < 2:
        return None
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(ys) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx == 0.0:
        return None
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


def mean_interval(values: Sequence[float | None]) -> Interval:
    """Mean and 95 % t-interval of per-repeat values (None values are left out)."""
    present = [float(value) for value in values if value is not None]
    n = len(present)
    if n == 0:
        return Interval(n=0, mean=None, method="no data")
    mean = math.fsum(present) / n
    if n == 1:
        return Interval(n=1, mean=mean, values=present, method="n=1, no interval")
    variance = math.fsum((value - mean) ** 2 for value in present) / (n - 1)
    half_width = t_critical_95(n - 1) * math.sqrt(variance / n)
    return Interval(n=n, mean=mean, low=mean - half_width, high=mean + half_width, values=present,
                    method="t-interval 95%")
