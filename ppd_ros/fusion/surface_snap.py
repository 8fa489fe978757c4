"""Put pixels next to a depth step on the foreground or the background surface, never between.

For every pixel, the trusted depth values in its (2 radius + 1)^2 window form a near and a
far group. A trusted value belongs to the near group when it lies in the lower half of the
range of the (4 radius + 1)^2 window around *itself*: that wider window holds the whole
window of every pixel that sees the value, so where a pixel's window spans two surfaces the
split falls between them, and it is computed once per value, so that every group sum is a
box filter. The window has a step when the groups are at least ``min_step`` apart
(log(1 + m)), each holds MIN_GROUP_SHARE of the trusted values (and MIN_GROUP_SAMPLES or
more), and at most MAX_MIDDLE_SHARE of them lie in the middle third of the range: a slanted
surface fills the middle, a step leaves it empty.

At a step, the pixel's value is the mean of one group:
  - colour tells: the pixel's colour is nearer to one group's mean colour by more than
    ``colour_margin`` (8-bit RGB, Euclidean) -> that group;
  - otherwise the group whose mean is nearer to the pixel's ``guess`` (e.g. corrected PPD).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Default colour margin, 8-bit levels.
DEFAULT_COLOUR_MARGIN = 12.0
#: A step needs each group to hold this share of the window's trusted values ...
MIN_GROUP_SHARE = 0.05
#: ... and at least this many of them ...
MIN_GROUP_SAMPLES = 3
#: ... and at most this share of the trusted values in the middle third of the range.
MAX_MIDDLE_SHARE = 0.2
#: The guess is sure of a side within this share of the step from that side's surface;
#: colour only decides elsewhere.
GUESS_SURE = 0.25
#: Where the guess is on the chosen side, its own variation over that group (the surface's
#: shape, e.g. a slant) is added to the group's mean when smaller than this (log(1 + m)).
DEFAULT_SHAPE_LIMIT = 0.02


@dataclass(frozen=True, eq=False)
class SnapResult:
    pixels: np.ndarray     #: flat indices of the snapped pixels (wanted, with a step in reach)
    value: np.ndarray      #: float32 per snapped pixel: the chosen group's mean, log(1 + m)
    by_colour: np.ndarray  #: bool per snapped pixel: colour decided the side
    stepped: np.ndarray    #: bool (H, W): every pixel with a step in reach, wanted or not


def _window_sum(image: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.boxFilter(image, -1, (size, size), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)


def _window_range(for_min: np.ndarray, for_max: np.ndarray, radius: int):
    square = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(for_min, square), cv2.dilate(for_max, square)


def _window_sums_at(image: np.ndarray, radius: int, pixels: np.ndarray) -> np.ndarray:
    """_window_sum's (pixels, channels) values at the flat indices ``pixels`` only, from
    an integral image in float64: exact (the same as _window_sum) for integer-valued
    images, e.g. colours times 0 / 1 weights."""
    height, width = image.shape[:2]
    table = cv2.integral(image, sdepth=cv2.CV_64F).reshape(height + 1, width + 1, -1)
    rows, cols = np.divmod(pixels, width)
    top, bottom = np.maximum(rows - radius, 0), np.minimum(rows + radius + 1, height)
    left, right = np.maximum(cols - radius, 0), np.minimum(cols + radius + 1, width)
    sums = table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]
    return sums.astype(np.float32)


def snap_to_surfaces(trusted_log: np.ndarray, guess_log: np.ndarray, min_step: float,
                     radius: int, rgb: np.ndarray | None = None,
                     colour_margin: float = DEFAULT_COLOUR_MARGIN,
                     wanted: np.ndarray | None = None,
                     shape_limit: float = DEFAULT_SHAPE_LIMIT) -> SnapResult:
    """Near / far surface choice (module doc) for the ``wanted`` pixels (bool (H, W); all
    by default) of an (H, W) map of trusted log depths (NaN: untrusted). ``guess_log``:
    (H, W) log depths deciding where colour does not; ``rgb``: (H, W, 3) uint8, optional."""
    trusted = np.isfinite(trusted_log)
    for_min = np.where(trusted, trusted_log, np.float32(np.inf))
    for_max = np.where(trusted, trusted_log, np.float32(-np.inf))
    low, high = _window_range(for_min, for_max, radius)
    wide_low, wide_high = _window_range(low, high, radius)   # the range within 2 radius
    with np.errstate(invalid='ignore', over='ignore'):
        spread = high - low
        wide_spread = wide_high - wide_low
        middle = wide_low + np.float32(0.5) * wide_spread
        near_label = trusted & (trusted_log <= middle)
        middle_label = trusted & (np.abs(trusted_log - (low + np.float32(0.5) * spread))
                                  < spread / np.float32(6))
    values = np.where(trusted, trusted_log, np.float32(0))
    weight = trusted.astype(np.float32)
    near = near_label.astype(np.float32)
    guess = np.asarray(guess_log, dtype=np.float32)
    # window sums: trusted, near, near values, all values, near guesses, all guesses
    counts = _window_sum(np.stack([weight, near, near * values, values, near * guess,
                                   weight * guess], axis=-1), radius)
    n_all, n_near = counts[..., 0], counts[..., 1]
    n_middle = _window_sum(middle_label.astype(np.float32), radius)
    n_far = n_all - n_near
    with np.errstate(invalid='ignore'):
        stepped = ((spread >= min_step) & (n_middle <= MAX_MIDDLE_SHARE * n_all)
                   & (np.minimum(n_near, n_far)
                      >= np.maximum(MIN_GROUP_SAMPLES, MIN_GROUP_SHARE * n_all)))
    pixels = np.flatnonzero(stepped if wanted is None else stepped & wanted)
    at = counts.reshape(-1, 6)[pixels]
    n_near, n_far = at[:, 1], at[:, 0] - at[:, 1]
    near_mean = at[:, 2] / n_near
    far_mean = (at[:, 3] - at[:, 2]) / n_far
    # the guess's own variation over each group (its shape along the surface)
    near_guess = at[:, 4] / n_near
    far_guess = (at[:, 5] - at[:, 4]) / n_far
    guess = guess.reshape(-1)[pixels]
    position = (guess - near_mean) / (far_mean - near_mean)   # 0: near surface, 1: far
    take_near = position <= 0.5
    by_colour = np.zeros(len(pixels), dtype=bool)
    if rgb is not None:
        colour = rgb.astype(np.float32)
        near_colour = _window_sums_at(colour * near[..., None], radius, pixels)
        all_colour = _window_sums_at(colour * weight[..., None], radius, pixels)
        own = colour.reshape(-1, 3)[pixels]
        to_near = np.linalg.norm(own - near_colour / n_near[:, None], axis=1)
        to_far = np.linalg.norm(own - (all_colour - near_colour) / n_far[:, None], axis=1)
        undecided = np.abs(position - 0.5) < np.float32(0.5 - GUESS_SURE)
        by_colour = undecided & (np.abs(to_near - to_far) > colour_margin)
        take_near = np.where(by_colour, to_near < to_far, take_near)
    value = np.where(take_near, near_mean, far_mean)
    shape = guess - np.where(take_near, near_guess, far_guess)
    on_surface = (take_near == (position <= 0.5)) & (np.abs(shape) < np.float32(shape_limit))
    value = np.where(on_surface, value + shape, value).astype(np.float32)
    return SnapResult(pixels, value, by_colour, stepped)
