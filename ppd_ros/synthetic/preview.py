"""Preview images: colour and colourised depth side by side."""
from __future__ import annotations

import cv2
import numpy as np


def colorize_depth(depth_m: np.ndarray, vmin: float | None = None, vmax: float | None = None
                   ) -> np.ndarray:
    """H x W x 3 uint8 RGB (turbo colour map: near blue, far red); invalid is black.

    The range defaults to the frame's own valid min / max; values outside are clipped.
    """
    valid = np.isfinite(depth_m) & (depth_m > 0)
    if not valid.any():
        return np.zeros(depth_m.shape + (3,), dtype=np.uint8)
    lo = float(depth_m[valid].min()) if vmin is None else vmin
    hi = float(depth_m[valid].max()) if vmax is None else vmax
    scaled = (np.where(valid, depth_m, lo) - lo) / max(hi - lo, 1e-6)
    index = np.clip(scaled * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = cv2.applyColorMap(index, cv2.COLORMAP_TURBO)[:, :, ::-1]
    rgb[~valid] = 0
    return np.ascontiguousarray(rgb)


def side_by_side(rgb: np.ndarray, depth_m: np.ndarray, **colorize_kwargs) -> np.ndarray:
    """H x 2W x 3 uint8 RGB: the colour image, then its colourised depth."""
    return np.hstack([rgb, colorize_depth(depth_m, **colorize_kwargs)])


def write_png(path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise OSError(f'could not write {path}')
