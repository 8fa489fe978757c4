"""Seeded entry points: one random view per seed, a camera sequence through one scene, or
sequences through several scenes one after another (scene cuts)."""
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


def generate_room_walks(seed: int, n_frames: int, frames_per_room: int, width: int = 128,
                        height: int = 96, *, hfov_deg: float = DEFAULT_HFOV_DEG,
                        max_range: float = DEFAULT_MAX_RANGE_M, period_frames: float = 120.0
                        ) -> Iterator[tuple[int, SyntheticFrame]]:
    """(room index r, frame) for ``n_frames`` frames: ``frames_per_room`` frames of
    ``generate_sequence(seed + r, ...)`` per room, then a cut to the next room (lazy)."""
    if frames_per_room < 1:
        raise ValueError(f'frames_per_room must be >= 1, got {frames_per_room}')
    for room, start in enumerate(range(0, max(n_frames, 0), frames_per_room)):
        count = min(frames_per_room, n_frames - start)
        for frame in generate_sequence(seed + room, count, width, height, hfov_deg=hfov_deg,
                                       max_range=max_range, period_frames=period_frames):
            yield room, frame
