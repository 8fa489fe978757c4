"""Flying-pixel ratio of a predicted metric depth map in the GT edge band.

Definition: for each pixel i of the GT edge band (edge_band.depth_edge_band, band_px = k)
where the prediction is valid, back-project the predicted point P_i. Its neighbourhood is
the (2k+1) x (2k+1) window around i; the valid GT pixels there, back-projected, sample the
local GT surfaces: foreground (the nearer side of the discontinuity, down to the window's
minimum GT depth) and background (up to its maximum). P_i is a flying pixel when it lies
farther than tau_i = tau_rel * gt_i from BOTH surfaces, i.e. from every GT point of the
window (the nearest foreground and the nearest background point alike):
    flying_i  <=>  min_{j in window(i), gt valid} |P_i - G_j| > tau_rel * gt_i.
ratio = (#flying) / (#band pixels with a valid prediction).
tau is relative to the GT depth of the pixel (default 2 %, i.e. 2 cm at 1 m) so that the
metric means the same at every distance; 2 % is well above the GT sampling gap on surfaces up
to ~85 deg of slant (depth/f per pixel). Raise it to ignore mere depth noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ppd_ros.evaluation._unproject import unproject_pixels
from ppd_ros.evaluation.edge_band import depth_edge_band, valid_depth


@dataclass(frozen=True)
class FlyingPixels:
    ratio: float            #: flying / band pixels; NaN when the band is empty
    n_band: int             #: band pixels with a valid prediction
    flying: np.ndarray      #: bool (H, W)
    distance_m: np.ndarray  #: float (H, W), distance to the nearest window GT point; NaN off-band
    band: np.ndarray        #: bool (H, W), the pixels evaluated


def flying_pixel_ratio(pred_depth: np.ndarray, gt_depth: np.ndarray,
                       intrinsics: Sequence[float], mask: np.ndarray | None = None,
                       band_px: int = 3, tau_rel: float = 0.02) -> FlyingPixels:
    """Share of edge-band predicted points off both local GT surfaces (see module doc)."""
    pred_depth = np.asarray(pred_depth, dtype=np.float64)
    gt_depth = np.asarray(gt_depth, dtype=np.float64)
    if pred_depth.shape != gt_depth.shape:
        raise ValueError(f'pred {pred_depth.shape} and gt {gt_depth.shape} differ in shape')
    edge_band = depth_edge_band(gt_depth, mask, band_px)
    band = edge_band.band & valid_depth(pred_depth)
    height, width = gt_depth.shape
    distance = np.full((height, width), np.nan)
    rows, cols = np.nonzero(band)
    if len(rows) == 0:
        return FlyingPixels(float('nan'), 0, np.zeros_like(band), distance, band)

    all_rows, all_cols = np.nonzero(edge_band.valid)
    gt_points = np.full((height + 2 * band_px, width + 2 * band_px, 3), np.nan)
    gt_points[all_rows + band_px, all_cols + band_px] = unproject_pixels(
        gt_depth, all_rows, all_cols, intrinsics)
    pred_points = unproject_pixels(pred_depth, rows, cols, intrinsics)
    nearest = np.full(len(rows), np.inf)
    for dy in range(2 * band_px + 1):
        for dx in range(2 * band_px + 1):
            diff = gt_points[rows + dy, cols + dx] - pred_points
            nearest = np.fmin(nearest, np.sqrt(np.einsum('ij,ij->i', diff, diff)))
    flying_band = nearest > tau_rel * gt_depth[rows, cols]
    flying = np.zeros((height, width), dtype=bool)
    flying[rows, cols] = flying_band
    distance[rows, cols] = nearest
    return FlyingPixels(float(flying_band.mean()), len(rows), flying, distance, band)
