"""Robust fit of log(1 + d_ref) ~ a * pred + b, the metric scale of a PPD prediction.

PPD predicts approximately a normalised log(1 + depth) (reference sec. 1.7), so one affine
map in log(1 + d) makes it metric. Fit (method='ransac', default):
  1. RANSAC over n_hypotheses lines through random point pairs (slope must be > 0: larger
     prediction = farther), scored in one vectorised pass on score_points of the samples
     with the truncated squared loss sum(min(r^2, T^2)) (MSAC), T = inlier_threshold;
  2. IRLS with Huber weights (delta = 1.345 sigma, sigma = 1.4826 MAD of residuals) on the
     inliers (|r| <= T) of the best hypothesis;
  3. inliers re-counted with the refined line: inlier_ratio = share of |r| <= T, residual =
     RMS of the inlier residuals (log(1 + m) units).
method='huber' skips RANSAC and runs IRLS-Huber on all points from the least-squares line
(fine for mild contamination; RANSAC is the robust default).
The fit is rejected (ok=False, reason set) with too few points, no prediction spread, a
slope <= 0 or an inlier ratio below min_inlier_ratio.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppd_ros.alignment.reference_sampling import sample_reference_pairs

#: Huber tuning constant (95 % efficiency under Gaussian noise) and MAD-to-sigma factor.
_HUBER_K = 1.345
_MAD_TO_SIGMA = 1.4826
#: Residual scale floor (log units) so IRLS stays defined on noise-free data.
_MIN_SIGMA = 1e-6


@dataclass(frozen=True)
class LogAffineFit:
    a: float                #: log(1 + d) = a * pred + b
    b: float
    inlier_ratio: float     #: share of fitted points with |residual| <= inlier_threshold
    residual: float         #: RMS of inlier residuals, log(1 + m) units
    n_points: int           #: reference points used
    ok: bool
    reason: str = ''        #: why ok is False ('' when ok)
    pred_median: float = float('nan')  #: median prediction over the points (for filtering)

    def depth_at(self, pred_value: float) -> float:
        """Metric depth the fit assigns to one prediction value."""
        return float(np.expm1(self.a * pred_value + self.b))


def failed_fit(reason: str, n_points: int = 0) -> LogAffineFit:
    return LogAffineFit(float('nan'), float('nan'), 0.0, float('nan'), n_points, False, reason)


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray):
    w_sum = w.sum()
    x_mean = (w * x).sum() / w_sum
    y_mean = (w * y).sum() / w_sum
    dx = x - x_mean
    a = (w * dx * (y - y_mean)).sum() / (w * dx * dx).sum()
    return float(a), float(y_mean - a * x_mean)


def _huber_irls(x: np.ndarray, y: np.ndarray, a: float, b: float, iterations: int):
    for _ in range(iterations):
        residual = np.abs(y - (a * x + b))
        sigma = max(_MAD_TO_SIGMA * float(np.median(residual)), _MIN_SIGMA)
        weight = np.minimum(1.0, _HUBER_K * sigma / np.maximum(residual, 1e-300))
        a, b = _weighted_line(x, y, weight)
    return a, b


def _ransac_hypothesis(x, y, rng, n_hypotheses, score_points, threshold):
    n = len(x)
    i = rng.integers(0, n, size=n_hypotheses)
    j = rng.integers(0, n, size=n_hypotheses)
    dx = x[j] - x[i]
    usable = np.abs(dx) > 1e-9
    slope = np.where(usable, (y[j] - y[i]) / np.where(usable, dx, 1.0), 0.0)
    usable &= slope > 0
    if not usable.any():
        return None
    slope, intercept = slope[usable], (y[i] - slope * x[i])[usable]
    scored = rng.permutation(n)[:score_points] if n > score_points else slice(None)
    residual = slope[:, None] * x[scored][None, :] + intercept[:, None] - y[scored][None, :]
    cost = np.minimum(residual * residual, threshold * threshold).sum(axis=1)
    best = int(np.argmin(cost))
    return float(slope[best]), float(intercept[best])


def fit_log_affine_samples(pred_values, ref_depths_m, *, seed: int = 0,
                           method: str = 'ransac', n_hypotheses: int = 256,
                           score_points: int = 1024, inlier_threshold: float = 0.05,
                           huber_iterations: int = 5, min_points: int = 20,
                           min_inlier_ratio: float = 0.3) -> LogAffineFit:
    """Robust log-affine fit on paired samples (prediction value, reference depth in m)."""
    if method not in ('ransac', 'huber'):
        raise ValueError(f"method must be 'ransac' or 'huber', got {method!r}")
    x = np.asarray(pred_values, dtype=np.float64).ravel()
    d = np.asarray(ref_depths_m, dtype=np.float64).ravel()
    keep = np.isfinite(x) & np.isfinite(d) & (d > 0)
    x, y = x[keep], np.log1p(d[keep])
    n = len(x)
    if n < max(min_points, 2):
        return failed_fit(f'too few reference points ({n} < {max(min_points, 2)})', n)
    if float(np.ptp(x)) <= 1e-9:
        return failed_fit('prediction has no spread over the reference points', n)

    if method == 'ransac':
        hypothesis = _ransac_hypothesis(x, y, np.random.default_rng(seed), n_hypotheses,
                                        score_points, inlier_threshold)
        if hypothesis is None:
            return failed_fit('no RANSAC hypothesis with a positive slope', n)
        a, b = hypothesis
        inliers = np.abs(y - (a * x + b)) <= inlier_threshold
        if inliers.sum() >= 2 and np.ptp(x[inliers]) > 1e-9:
            a, b = _huber_irls(x[inliers], y[inliers], a, b, huber_iterations)
    else:
        a, b = _huber_irls(x, y, *_weighted_line(x, y, np.ones_like(x)), 4 * huber_iterations)

    residual = y - (a * x + b)
    inliers = np.abs(residual) <= inlier_threshold
    inlier_ratio = float(inliers.mean())
    rms = float(np.sqrt(np.mean(residual[inliers] ** 2))) if inliers.any() else float('nan')
    reason = ''
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:
        reason = f'non-positive or invalid slope a = {a:.4g}'
    elif inlier_ratio < min_inlier_ratio:
        reason = f'inlier ratio {inlier_ratio:.2f} < {min_inlier_ratio:.2f}'
    return LogAffineFit(a, b, inlier_ratio, rms, n, not reason, reason, float(np.median(x)))


def fit_log_affine(pred: np.ndarray, ref_depth_m: np.ndarray, valid: np.ndarray | None = None,
                   *, seed: int = 0, method: str = 'ransac', max_points: int = 4096,
                   min_ref_m: float = 0.0, max_ref_m: float = np.inf, **options) -> LogAffineFit:
    """Fit log(1 + ref) ~ a * pred + b over valid reference pixels (module doc).

    pred: H x W relative prediction. ref_depth_m: metric reference registered to the colour
    image, any resolution (dense or sparse: invalid = NaN, <= 0, or False in `valid`).
    Uses at most max_points random reference pixels (fixed by seed). Extra keyword options go
    to fit_log_affine_samples.
    """
    pred_values, ref_values = sample_reference_pairs(pred, ref_depth_m, valid, max_points,
                                                     seed, min_ref_m, max_ref_m)
    return fit_log_affine_samples(pred_values, ref_values, seed=seed, method=method, **options)
