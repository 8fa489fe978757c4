"""The demo's comparison picture: labelled panels (RGB, depths) in rows, one colour bar.

Each panel has a title (and optional more lines, e.g. its scores) above it; the depth panels
share one colour range, shown by a colour bar at the bottom (Spectral: near red, far blue;
black: no depth). Small frames are enlarged (nearest) to be readable.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ppd_ros.geometry.colorize import colorize_depth

MIN_PANEL_WIDTH = 320
GAP_PX = 6
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True, eq=False)
class Panel:
    title: str
    image: np.ndarray            #: H x W x 3 uint8 RGB, or H x W metres (NaN: no depth)
    note: str = ''               #: more lines under the title ('\n' separated)


def _rgb_of(panel: Panel, depth_range_m: tuple[float, float]) -> np.ndarray:
    if panel.image.ndim == 3:
        return panel.image
    depth = np.where(panel.image > 0, panel.image, np.nan)
    return colorize_depth(depth, *depth_range_m)


def _text_block(lines: Sequence[str], width: int, scale: float) -> np.ndarray:
    line_px = int(round(26 * scale / 0.5))
    block = np.full((line_px * len(lines) + 6, width, 3), BACKGROUND, dtype=np.uint8)
    for k, line in enumerate(lines):
        cv2.putText(block, line, (4, line_px * (k + 1) - 6), FONT, scale, TEXT, 1, cv2.LINE_AA)
    return block


def _colour_bar(width: int, depth_range_m: tuple[float, float], scale: float) -> np.ndarray:
    lo, hi = depth_range_m
    bar = colorize_depth(np.tile(np.linspace(lo, hi, width), (14, 1)), lo, hi)
    label = _text_block([f'{lo:.2f} m (near)  ...  depth  ...  {hi:.2f} m (far);  '
                         'black: no depth'], width, scale)
    return np.vstack([bar, label])


def write_comparison_picture(path: Path, panels: Sequence[Panel],
                             depth_range_m: tuple[float, float], per_row: int | None = None,
                             title: str = '') -> Path:
    """Write the picture (PNG): the panels in rows of ``per_row`` (all in one row by
    default) under an optional title line; every panel image has the same height and
    width."""
    height, width = panels[0].image.shape[:2]
    zoom = max(1, int(np.ceil(MIN_PANEL_WIDTH / width)))
    scale = 0.45
    texts = [[panel.title] + panel.note.splitlines() for panel in panels]
    n_lines = max(len(lines) for lines in texts)
    cells = []
    for panel, lines in zip(panels, texts):
        image = _rgb_of(panel, depth_range_m)
        image = cv2.resize(image, (width * zoom, height * zoom), interpolation=cv2.INTER_NEAREST)
        lines = lines + [''] * (n_lines - len(lines))  # images start at the same height
        cells.append(np.vstack([_text_block(lines, image.shape[1], scale), image]))
    per_row = per_row or len(cells)
    blank = np.full_like(cells[0], BACKGROUND)
    cells += [blank] * (-len(cells) % per_row)
    gap = np.full((cells[0].shape[0], GAP_PX, 3), BACKGROUND, dtype=np.uint8)
    strips = [np.hstack([part for c in cells[k:k + per_row] for part in (c, gap)][:-1])
              for k in range(0, len(cells), per_row)]
    between = np.full((GAP_PX, strips[0].shape[1], 3), BACKGROUND, dtype=np.uint8)
    rows = [part for strip in strips for part in (strip, between)][:-1]
    if title:
        rows.insert(0, _text_block([title], strips[0].shape[1], 0.6))
    picture = np.vstack(rows + [_colour_bar(strips[0].shape[1], depth_range_m, scale)])
    if not cv2.imwrite(str(path), picture[:, :, ::-1]):
        raise OSError(f'cannot write {path}')
    return path
