"""Pinhole camera for the synthetic scenes: intrinsics, CameraInfo fields, pose and rays.

Frames (REP 103): the world is x forward, y left, z up (floor at z = 0); the camera's
optical frame is x right, y down, z forward. Pixel (u, v) = (column, row) with integer
coordinates at pixel centres, as in OpenCV and image_geometry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .small_products import transform

#: Rotation taking optical-frame vectors to the body frame of a level camera facing +x.
OPTICAL_TO_BODY = np.array([[0.0, 0.0, 1.0],
                            [-1.0, 0.0, 0.0],
                            [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class CameraIntrinsics:
    """Distortion-free pinhole intrinsics of a width x height image."""
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float = 70.0) -> CameraIntrinsics:
        """Square pixels, principal point at the image centre, given horizontal FOV."""
        if width <= 0 or height <= 0:
            raise ValueError(f'image size must be positive, got {width}x{height}')
        if not 0.0 < hfov_deg < 180.0:
            raise ValueError(f'hfov_deg must be in (0, 180), got {hfov_deg}')
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(int(width), int(height), f, f, (width - 1) / 2.0, (height - 1) / 2.0)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the conventional name)
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def camera_info(self) -> CameraInfoFields:
        return CameraInfoFields.from_intrinsics(self)


@dataclass(frozen=True, eq=False)
class CameraInfoFields:
    """The sensor_msgs/CameraInfo fields (flat float64 arrays, as in the message)."""
    width: int
    height: int
    k: np.ndarray
    p: np.ndarray
    d: np.ndarray = field(default_factory=lambda: np.zeros(5))
    r: np.ndarray = field(default_factory=lambda: np.eye(3).ravel())
    distortion_model: str = 'plumb_bob'

    @classmethod
    def from_intrinsics(cls, intr: CameraIntrinsics) -> CameraInfoFields:
        k = intr.K
        p = np.hstack([k, np.zeros((3, 1))])  # monocular: P = [K | 0]
        return cls(intr.width, intr.height, k.ravel(), p.ravel())

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        return np.asarray(self.k, dtype=np.float64).reshape(3, 3)

    @property
    def P(self) -> np.ndarray:  # noqa: N802
        return np.asarray(self.p, dtype=np.float64).reshape(3, 4)

    @property
    def R(self) -> np.ndarray:  # noqa: N802
        return np.asarray(self.r, dtype=np.float64).reshape(3, 3)

    def intrinsics(self) -> CameraIntrinsics:
        k = self.K
        return CameraIntrinsics(self.width, self.height, k[0, 0], k[1, 1], k[0, 2], k[1, 2])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraInfoFields):
            return NotImplemented
        return (self.width, self.height, self.distortion_model) == \
            (other.width, other.height, other.distortion_model) and all(
                np.array_equal(a, b) for a, b in
                ((self.k, other.k), (self.p, other.p), (self.d, other.d), (self.r, other.r)))


def body_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rz(yaw) Ry(pitch) Rx(roll) in a z-up body frame; positive pitch looks down."""
    cy_, sy_ = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rz = np.array([[cy_, -sy_, 0.0], [sy_, cy_, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


@dataclass(frozen=True, eq=False)
class CameraPose:
    """Camera centre in the world and the rotation taking optical-frame vectors to world."""
    position: np.ndarray
    world_from_optical: np.ndarray

    @classmethod
    def from_yaw_pitch_roll(cls, position, yaw: float = 0.0, pitch: float = 0.0,
                            roll: float = 0.0) -> CameraPose:
        """Angles in radians; zero angles face +x level, pitch > 0 tilts the view down."""
        rot = body_rotation(yaw, pitch, roll) @ OPTICAL_TO_BODY
        return cls(np.asarray(position, dtype=np.float64).reshape(3), rot)


@lru_cache(maxsize=16)
def _optical_rays(intr: CameraIntrinsics) -> np.ndarray:
    u, v = np.meshgrid(np.arange(intr.width, dtype=np.float64),
                       np.arange(intr.height, dtype=np.float64))
    rays = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones_like(u)])
    rays.setflags(write=False)
    return rays


def optical_rays(intr: CameraIntrinsics) -> np.ndarray:
    """(3, H, W) ray directions in the optical frame with z = 1 (read-only, cached).

    A hit at ray parameter t along such a ray lies at depth Z = t.
    """
    return _optical_rays(intr)


def world_rays(intr: CameraIntrinsics, pose: CameraPose) -> np.ndarray:
    """(3, H, W) world directions of the optical rays (optical z component still 1)."""
    rays = optical_rays(intr)
    return transform(pose.world_from_optical, rays.reshape(3, -1)).reshape(rays.shape)
