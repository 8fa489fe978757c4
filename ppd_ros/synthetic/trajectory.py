"""Smooth, bounded camera trajectories around a base pose, for image sequences and bags.

Each of x, y, z, yaw, pitch and roll follows offset(k) = A (sin(w k + phi) - sin(phi)), so
frame 0 is exactly the base pose, the motion per frame is at most A * w, and the camera
never drifts more than 2 A from where it started, however long the sequence.
"""
from __future__ import annotations

import math

import numpy as np

from .camera import CameraPose

#: Amplitudes of (x, y, z) in metres and of (yaw, pitch, roll) in degrees.
POSITION_AMPLITUDE_M = (0.25, 0.15, 0.05)
ANGLE_AMPLITUDE_DEG = (6.0, 3.0, 1.0)


class WobbleTrajectory:
    """Poses k = 0, 1, ... around a base position and yaw / pitch / roll (radians)."""

    def __init__(self, position, yaw: float, pitch: float, roll: float,
                 rng: np.random.Generator, period_frames: float = 120.0):
        if period_frames <= 0:
            raise ValueError(f'period_frames must be positive, got {period_frames}')
        self.base = np.concatenate([np.asarray(position, dtype=np.float64).reshape(3),
                                    [yaw, pitch, roll]])
        self.amplitude = np.concatenate([POSITION_AMPLITUDE_M,
                                         np.radians(ANGLE_AMPLITUDE_DEG)])
        # Slightly different frequencies per axis so the path does not retrace itself.
        self.omega = 2 * math.pi / period_frames * rng.uniform(0.7, 1.3, 6)
        self.phase = rng.uniform(0.0, 2 * math.pi, 6)

    def pose(self, k: int) -> CameraPose:
        state = self.base + self.amplitude * (np.sin(self.omega * k + self.phase)
                                              - np.sin(self.phase))
        return CameraPose.from_yaw_pitch_roll(state[:3], *state[3:])
