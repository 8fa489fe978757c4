"""Edge-aware point-cloud Chamfer distance (PPD paper sec. 4.4; no reference code was released).

Definition: take the GT depth-discontinuity band (edge_band.depth_edge_band: band_px pixels on
each side of every GT depth step of >= 5 %). Back-project the band pixels where both depths are
valid, once with the predicted metric depth (P) and once with the GT depth (G), through the
pinhole intrinsics (X = (u - cx)/fx * Z, Y = (v - cy)/fy * Z; u column, v row). Then
    chamfer = 0.5 * (mean_{p in P} min_{g in G} |p - g| + mean_{g in G} min_{p in P} |g - p|)
in metres. The prediction must already be metric (e.g. align_ransac_log(...).depth):
the metric measures where edge points land in 3-D, not the alignment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ppd_ros.evaluation._unproject import unproject_pixels
from ppd_ros.evaluation.edge_band import depth_edge_band, valid_depth
from ppd_ros.evaluation.nearest_neighbour import nearest_neighbour_distances


@dataclass(frozen=True)
class EdgeChamfer:
    chamfer_m: float        #: symmetric mean Chamfer distance; NaN when the band is empty
    pred_to_gt_m: float     #: mean over predicted band points of the distance to GT points
    gt_to_pred_m: float     #: mean over GT band points of the distance to predicted points
    n_points: int           #: band pixels used (same pixels on both sides)
    band: np.ndarray        #: bool (H, W), the pixels used


def chamfer_distance(points_a, points_b) -> float:
    """Symmetric mean Chamfer distance 0.5*(mean_a min_b |a-b| + mean_b min_a |b-a|)."""
    return 0.5 * (float(nearest_neighbour_distances(points_a, points_b).mean())
                  + float(nearest_neighbour_distances(points_b, points_a).mean()))


def edge_chamfer_distance(pred_depth: np.ndarray, gt_depth: np.ndarray,
                          intrinsics: Sequence[float], mask: np.ndarray | None = None,
                          band_px: int = 3) -> EdgeChamfer:
    """Chamfer distance between predicted and GT points in the GT edge band (see module doc).

    pred_depth, gt_depth: H x W metric depth (m); intrinsics: (fx, fy, cx, cy) in pixels.
    """
    pred_depth = np.asarray(pred_depth, dtype=np.float64)
    if pred_depth.shape != np.shape(gt_depth):
        raise ValueError(f'pred {pred_depth.shape} and gt {np.shape(gt_depth)} differ in shape')
    band = depth_edge_band(gt_depth, mask, band_px).band & valid_depth(pred_depth)
    rows, cols = np.nonzero(band)
    if len(rows) == 0:
        return EdgeChamfer(float('nan'), float('nan'), float('nan'), 0, band)
    pred_points = unproject_pixels(pred_depth, rows, cols, intrinsics)
    gt_points = unproject_pixels(gt_depth, rows, cols, intrinsics)
    pred_to_gt = float(nearest_neighbour_distances(pred_points, gt_points).mean())
    gt_to_pred = float(nearest_neighbour_distances(gt_points, pred_points).mean())
    return EdgeChamfer(0.5 * (pred_to_gt + gt_to_pred), pred_to_gt, gt_to_pred, len(rows), band)
