"""Depth-discontinuity edges of a ground-truth depth map and the evaluation band around them.

Definition (used by the edge Chamfer and flying-pixel metrics):

1. Valid pixels: mask & finite & depth > 0; g = log(depth).
2. Step strength between a pixel and its right neighbour: the log-depth jump across that gap
   minus the mean jump across the two neighbouring gaps,
       sx(u) = D(u) - (D(u-1) + D(u+1)) / 2,  D(u) = g(u+1) - g(u),
   and likewise sy along columns. On any plane, however slanted, consecutive jumps are nearly
   equal (exactly: the second difference of log depth is D^2, e.g. 1e-2 for a 10 %-per-pixel
   grazing slope), so sx ~ 0; a depth step of ratio r gives |sx| = |log r| and a plane-plane
   crease gives half the change of slope. Gaps touching an invalid pixel get 0.
3. cv2.Canny on (sx, sy) directly (its dx/dy overload, int16 = round(1000 * s), L2 magnitude;
   no 8-bit quantisation of the depth): non-maximum suppression and hysteresis with
   high = log(high_step_ratio), low = log(low_step_ratio); defaults 1.05 and 1.025: a depth
   jump >= 5 % beyond the local trend seeds an edge, hysteresis follows it down to 2.5 %.
4. Each Canny pixel marks the gap after it (to the right or below, whichever of |sx|, |sy| is
   larger), so both pixels of the gap are edge pixels and the band is symmetric.
5. band = edge pixels dilated by a (2k+1) x (2k+1) square (k = band_px) and restricted to
   valid pixels: every valid pixel within Chebyshev distance k of a discontinuity, k pixels on
   each side of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: int16 fixed-point scale of the step strengths handed to cv2.Canny.
_STRENGTH_SCALE = 1000.0


@dataclass(frozen=True)
class EdgeBand:
    edges: np.ndarray   #: bool (H, W), pixels on either side of a GT depth discontinuity
    band: np.ndarray    #: bool (H, W), valid pixels within band_px of an edge pixel
    valid: np.ndarray   #: bool (H, W), valid GT pixels


def valid_depth(depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """mask & finite & > 0."""
    depth = np.asarray(depth)
    valid = np.isfinite(depth) & (depth > 0)
    return valid if mask is None else valid & np.asarray(mask, dtype=bool)


def _step_strength(log_depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """sx(u) = D(u) - (D(u-1) + D(u+1))/2 along axis 1, 0 where a used pixel is invalid."""
    g = np.pad(log_depth, ((0, 0), (1, 2)), mode='edge')
    ok = np.pad(valid, ((0, 0), (1, 2)), mode='edge')
    jump = np.diff(g, axis=1)                     # jump[:, i] = D(i - 1)
    strength = jump[:, 1:-1] - 0.5 * (jump[:, :-2] + jump[:, 2:])
    usable = ok[:, :-3] & ok[:, 1:-2] & ok[:, 2:-1] & ok[:, 3:]
    return np.where(usable, strength, 0.0)


def depth_edge_band(gt_depth: np.ndarray, mask: np.ndarray | None = None, band_px: int = 3,
                    low_step_ratio: float = 1.025, high_step_ratio: float = 1.05) -> EdgeBand:
    """Depth-discontinuity edges of the GT depth and the band of k = band_px px around them."""
    gt_depth = np.asarray(gt_depth, dtype=np.float64)
    if gt_depth.ndim != 2:
        raise ValueError(f'gt_depth must be H x W, got shape {gt_depth.shape}')
    if not 1.0 < low_step_ratio <= high_step_ratio:
        raise ValueError('need 1 < low_step_ratio <= high_step_ratio')
    if band_px < 0:
        raise ValueError('band_px must be >= 0')
    valid = valid_depth(gt_depth, mask)
    log_depth = np.log(np.where(valid, gt_depth, 1.0))
    sx = _step_strength(log_depth, valid)
    sy = _step_strength(log_depth.T, valid.T).T
    fixed = [np.clip(np.rint(s * _STRENGTH_SCALE), -32767, 32767).astype(np.int16)
             for s in (sx, sy)]
    canny = cv2.Canny(fixed[0], fixed[1], _STRENGTH_SCALE * np.log(low_step_ratio),
                      _STRENGTH_SCALE * np.log(high_step_ratio), L2gradient=True) > 0
    across_columns = np.abs(sx) >= np.abs(sy)
    edges = canny.copy()
    edges[:, 1:] |= (canny & across_columns)[:, :-1]
    edges[1:, :] |= (canny & ~across_columns)[:-1, :]
    edges &= valid
    kernel = np.ones((2 * band_px + 1, 2 * band_px + 1), np.uint8)
    band = cv2.dilate(edges.astype(np.uint8), kernel).astype(bool) & valid
    return EdgeBand(edges=edges, band=band, valid=valid)
