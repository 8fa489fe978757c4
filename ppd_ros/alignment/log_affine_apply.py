"""Metric depth from a PPD prediction and a log-affine fit: d = exp(a * pred + b) - 1."""
from __future__ import annotations

import numpy as np


def apply_log_affine(pred: np.ndarray, a: float, b: float, min_range: float = 0.0,
                     max_range: float = np.inf) -> np.ndarray:
    """float32 metric depth exp(a * pred + b) - 1, NaN outside [min_range, max_range] m.

    The range test is done on t = a * pred + b against log(1 + range), before the exp.
    NaN predictions stay NaN.
    """
    if not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(f'invalid log-affine parameters a={a}, b={b}')
    log_depth = np.multiply(pred, np.float32(a), dtype=np.float32)
    log_depth += np.float32(b)
    outside = log_depth < np.float32(np.log1p(max(min_range, 0.0)))
    if np.isfinite(max_range):
        outside |= log_depth > np.float32(np.log1p(max_range))
    np.exp(log_depth, out=log_depth)
    log_depth -= np.float32(1.0)
    np.copyto(log_depth, np.float32(np.nan), where=outside)
    return log_depth
