"""How well a per-pixel uncertainty (e.g. the spread of K depth samples) ranks the error.

For the N pixels where both the error e (e.g. |pred - gt| / gt) and the uncertainty u are
finite:
  - spearman(u, e): Pearson correlation of their ranks (ties get their average rank);
  - sparsification curve: E_u(f) = mean error of the pixels left after removing the
    ceil(f N) pixels of largest u, at f = 0, 1/J, ..., (J - 1)/J (J = SPARSIFICATION_STEPS);
    the oracle curve E_e(f) removes the pixels of largest error instead (the best possible
    ranking), and a random ranking keeps E(0) in expectation;
  - AUSE (area under the sparsification error) = mean over f of E_u(f) - E_e(f): 0 for a
    perfect ranking; a random ranking scores mean over f of E(0) - E_e(f) (ause_random).
Lower AUSE is better; ause / ause_random < 1 means the uncertainty ranks better than chance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPARSIFICATION_STEPS = 50


@dataclass(frozen=True, eq=False)
class Sparsification:
    fractions: np.ndarray   #: removed share of pixels, 0 .. (J - 1) / J
    by_uncertainty: np.ndarray  #: E_u(f)
    oracle: np.ndarray      #: E_e(f)
    ause: float
    ause_random: float
    n_pixels: int


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0 .. n - 1 of a 1-D array, tied values sharing their mean rank."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind='stable')
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends - 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _finite_pairs(uncertainty, error):
    u = np.asarray(uncertainty, dtype=np.float64).ravel()
    e = np.asarray(error, dtype=np.float64).ravel()
    if u.shape != e.shape:
        raise ValueError(f'uncertainty and error differ in size: {np.shape(uncertainty)} and '
                         f'{np.shape(error)}')
    keep = np.isfinite(u) & np.isfinite(e)
    return u[keep], e[keep]


def spearman(uncertainty, error) -> float:
    """Spearman rank correlation over the pixels where both are finite (NaN if < 3)."""
    u, e = _finite_pairs(uncertainty, error)
    if u.size < 3:
        return float('nan')
    ru, re = average_ranks(u), average_ranks(e)
    ru -= ru.mean()
    re -= re.mean()
    denominator = np.sqrt((ru * ru).sum() * (re * re).sum())
    return float((ru * re).sum() / denominator) if denominator > 0 else float('nan')


def _remaining_means(error_sorted: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Mean of error_sorted[m:] for each m in removed (error_sorted: most removable first)."""
    tail_sums = np.r_[np.cumsum(error_sorted[::-1])[::-1], 0.0]
    return tail_sums[removed] / (len(error_sorted) - removed)


def sparsification(uncertainty, error, steps: int = SPARSIFICATION_STEPS) -> Sparsification:
    """Sparsification curves and AUSE (module doc); NaN values when no pixel is usable."""
    u, e = _finite_pairs(uncertainty, error)
    fractions = np.arange(steps) / steps
    if u.size == 0:
        nan = np.full(steps, np.nan)
        return Sparsification(fractions, nan, nan, float('nan'), float('nan'), 0)
    removed = np.minimum(np.ceil(fractions * u.size).astype(np.int64), u.size - 1)
    by_uncertainty = _remaining_means(e[np.argsort(-u, kind='stable')], removed)
    oracle = _remaining_means(np.sort(e)[::-1], removed)
    ause = float(np.mean(by_uncertainty - oracle))
    ause_random = float(np.mean(e.mean() - oracle))
    return Sparsification(fractions, by_uncertainty, oracle, ause, ause_random, int(u.size))


#: Per-frame confidence columns of ppd-eval (NaN without a confidence map).
CONFIDENCE_COLUMNS = ('confidence_spearman', 'confidence_ause', 'confidence_ause_random')


def relative_error(metres: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|metres - gt| / gt where GT is valid (> 1e-3, finite), NaN elsewhere."""
    gt = np.asarray(gt, dtype=np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        valid = np.isfinite(gt) & (gt > 1e-3)
        return np.where(valid, np.abs(np.asarray(metres, dtype=np.float64) - gt) / gt, np.nan)


def confidence_scores(spread: np.ndarray, metres: np.ndarray, gt: np.ndarray
                      ) -> tuple[dict[str, float], Sparsification]:
    """CONFIDENCE_COLUMNS values and the sparsification of one frame's spread, against the
    relative error of its aligned metric depth."""
    error = relative_error(metres, gt)
    curve = sparsification(spread, error)
    return ({'confidence_spearman': spearman(spread, error), 'confidence_ause': curve.ause,
             'confidence_ause_random': curve.ause_random}, curve)
