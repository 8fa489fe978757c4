"""Pinhole camera intrinsics from sensor_msgs/CameraInfo fields, and their rescaling.

Pixel convention (as ROS image_geometry and OpenCV): integer pixel coordinates are pixel
centres, so an image W pixels wide spans the continuous range [-0.5, W - 0.5]. Resizing a
whole image by sx = out_w / in_w maps a column u to (u + 0.5) * sx - 0.5; the principal point
is rescaled the same way, while focal lengths and P's Tx / Ty simply scale by sx / sy.
This matches cv2.resize and INTER_NEAREST_EXACT sampling. (image_proc's resize uses
cx * sx instead, which is half a pixel off at the new scale.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


#: Sane focal lengths, as multiples of the image's longer side: 0.01 is a 178-degree field of
#: view, 1000 a 0.06-degree one. Beyond them a cloud's coordinates explode (fx = 1e-300 gives
#: points at infinity) or collapse.
FOCAL_RANGE = (0.01, 1000.0)
#: The principal point may lie at most this many image sizes outside the image (a shifted
#: crop of a lens keeps it near the image; 1e300 is a corrupt CameraInfo).
PRINCIPAL_POINT_MARGIN = 1.0


class CameraModelError(ValueError):
    """CameraInfo fields that do not describe a usable pinhole camera."""


def intrinsics_problem(fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                       source: str) -> str | None:
    """Why (fx, fy, cx, cy) of a width x height image are outside the sane ranges above."""
    side = max(width, height)
    low, high = FOCAL_RANGE[0] * side, FOCAL_RANGE[1] * side
    if not (low <= fx <= high and low <= fy <= high):
        return (f'{source} focal lengths fx={fx:.6g}, fy={fy:.6g} are outside '
                f'[{low:.6g}, {high:.6g}] ({FOCAL_RANGE[0]:g} to {FOCAL_RANGE[1]:g} times the '
                f'image side {side})')
    m = PRINCIPAL_POINT_MARGIN
    if not (-m * width <= cx <= (1 + m) * width and -m * height <= cy <= (1 + m) * height):
        return (f'{source} principal point ({cx:.6g}, {cy:.6g}) lies far outside the '
                f'{width}x{height} image')
    return None


def scale_k(k: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """3x3 camera matrix K for an image resized by (sx, sy)."""
    out = np.array(k, dtype=np.float64).reshape(3, 3)
    out[0, 0] *= sx
    out[0, 1] *= sx  # skew acts along x
    out[0, 2] = (out[0, 2] + 0.5) * sx - 0.5
    out[1, 1] *= sy
    out[1, 2] = (out[1, 2] + 0.5) * sy - 0.5
    return out


def scale_p(p: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """3x4 projection matrix P for an image resized by (sx, sy); Tx, Ty scale with fx, fy."""
    out = np.array(p, dtype=np.float64).reshape(3, 4)
    out[0, [0, 1, 3]] *= sx
    out[0, 2] = (out[0, 2] + 0.5) * sx - 0.5
    out[1, [1, 3]] *= sy
    out[1, 2] = (out[1, 2] + 0.5) * sy - 0.5
    return out


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """Intrinsics of one image size: K (3x3) and P (3x4) as in sensor_msgs/CameraInfo.

    Unprojection uses P's fx, fy, cx, cy, as depth_image_proc does (the image is taken to be
    rectified); when P is all zero (some drivers leave it empty) K is used instead.
    """
    width: int
    height: int
    k: np.ndarray
    p: np.ndarray

    @property
    def _projection(self) -> np.ndarray:
        return self.p[:, :3] if np.any(self.p) else self.k

    @property
    def fx(self) -> float:
        return float(self._projection[0, 0])

    @property
    def fy(self) -> float:
        return float(self._projection[1, 1])

    @property
    def cx(self) -> float:
        return float(self._projection[0, 2])

    @property
    def cy(self) -> float:
        return float(self._projection[1, 2])

    def scaled_to(self, width: int, height: int) -> PinholeCamera:
        """The same camera for the image resized to width x height (K and P both rescaled)."""
        if width == self.width and height == self.height:
            return self
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(width, height, scale_k(self.k, sx, sy), scale_p(self.p, sx, sy))

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """Pixel coordinates (u = column, v = row) of optical-frame points (..., 3)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        z = xyz[..., 2]
        return np.stack([self.fx * xyz[..., 0] / z + self.cx,
                         self.fy * xyz[..., 1] / z + self.cy], axis=-1)


def camera_from_info_fields(k, p, width: int, height: int) -> PinholeCamera:
    """Validated PinholeCamera from CameraInfo's k (9), p (12), width and height: finite
    values, positive focal lengths, and K's and (when not all zero) P's focal lengths and
    principal point within FOCAL_RANGE and PRINCIPAL_POINT_MARGIN."""
    k = np.asarray(k, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if k.size != 9 or p.size != 12:
        raise CameraModelError(f'CameraInfo needs 9 K and 12 P values, got {k.size} and {p.size}')
    if int(width) <= 0 or int(height) <= 0:
        raise CameraModelError(f'CameraInfo has no image size ({width}x{height})')
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(p))):
        raise CameraModelError('CameraInfo K or P contains NaN or infinite values')
    camera = PinholeCamera(int(width), int(height), k.reshape(3, 3).copy(), p.reshape(3, 4).copy())
    if camera.fx <= 0 or camera.fy <= 0:
        raise CameraModelError(
            f'CameraInfo focal lengths must be positive (fx={camera.fx:.6g}, fy={camera.fy:.6g})')
    sets = [(name, m) for name, m in (('K', camera.k), ('P', camera.p)) if np.any(m)]
    for name, m in sets:  # P makes the clouds, K is republished: both must be sane
        problem = intrinsics_problem(m[0, 0], m[1, 1], m[0, 2], m[1, 2], camera.width,
                                     camera.height, f'CameraInfo {name}')
        if problem:
            raise CameraModelError(problem)
    return camera


def camera_from_horizontal_fov(width: int, height: int, hfov_deg: float) -> PinholeCamera:
    """Square-pixel camera with the given horizontal field of view, principal point centred."""
    if not 0.0 < hfov_deg < 180.0:
        raise CameraModelError(f'horizontal FOV must be in (0, 180) degrees, got {hfov_deg}')
    if width <= 0 or height <= 0:
        raise CameraModelError(f'image has no pixels ({width}x{height})')
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    k = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    return PinholeCamera(int(width), int(height), k, np.hstack([k, np.zeros((3, 1))]))
