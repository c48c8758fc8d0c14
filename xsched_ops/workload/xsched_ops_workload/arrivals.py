"""Seeded arrival traces: the same trace for the same settings, in every mode and placement."""

from __future__ import annotations

import random


def arrival_trace(process: str, rate: float, jitter: float, seed: int, duration_s: float) -> list[float]:
    """Intended arrival times in seconds from t0, sorted, all in [0, duration_s).

    ``uniform``: request k at ``k/rate`` moved by ``u*jitter/rate`` with u uniform in [-0.5, 0.5);
    ``poisson``: exponential gaps with mean ``1/rate``.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    rng = random.Random(seed)
    interval = 1.0 / rate
    times: list[float] = []
    if process == "uniform":
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")
        k = 0
        while True:
            nominal = k * interval
            if nominal >= duration_s:
                break
            offset = (rng.random() - 0.5) * jitter * interval
            times.append(min(max(nominal + offset, 0.0), duration_s - 1e-9))
            k += 1
        times.sort()
    elif process == "poisson":
        t = rng.expovariate(rate)
        while t < duration_s:
            times.append(t)
            t += rng.expovariate(rate)
    else:
        raise ValueError(f"unknown arrival process {process!r}")
    return times
