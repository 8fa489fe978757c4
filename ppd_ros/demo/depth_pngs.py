"""Per-frame depth pictures of the node's metric depth.

  <mm_dir>/frame_<index>.png      16-bit single-channel PNG in millimetres, 0 = no depth (the
                                  16UC1 convention of REP 118: OpenCV, Open3D and
                                  depth_image_proc read it as is)
  <colour_dir>/frame_<index>.png  colourised (Spectral: near red, far blue; no depth black),
                                  one fixed range for every frame, so a colour is one depth
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ppd_ros.geometry.colorize import colorize_depth

MAX_MM = 65535


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Metres (NaN / <= 0 invalid) -> uint16 millimetres, 0 where invalid, saturated at
    65.535 m."""
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(depth_m) & (depth_m > 0)
        mm = np.where(valid, np.rint(np.where(valid, depth_m, 0) * 1000.0), 0)
    return np.clip(mm, 0, MAX_MM).astype(np.uint16)


def frame_png_name(index: int) -> str:
    return f'frame_{index:06d}.png'


def write_depth_pngs(index: int, depth_m: np.ndarray, mm_dir: Path, colour_dir: Path,
                     depth_range_m: tuple[float, float]) -> tuple[Path, Path]:
    """Write both pictures of one frame; returns (millimetre PNG, colour PNG)."""
    mm_path, colour_path = mm_dir / frame_png_name(index), colour_dir / frame_png_name(index)
    if not cv2.imwrite(str(mm_path), depth_to_mm(depth_m)):
        raise OSError(f'cannot write {mm_path}')
    colour = colorize_depth(np.where(depth_m > 0, depth_m, np.nan), *depth_range_m, bgr=True)
    if not cv2.imwrite(str(colour_path), colour):
        raise OSError(f'cannot write {colour_path}')
    return mm_path, colour_path
