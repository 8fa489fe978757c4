"""Depth metrics of the PPD evaluation (reference sec. 6.4) and the evaluation entry point.

depth_metrics keys (all over the evaluation mask gt > 1e-3 & mask & finite):
    abs_rel   mean(|gt - p| / (gt + 1e-5))
    d05, d1, d2, d3
              delta_k = mean(max(gt / (p + 1e-5), p / (gt + 1e-5)) < 1.25 ** k),
              k = 0.5, 1, 2, 3
    n_pixels  number of pixels evaluated
The edge-aware metrics live in edge_chamfer and flying_pixels; they are re-exported here.
"""
from __future__ import annotations

import numpy as np

from ppd_ros.evaluation.alignment_eval import (Alignment, align_least_squares,
                                               align_ransac_log, evaluation_mask)
from ppd_ros.evaluation.edge_chamfer import (EdgeChamfer, chamfer_distance,
                                             edge_chamfer_distance)
from ppd_ros.evaluation.flying_pixels import FlyingPixels, flying_pixel_ratio

__all__ = ['Alignment', 'EdgeChamfer', 'FlyingPixels', 'align_least_squares', 'align_ransac_log',
           'chamfer_distance', 'depth_metrics', 'edge_chamfer_distance',
           'evaluate_relative_prediction', 'evaluation_mask', 'flying_pixel_ratio']

#: delta_k exponents and their metric keys.
DELTA_KEYS = {'d05': 0.5, 'd1': 1.0, 'd2': 2.0, 'd3': 3.0}
METRIC_KEYS = ('abs_rel',) + tuple(DELTA_KEYS) + ('n_pixels',)


def depth_metrics(pred_depth: np.ndarray, gt: np.ndarray,
                  mask: np.ndarray | None = None) -> dict:
    """AbsRel and delta accuracies of a metric depth map (keys in the module doc)."""
    pred_depth = np.asarray(pred_depth, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred_depth.shape != gt.shape:
        raise ValueError(f'pred {pred_depth.shape} and gt {gt.shape} differ in shape')
    valid = evaluation_mask(gt, mask, pred_depth)
    p, g = pred_depth[valid], gt[valid]
    if len(g) == 0:
        return {**{key: float('nan') for key in METRIC_KEYS[:-1]}, 'n_pixels': 0}
    ratio = np.maximum(g / (p + 1e-5), p / (g + 1e-5))
    metrics = {'abs_rel': float(np.mean(np.abs(g - p) / (g + 1e-5)))}
    metrics.update({key: float(np.mean(ratio < 1.25 ** k)) for key, k in DELTA_KEYS.items()})
    metrics['n_pixels'] = int(len(g))
    return metrics


def evaluate_relative_prediction(pred_relative: np.ndarray, gt: np.ndarray,
                                 mask: np.ndarray | None = None, seed: int = 0) -> dict:
    """Metrics after the paper's RANSAC log alignment and after LSQ scale+shift.

    Returns one flat dict: 'ransac_log_<key>' and 'lsq_<key>' for every depth_metrics key.
    """
    ransac = align_ransac_log(pred_relative, gt, mask, seed=seed)
    lsq = align_least_squares(pred_relative, gt, mask)
    result = {f'ransac_log_{k}': v for k, v in depth_metrics(ransac.depth, gt, mask).items()}
    result.update({f'lsq_{k}': v for k, v in depth_metrics(lsq.depth, gt, mask).items()})
    return result
