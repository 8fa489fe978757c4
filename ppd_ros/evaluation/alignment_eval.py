"""Alignment of a relative prediction to ground truth for evaluation (PPD reference sec. 6.4).

align_ransac_log reproduces `recover_metric_depth_ransac` (sklearn RANSACRegressor with
LinearRegression on one feature) in numpy, seeded instead of unseeded:
  - data: x = pred, y = log(gt + 1) over the evaluation mask (gt > 1e-3 & mask & finite);
  - residual threshold = MAD of y = median(|y - median(y)|) (sklearn default), inlier iff
    |a x + b - y| <= threshold;
  - hypotheses: least-squares lines through min_samples = 2 distinct random points; the best
    has the most inliers, ties going to the lower sum of squared inlier residuals; up to
    max_trials = 1000 hypotheses, stopping early like sklearn once
    trials >= log(1 - 0.99) / log(1 - inlier_ratio ** min_samples) (checked after each
    vectorised batch, so a few more hypotheses than sklearn may be drawn);
  - final model: least squares on the best inlier set;
  - failure (no usable hypothesis, < 2 points): a = 1, b = 0;
  - a > 0: p = a pred + b, else p = pred * mean(y) / mean(pred[mask]) (p = pred if that
    mean is 0);
  - depth = clip(exp(p) - 1, 1e-3, max(gt[mask])).
align_log_least_squares fits the same log(gt + 1) ~ a pred + b by plain least squares over
the mask (no consensus set that could switch between similar frames; used for flicker).
Note: the reference's sklearn pipeline may use min_samples = 3 (PolynomialFeatures adds a bias
column); 2 is the minimum for a line and is used here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Smallest GT depth that counts as valid (reference eval mask: gt > 1e-3).
MIN_GT_DEPTH = 1e-3
#: Hypothesis-by-pixel residuals evaluated at once (~32 MB of float64).
_RESIDUALS_PER_BATCH = 4_000_000


@dataclass(frozen=True)
class Alignment:
    depth: np.ndarray   #: aligned metric depth, same shape as pred
    scale: float        #: a (log space) or s (depth space)
    shift: float        #: b (log space) or t (depth space)
    method: str         #: 'ransac_log' or 'least_squares'
    fallback: str       #: '' when the fitted model was used, else why it was not


def evaluation_mask(gt: np.ndarray, mask: np.ndarray | None, pred: np.ndarray) -> np.ndarray:
    """gt > 1e-3 & mask & finite gt & finite pred."""
    gt = np.asarray(gt)
    valid = np.isfinite(gt) & (gt > MIN_GT_DEPTH) & np.isfinite(pred)
    return valid if mask is None else valid & np.asarray(mask, dtype=bool)


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != np.shape(gt):
        raise ValueError(f'pred {pred.shape} and gt {np.shape(gt)} differ in shape; resize the '
                         'prediction to GT size (nearest) first')


def _line_through_samples(x: np.ndarray, y: np.ndarray):
    """Least-squares (a, b) per row of (n, k) samples; ok=False where x has no spread."""
    x_mean = x.mean(axis=1, keepdims=True)
    y_mean = y.mean(axis=1, keepdims=True)
    sxx = ((x - x_mean) ** 2).sum(axis=1)
    ok = sxx > 0
    a = np.where(ok, ((x - x_mean) * (y - y_mean)).sum(axis=1) / np.where(ok, sxx, 1.0), 0.0)
    return a, y_mean[:, 0] - a * x_mean[:, 0], ok


def _required_trials(n_inliers: int, n_samples: int, min_samples: int,
                     probability: float) -> float:
    """sklearn's _dynamic_max_trials."""
    eps = np.spacing(1)
    nom = max(eps, 1.0 - probability)
    denom = max(eps, 1.0 - (n_inliers / n_samples) ** min_samples)
    if nom == 1.0:
        return 0.0
    if denom == 1.0:
        return float('inf')
    return abs(float(np.ceil(np.log(nom) / np.log(denom))))


def ransac_line(x: np.ndarray, y: np.ndarray, seed: int = 0, max_trials: int = 1000,
                min_samples: int = 2, stop_probability: float = 0.99):
    """RANSAC fit y ~ a x + b with sklearn's defaults (MAD threshold). None on failure."""
    n = len(x)
    if n < min_samples:
        return None
    rng = np.random.default_rng(seed)
    threshold = float(np.median(np.abs(y - np.median(y))))
    batch = int(np.clip(_RESIDUALS_PER_BATCH // n, 1, 256))
    best_count, best_sse, best_inliers = 0, np.inf, None
    trials, trial_limit = 0, float(max_trials)
    while trials < trial_limit:
        m = int(min(batch, trial_limit - trials))
        # min_samples distinct indices per hypothesis (argsort of random keys is too slow
        # for large n; redraw the rare duplicates instead).
        picks = rng.integers(0, n, size=(m, min_samples))
        for _ in range(100):
            dup = np.any(np.sort(picks, axis=1)[:, 1:] == np.sort(picks, axis=1)[:, :-1], axis=1)
            if not dup.any():
                break
            picks[dup] = rng.integers(0, n, size=(int(dup.sum()), min_samples))
        trials += m
        a, b, ok = _line_through_samples(x[picks], y[picks])
        if not ok.any():
            continue
        a, b = a[ok], b[ok]
        residuals = np.abs(a[:, None] * x[None, :] + b[:, None] - y[None, :])
        inliers = residuals <= threshold
        counts = inliers.sum(axis=1)
        sse = np.where(inliers, residuals ** 2, 0.0).sum(axis=1)
        order = np.lexsort((sse, -counts))[0]
        if counts[order] > best_count or (counts[order] == best_count and sse[order] < best_sse):
            best_count, best_sse, best_inliers = int(counts[order]), float(sse[order]), \
                inliers[order]
            trial_limit = min(float(max_trials),
                              _required_trials(best_count, n, min_samples, stop_probability))
    if best_inliers is None:
        return None
    a, b, ok = _line_through_samples(x[best_inliers][None], y[best_inliers][None])
    return (float(a[0]), float(b[0])) if ok[0] else None


def _alignment_inputs(pred, gt, mask):
    """pred and gt as float64 and the pixels to fit on; ValueError when there are none."""
    pred = np.asarray(pred, dtype=np.float64)
    _check_shapes(pred, gt)
    gt = np.asarray(gt, dtype=np.float64)
    valid = evaluation_mask(gt, mask, pred)
    if not valid.any():
        raise ValueError('no valid ground-truth pixels to align to')
    return pred, gt, valid


def align_ransac_log(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
                     seed: int = 0, max_trials: int = 1000) -> Alignment:
    """The paper's evaluation alignment: RANSAC fit of log(gt + 1) ~ a pred + b (module doc)."""
    pred, gt, valid = _alignment_inputs(pred, gt, mask)
    x, y = pred[valid], np.log1p(gt[valid])
    fit = ransac_line(x, y, seed=seed, max_trials=max_trials)
    fallback = ''
    a, b = fit if fit is not None else (1.0, 0.0)
    if fit is None:
        fallback = 'RANSAC found no consensus set; a = 1, b = 0'
    if a > 0:
        log_depth = a * pred + b
    elif x.mean() != 0:
        fallback = f'non-positive slope a = {a:.4g}; pred scaled by mean(log(gt+1))/mean(pred)'
        log_depth = pred * y.mean() / x.mean()
    else:
        fallback = f'non-positive slope a = {a:.4g} and mean(pred) = 0; pred used as log depth'
        log_depth = pred
    depth = np.clip(np.expm1(log_depth), MIN_GT_DEPTH, gt[valid].max())
    return Alignment(depth, float(a), float(b), 'ransac_log', fallback)


def align_least_squares(pred: np.ndarray, gt: np.ndarray,
                        mask: np.ndarray | None = None) -> Alignment:
    """Least-squares scale and shift in depth space: gt ~ s pred + t; depth >= 1e-3."""
    pred, gt, valid = _alignment_inputs(pred, gt, mask)
    s, t, ok = _line_through_samples(pred[valid][None], gt[valid][None])
    s, t = (float(s[0]), float(t[0])) if ok[0] else (1.0, 0.0)
    fallback = '' if ok[0] else 'prediction is constant over the mask; s = 1, t = 0'
    return Alignment(np.maximum(s * pred + t, MIN_GT_DEPTH), s, t, 'least_squares', fallback)


def align_log_least_squares(pred: np.ndarray, gt: np.ndarray,
                            mask: np.ndarray | None = None) -> Alignment:
    """Least squares log(gt + 1) ~ a pred + b; depth = clip(exp(a pred + b) - 1, 1e-3, max gt)."""
    pred, gt, valid = _alignment_inputs(pred, gt, mask)
    a, b, ok = _line_through_samples(pred[valid][None], np.log1p(gt[valid])[None])
    a, b = (float(a[0]), float(b[0])) if ok[0] else (1.0, 0.0)
    fallback = '' if ok[0] else 'prediction is constant over the mask; a = 1, b = 0'
    depth = np.clip(np.expm1(a * pred + b), MIN_GT_DEPTH, gt[valid].max())
    return Alignment(depth, a, b, 'least_squares_log', fallback)
