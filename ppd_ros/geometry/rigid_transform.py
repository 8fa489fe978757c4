"""Rigid transforms as 4 x 4 matrices, and rotations as ROS quaternions (x, y, z, w)."""
from __future__ import annotations

import numpy as np


def quaternion_from_matrix(rotation) -> np.ndarray:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3 x 3 rotation matrix."""
    m = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    # the largest of 4w^2, 4x^2, 4y^2, 4z^2 gives the best-conditioned formula
    squares = np.array([1 + m[0, 0] + m[1, 1] + m[2, 2], 1 + m[0, 0] - m[1, 1] - m[2, 2],
                        1 - m[0, 0] + m[1, 1] - m[2, 2], 1 - m[0, 0] - m[1, 1] + m[2, 2]])
    largest = int(np.argmax(squares))
    s = 2.0 * np.sqrt(max(squares[largest], 1e-300))
    if largest == 0:
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif largest == 1:
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif largest == 2:
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q) / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quaternion(quaternion) -> np.ndarray:
    """3 x 3 rotation of a quaternion (x, y, z, w); it is normalised first."""
    x, y, z, w = np.asarray(quaternion, dtype=np.float64) / np.linalg.norm(quaternion)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def transform_matrix(rotation, translation) -> np.ndarray:
    """4 x 4 [R t; 0 1]."""
    out = np.eye(4)
    out[:3, :3] = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    out[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return out
