"""Latency percentiles and message rates of a live run."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def latency_stats(latencies_s: Iterable[float]) -> dict:
    """count, min, mean, p50, p95 (linear interpolation between samples) and max, in seconds;
    None when there is no sample."""
    values = np.asarray(list(latencies_s), dtype=np.float64)
    if values.size == 0:
        return {'count': 0, 'min_s': None, 'mean_s': None, 'p50_s': None, 'p95_s': None,
                'max_s': None}
    p50, p95 = np.percentile(values, [50, 95])
    return {'count': int(values.size), 'min_s': float(values.min()),
            'mean_s': float(values.mean()), 'p50_s': float(p50), 'p95_s': float(p95),
            'max_s': float(values.max())}


def rate_hz(times_ns: Iterable[int]) -> float | None:
    """Mean rate of events at ``times_ns``: (n - 1) / (last - first); None below 2 events."""
    times = sorted(times_ns)
    if len(times) < 2 or times[-1] == times[0]:
        return None
    return (len(times) - 1) / ((times[-1] - times[0]) * 1e-9)
