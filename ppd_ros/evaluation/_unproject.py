"""Pinhole back-projection of selected pixels (private stand-in until ppd_ros.geometry has
`unproject_depth`): Z = depth, X = (u - cx)/fx * Z, Y = (v - cy)/fy * Z, with u the column and
v the row index (no +0.5), as in the PPD reference depth2pcd."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def unproject_pixels(depth: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                     intrinsics: Sequence[float]) -> np.ndarray:
    """(N, 3) float64 camera-frame points of the pixels (rows[i], cols[i])."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    z = np.asarray(depth, dtype=np.float64)[rows, cols]
    return np.stack([(cols - cx) / fx * z, (rows - cy) / fy * z, z], axis=1)
