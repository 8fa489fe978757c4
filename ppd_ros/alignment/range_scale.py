"""'range' metric mode: a user-given near/far range instead of a metric reference.

PPD's output approximates (log(1 + d) - q2) / (q98 - q2), the training normalisation with
q2, q98 the 2nd/98th percentiles of log(1 + d) (reference sec. 1.7, 6.3). Stating that the
scene spans near_m .. far_m at those percentiles fixes the affine map:
    a * p2 + b = log(1 + near_m),  a * p98 + b = log(1 + far_m),
with p2, p98 the percentiles of the prediction itself. This is an approximation: it is only
as right as the guessed range, and the prediction's own percentiles stand in for q2, q98.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppd_ros.alignment.log_affine_apply import apply_log_affine
from ppd_ros.alignment.log_affine_fit import LogAffineFit, failed_fit

#: Fewer strided samples than this: the percentiles use every pixel.
MIN_SAMPLES = 256


@dataclass(frozen=True)
class RangeScale:
    near_m: float
    far_m: float
    low_percentile: float = 2.0
    high_percentile: float = 98.0
    stride: int = 4     #: percentiles over every stride-th pixel in each axis (speed)

    def __post_init__(self):
        if not 0.0 <= self.near_m < self.far_m:
            raise ValueError(f'need 0 <= near_m < far_m, got {self.near_m}, {self.far_m}')
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError('need 0 <= low_percentile < high_percentile <= 100')

    def fit(self, pred: np.ndarray) -> LogAffineFit:
        """The (a, b) mapping the prediction's percentiles onto log(1 + near/far).

        As a LogAffineFit (so it can feed TemporalScaleFilter); inlier_ratio 1 and residual 0
        since nothing is measured against a reference."""
        pred = np.asarray(pred)
        sampled = pred[::self.stride, ::self.stride]
        values = (sampled if sampled.size >= MIN_SAMPLES else pred).ravel()  # small images: all
        values = values[np.isfinite(values)]
        if len(values) < 2:
            return failed_fit(f'prediction has {len(values)} finite pixel(s), the range fit '
                              'needs 2 or more', len(values))
        low, high = np.percentile(values, [self.low_percentile, self.high_percentile])
        if high - low <= 1e-9:
            return failed_fit('prediction has no spread between its percentiles', len(values))
        a = (np.log1p(self.far_m) - np.log1p(self.near_m)) / (high - low)
        b = np.log1p(self.near_m) - a * low
        return LogAffineFit(float(a), float(b), 1.0, 0.0, len(values), True, '',
                            float(np.median(values)))

    def apply(self, pred: np.ndarray, min_range: float = 0.0,
              max_range: float = np.inf) -> np.ndarray:
        """Metric depth (float32, NaN outside [min_range, max_range])."""
        fit = self.fit(pred)
        if not fit.ok:
            raise ValueError(fit.reason)
        return apply_log_affine(pred, fit.a, fit.b, min_range, max_range)
