"""Flicker: how much the depth error of one 3-D point changes between consecutive frames.

For consecutive frames a, b of a camera moving through a static scene, with exact depth
(GT) and camera poses (world_from_optical, 4 x 4):
  1. each pixel p of a with valid GT is back-projected with GT_a(p) and a's pose to a world
     point X;
  2. X is projected into b: pixel q = the pixel nearest to the projection, depth z_b(X);
  3. (p, q) is a correspondence when q lies in b, GT_b(q) is valid and
     |GT_b(q) - z_b(X)| <= depth_tolerance * z_b(X) (the same surface and not occluded: pixels
     that cross a depth edge, and points of moving objects, fail this), and both
     predictions are finite and > 0;
  4. the log error of a prediction is e(p) = log pred(p) - log GT(p), and
        flicker(a, b) = mean over correspondences of |e_b(q) - e_a(p)|.
A sequence's flicker is the mean of flicker(a, b) over its consecutive frame pairs.

The predictions are metric: a metric output as published, a relative one made metric per
frame by a least-squares fit log(1 + gt) ~ a pred + b (alignment_eval.align_log_least_squares;
a RANSAC fit would do, but its consensus set can switch between two similar frames and add a
jump that is not in the prediction). Flicker is a log ratio: 0.01 means the error of a
surface point changes by about 1 % per frame. A prediction that is wrong by the same factor
in every frame has zero flicker; noise that is independent per frame with relative spread s
has flicker about 2 s / sqrt(pi) ~ 1.13 s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative GT depth difference up to which a reprojected point counts as the same surface.
DEPTH_TOLERANCE = 0.03


@dataclass(frozen=True)
class FrameFlicker:
    flicker: float      #: mean |e_b(q) - e_a(p)| (log ratio); NaN without correspondences
    n_points: int       #: correspondences used


def correspondences(gt_a: np.ndarray, pose_a: np.ndarray, gt_b: np.ndarray,
                    pose_b: np.ndarray, intrinsics, depth_tolerance: float = DEPTH_TOLERANCE):
    """(index_a, index_b): flat pixel indices of the same static surface points in a and b.

    intrinsics (fx, fy, cx, cy) are those of both images (same size); poses map optical-frame
    points to the world."""
    gt_a = np.asarray(gt_a, dtype=np.float64)
    gt_b = np.asarray(gt_b, dtype=np.float64)
    if gt_a.shape != gt_b.shape:
        raise ValueError(f'frames differ in size: {gt_a.shape} and {gt_b.shape}')
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    height, width = gt_a.shape
    index_a = np.flatnonzero(np.isfinite(gt_a) & (gt_a > 0))
    rows, cols = np.divmod(index_a, width)
    z = gt_a.ravel()[index_a]
    points_a = np.stack([(cols - cx) / fx * z, (rows - cy) / fy * z, z])
    b_from_a = np.linalg.inv(pose_b) @ pose_a
    points_b = b_from_a[:3, :3] @ points_a + b_from_a[:3, 3:]
    z_b = points_b[2]
    in_front = z_b > 1e-6
    safe_z = np.where(in_front, z_b, 1.0)
    u = np.rint(fx * points_b[0] / safe_z + cx)
    v = np.rint(fy * points_b[1] / safe_z + cy)
    inside = in_front & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    index_a, z_b = index_a[inside], z_b[inside]
    index_b = (v[inside] * width + u[inside]).astype(np.int64)
    seen = gt_b.ravel()[index_b]
    with np.errstate(invalid='ignore'):
        same = np.abs(seen - z_b) <= depth_tolerance * z_b
    return index_a[same], index_b[same]


def _log_error(pred: np.ndarray, gt: np.ndarray, index: np.ndarray) -> np.ndarray:
    p = np.asarray(pred, dtype=np.float64).ravel()[index]
    g = np.asarray(gt, dtype=np.float64).ravel()[index]
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.log(p) - np.log(g)


def frame_flicker(pred_a: np.ndarray, gt_a: np.ndarray, pose_a: np.ndarray,
                  pred_b: np.ndarray, gt_b: np.ndarray, pose_b: np.ndarray, intrinsics,
                  depth_tolerance: float = DEPTH_TOLERANCE) -> FrameFlicker:
    """flicker(a, b) of metric predictions (module doc); predictions at GT size."""
    for pred, gt in ((pred_a, gt_a), (pred_b, gt_b)):
        if np.shape(pred) != np.shape(gt):
            raise ValueError(f'prediction {np.shape(pred)} and GT {np.shape(gt)} differ in '
                             'size; resize the prediction to GT size first')
    index_a, index_b = correspondences(gt_a, pose_a, gt_b, pose_b, intrinsics, depth_tolerance)
    change = _log_error(pred_b, gt_b, index_b) - _log_error(pred_a, gt_a, index_a)
    change = change[np.isfinite(change)]
    if change.size == 0:
        return FrameFlicker(float('nan'), 0)
    return FrameFlicker(float(np.mean(np.abs(change))), int(change.size))


def sequence_flicker(per_pair) -> float:
    """Mean of the finite per-pair flicker values (NaN when there are none)."""
    values = np.array([f.flicker if isinstance(f, FrameFlicker) else f for f in per_pair],
                      dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float('nan')
