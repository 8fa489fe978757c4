"""Seeded entry points: one random view per seed, or a camera sequence through one scene."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .camera import CameraIntrinsics
from .renderer import DEFAULT_MAX_RANGE_M, SyntheticFrame, render
from .room_sampler import sample_room
from .trajectory import WobbleTrajectory

DEFAULT_HFOV_DEG = 70.0


def generate_frame(seed: int, width: int = 128, height: int = 96, *,
                   hfov_deg: float = DEFAULT_HFOV_DEG, max_range: float = DEFAULT_MAX_RANGE_M,
                   with_normals: bool = False) -> SyntheticFrame:
    """A random room seen from its base pose; equal seeds give identical frames."""
    intr = CameraIntrinsics.from_hfov(width, height, hfov_deg)
    room = sample_room(np.random.default_rng(seed), hfov_deg)
    return render(room.scene, intr, room.base_pose(), max_range=max_range,
                  with_normals=with_normals)


def generate_sequence(seed: int, n_frames: int, width: int = 128, height: int = 96, *,
                      hfov_deg: float = DEFAULT_HFOV_DEG, max_range: float = DEFAULT_MAX_RANGE_M,
                      with_normals: bool = False, period_frames: float = 120.0
                      ) -> Iterator[SyntheticFrame]:
    """``n_frames`` views of one room along a smooth trajectory (lazy).

    Frame 0 equals ``generate_frame(seed, ...)``; consecutive frames move a couple of
    centimetres and a fraction of a degree.
    """
    intr = CameraIntrinsics.from_hfov(width, height, hfov_deg)
    rng = np.random.default_rng(seed)
    room = sample_room(rng, hfov_deg)
    if n_frames < 0:
        raise ValueError(f'n_frames must be >= 0, got {n_frames}')
    trajectory = WobbleTrajectory(room.camera_position, room.yaw, room.pitch, room.roll, rng,
                                  period_frames)
    for k in range(n_frames):
        yield render(room.scene, intr, trajectory.pose(k), max_range=max_range,
                     with_normals=with_normals)
