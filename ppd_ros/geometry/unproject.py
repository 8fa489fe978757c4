"""Depth image -> organized XYZ points in the camera optical frame.

REP 103 optical frame: x right, y down, z forward. For pixel column u and row v with depth Z,
X = (u - cx) * Z / fx and Y = (v - cy) * Z / fy (the depth_image_proc convention). Depth that
is NaN, infinite or <= 0 gives a NaN point.

Decimation samples the pixel grid: with stride s the cloud keeps rows and columns
0, s, 2s, ... (ceil(H/s) x ceil(W/s) points), each unprojected with its true pixel
coordinates and the full-resolution intrinsics, so no intrinsics adjustment is needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ppd_ros.geometry.camera_model import PinholeCamera


@dataclass(frozen=True, eq=False)
class RayTable:
    """Per-column X/Z and per-row Y/Z ratios of a (decimated) pixel grid."""
    x_over_z: np.ndarray  # (ceil(W/s),) float32
    y_over_z: np.ndarray  # (ceil(H/s),) float32


@lru_cache(maxsize=16)
def _cached_ray_table(fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                      stride: int) -> RayTable:
    u = np.arange(0, width, stride, dtype=np.float64)
    v = np.arange(0, height, stride, dtype=np.float64)
    x = ((u - cx) / fx).astype(np.float32)
    y = ((v - cy) / fy).astype(np.float32)
    x.setflags(write=False)
    y.setflags(write=False)
    return RayTable(x, y)


def ray_table(camera: PinholeCamera, stride: int = 1) -> RayTable:
    """Ray ratios for camera's image size and stride, computed once per (size, K, stride)."""
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    return _cached_ray_table(camera.fx, camera.fy, camera.cx, camera.cy, camera.width,
                             camera.height, int(stride))


def decimated_shape(height: int, width: int, stride: int) -> tuple[int, int]:
    """Organized cloud size for an image sampled every `stride` pixels."""
    return -(-height // stride), -(-width // stride)


def unproject(depth: np.ndarray, camera: PinholeCamera, stride: int = 1,
              out: np.ndarray | None = None) -> np.ndarray:
    """Organized ceil(H/s) x ceil(W/s) x 3 float32 XYZ of a metric depth image.

    `out` may be any writable float32 (h, w, 3) array, including a strided view into a
    PointCloud2 buffer, so the points are written in place without another copy.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'depth must be H x W, got shape {depth.shape}')
    if depth.shape != (camera.height, camera.width):
        raise ValueError(f'depth is {depth.shape[1]}x{depth.shape[0]} but the camera is '
                         f'{camera.width}x{camera.height}')
    rays = ray_table(camera, stride)
    z = depth[::stride, ::stride].astype(np.float32)  # always a fresh array
    z[~(z > 0) | ~np.isfinite(z)] = np.nan  # ~(z > 0) also catches NaN
    if out is None:
        out = np.empty(z.shape + (3,), dtype=np.float32)
    elif out.shape != z.shape + (3,):
        raise ValueError(f'out has shape {out.shape}, expected {z.shape + (3,)}')
    np.multiply(z, rays.x_over_z[np.newaxis, :], out=out[..., 0])
    np.multiply(z, rays.y_over_z[:, np.newaxis], out=out[..., 1])
    out[..., 2] = z
    return out
