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

import cv2
import numpy as np

from ppd_ros.geometry.camera_model import PinholeCamera
from ppd_ros.geometry.pointcloud_layout import CloudBuffer, CloudBufferPool, PackedCloud, block_rows


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


def _check_depth(depth: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'depth must be H x W, got shape {depth.shape}')
    if depth.shape != (camera.height, camera.width):
        raise ValueError(f'depth is {depth.shape[1]}x{depth.shape[0]} but the camera is '
                         f'{camera.width}x{camera.height}')
    return depth


def _valid_into(depth: np.ndarray, z: np.ndarray) -> None:
    """z[...] = depth as float32, NaN wherever it is NaN, infinite or <= 0."""
    np.copyto(z, depth, casting='unsafe')  # the same rounding as astype(np.float32)
    # NaN-propagating min / max: one cheap pass tells whether anything must be replaced
    if np.minimum.reduce(z, axis=None) > 0 and np.maximum.reduce(z, axis=None) < np.inf:
        return
    invalid = ~(z > 0)  # also catches NaN
    invalid |= z == np.inf
    np.copyto(z, np.float32(np.nan), where=invalid)


def _point_blocks(depth: np.ndarray, camera: PinholeCamera, stride: int):
    """Yield (start, stop, x, y, z): float32 X, Y, Z of rows start..stop of the decimated grid.

    Blocks of rows keep every temporary small (in cache, never fresh pages from the OS) and
    are written out while still in cache. x, y and z are scratch arrays reused by the next
    block: use them before asking for it.
    """
    rays = ray_table(camera, stride)
    h, w = decimated_shape(camera.height, camera.width, stride)
    rows = block_rows(w)
    scratch = np.empty((3, min(rows, h), w), dtype=np.float32)
    x_over_z = rays.x_over_z[np.newaxis, :]
    for start in range(0, h, rows):
        stop = min(h, start + rows)
        x, y, z = scratch[:, :stop - start]
        _valid_into(depth[start * stride:stop * stride:stride, ::stride], z)
        np.multiply(z, x_over_z, out=x)
        np.multiply(z, rays.y_over_z[start:stop, np.newaxis], out=y)
        yield start, stop, x, y, z


def point_words(out: np.ndarray) -> np.ndarray | None:
    """(h, w, point_step / 4) float32 view of every 4-byte word of the points that an
    (h, w, 3) x/y/z view `out` lies in (e.g. CloudBuffer.xyz), or None if `out` is not such
    a view of one writable buffer. OpenCV can then copy into the x, y, z words in one pass.
    """
    if (out.dtype != np.float32 or out.ndim != 3 or out.shape[2] != 3 or out.size == 0
            or not out.flags.writeable):
        return None
    h, w = out.shape[:2]
    row, step, item = out.strides
    if item != 4 or step < 12 or step % 4 or row != step * w:
        return None
    if out.__array_interface__['data'][0] % 4:
        return None
    root = out
    while isinstance(root.base, np.ndarray):
        root = root.base
    words = np.lib.stride_tricks.as_strided(out, shape=(h, w, step // 4), strides=(row, step, 4))
    lo, hi = np.lib.array_utils.byte_bounds(words)
    root_lo, root_hi = np.lib.array_utils.byte_bounds(root)
    if lo < root_lo or hi > root_hi:
        return None
    return words


def unproject(depth: np.ndarray, camera: PinholeCamera, stride: int = 1,
              out: np.ndarray | None = None) -> np.ndarray:
    """Organized ceil(H/s) x ceil(W/s) x 3 float32 XYZ of a metric depth image.

    `out` may be any writable float32 (h, w, 3) array, including a strided view into a
    PointCloud2 buffer, so the points are written in place without another copy.
    """
    depth = _check_depth(depth, camera)
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    shape = decimated_shape(camera.height, camera.width, stride) + (3,)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape:
        raise ValueError(f'out has shape {out.shape}, expected {shape}')
    blocks = _point_blocks(depth, camera, int(stride))
    if out.dtype == np.float32 and out.strides == (12 * shape[1], 12, 4):
        for start, stop, x, y, z in blocks:  # interleave with OpenCV, in place
            rows = out[start:stop]
            if cv2.merge([x, y, z], dst=rows) is not rows:  # never expected
                rows[...] = np.stack([x, y, z], axis=-1)
        return out
    words = point_words(out)
    if words is not None:
        for start, stop, x, y, z in blocks:
            cv2.mixChannels([x, y, z], [words[start:stop]], [0, 0, 1, 1, 2, 2])
        return out
    for start, stop, x, y, z in blocks:
        out[start:stop, :, 0] = x
        out[start:stop, :, 1] = y
        out[start:stop, :, 2] = z
    return out


def unproject_to_cloud(depth: np.ndarray, camera: PinholeCamera, stride: int = 1,
                       rgb: np.ndarray | None = None, pool: CloudBufferPool | None = None
                       ) -> PackedCloud:
    """Organized depth_image_proc PointCloud2 payload of a metric depth image, in one pass.

    `rgb` (optional) is H x W x 3 uint8 at the depth image's size; it is sampled with the
    same stride. Same bytes as CloudBuffer + unproject(out=buf.xyz) + buf.set_rgb, faster:
    every point is written once, x, y, z and rgb together. With `pool` the payload is a
    recycled buffer when one is free (see CloudBufferPool), else a new one.
    """
    depth = _check_depth(depth, camera)
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    stride = int(stride)
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape[:2] != depth.shape:
            raise ValueError(f'rgb is {rgb.shape[1]}x{rgb.shape[0]} but the camera is '
                             f'{camera.width}x{camera.height}')
    shape = decimated_shape(camera.height, camera.width, stride)
    if pool is None:
        buf = CloudBuffer(*shape, with_rgb=rgb is not None)
    else:
        buf = pool.acquire(*shape, with_rgb=rgb is not None)
    for start, stop, x, y, z in _point_blocks(depth, camera, stride):
        colours = None if rgb is None else rgb[start * stride:stop * stride:stride, ::stride]
        buf.write_rows(start, x, y, z, colours)
    return buf.packed()
