"""The authors' metric point cloud (run_point_cloud.py, moge2-reference.md section 6), no ROS.

    d       = PPD's output at the network resolution h x w (not upsampled)
    metric  = RANSAC fit log(1 + d_MoGe) = a d + b over MoGe-2's mask (the paper's alignment,
              sklearn-like, MAD threshold), metric = clip(exp(a d + b) - 1, 1e-3, max d_MoGe)
    K       = MoGe-2's intrinsics (or the camera's) at h x w
    points  = back-projection of the mask pixels, coloured with the PPD-resized RGB

Deliberate differences from run_point_cloud.py (stated in every PLY's comments):
  * pixel centres: run_point_cloud back-projects integer pixel indices with cx = 0.5 w, which
    is half a pixel off MoGe-2's own convention (pixel column j sits at (j + 0.5) / w, i.e. at
    index j with cx = 0.5 w - 0.5); here cx = 0.5 w - 0.5 (MoGe-2's, CameraInfo's and
    OpenCV's convention), so the cloud is not shifted by half a pixel (x by 0.5 Z / fx).
  * frame: the camera optical frame (x right, y down, z forward), as every ppd_ros cloud;
    run_point_cloud writes (x, -y, -z).
  * no statistical outlier removal (run_point_cloud applies Open3D's, nb_neighbors 20,
    std_ratio 3, unless --apply_filter); PPD's clouds have no flying pixels to remove.
  * the RANSAC is seeded (numpy's global RNG, seeded once, in the reference).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppd_ros.evaluation.alignment_eval import align_ransac_log


@dataclass(frozen=True)
class MetricCloud:
    points: np.ndarray       # (N, 3) float32 metres, optical frame
    colors: np.ndarray       # (N, 3) uint8 RGB
    metric_depth: np.ndarray  # (h, w) float32 metres, every pixel (the mask picks the points)
    mask: np.ndarray          # (h, w) bool: MoGe-2's mask
    K: np.ndarray             # (3, 3) pixels, integer pixel centres
    fit: tuple[float, float]  # (a, b)
    fallback: str             # '' unless the fit was not used (as in the reference)
    comments: tuple[str, ...]


def metric_cloud(network_depth: np.ndarray, geometry, rgb_network: np.ndarray,
                 seed: int = 0) -> MetricCloud:
    """The authors' cloud of one frame from PPD's network output and MoGe-2's geometry of the
    same h x w image (``MetricDepthPredictor.predict``'s ``network_depth`` and ``geometry``)."""
    height, width = network_depth.shape
    if geometry.depth.shape != (height, width) or rgb_network.shape[:2] != (height, width):
        raise ValueError('PPD output, MoGe-2 geometry and image must share the network size')
    mask = np.asarray(geometry.mask, dtype=bool)
    if not mask.any():
        raise ValueError('MoGe-2 found no valid pixel in this image (empty mask)')
    moge_depth = np.where(mask, geometry.depth, np.nan)
    alignment = align_ransac_log(network_depth, moge_depth, mask, seed=seed)
    metric = alignment.depth.astype(np.float32)
    K = geometry.camera_matrix(width, height)
    rows, cols = np.nonzero(mask)
    z = metric[rows, cols]
    points = np.stack([(cols - K[0, 2]) / K[0, 0] * z, (rows - K[1, 2]) / K[1, 1] * z, z],
                      axis=-1).astype(np.float32)
    source = ('MoGe-2 estimate' if geometry.intrinsics_estimated else 'the given camera')
    comments = (
        f'ppd_ros metric cloud (PPD depth fitted to MoGe-2 as run_point_cloud.py): '
        f'log(1 + Z) = {alignment.scale:.6g} * ppd_depth + {alignment.shift:.6g}',
        f'{width}x{height} network resolution, MoGe-2 mask only; intrinsics from {source}: '
        f'fx {K[0, 0]:.3f} fy {K[1, 1]:.3f} cx {K[0, 2]:.3f} cy {K[1, 2]:.3f}',
        'camera optical frame (x right, y down, z forward); pixel centres at integer indices '
        'with cx = 0.5 w - 0.5 (run_point_cloud.py: cx = 0.5 w, half a pixel off, and -y -z)',
    )
    return MetricCloud(points, rgb_network[rows, cols].astype(np.uint8), metric, mask, K,
                       (alignment.scale, alignment.shift), alignment.fallback, comments)
