"""Temporal smoothing of PPD's relative depth: steadier depth from a moving camera (no rclpy).

The smoothing runs at a working size at most WORK_WIDTH pixels wide (the image's own size
when smaller). Per frame, with r the new relative prediction at that size and s the previous
smoothed result:
  1. motion compensation: dense optical flow (OpenCV DIS) from the new grey image to the
     previous one carries s into the new view (bilinear); pixels whose source lies outside
     the previous image have no previous value;
  2. the warped s is mapped onto r by a least-squares affine fit (refitted on the pixels
     within 3 median residuals), which removes the per-frame drift of PPD's normalisation;
  3. per pixel, with d = |r - s_warped|,
        w = weight * max(0, 1 - (d / max_difference)^2),   s_new = (1 - w) r + w s_warped,
     so a pixel whose depth changed by max_difference or more (an edge that moved, a new or
     moving object, a flow error) takes the new prediction alone;
  4. a scene change (restart=True), a new image size or the first frame start over: s = r;
  5. optional (edges=True): the warp is nearest, and at the depth edges of r (3 x 3 range
     above EDGE_STEP) a value that moved off r by more than a quarter of the local range is
     snapped to the nearer side of the edge (keep_edges): no depth between two surfaces.
The output is the full-size prediction plus the change s_new - r, upsampled (bilinear) from
the working size: detail finer than the working size is the new frame's own.
s is an exponential average over time with memory of about 1 / (1 - weight) frames where
depth agrees, and no memory where it does not. What it trades: less flicker and a little
less noise for a little spatial blur (each frame's warp resamples the average) and an
OpenCV flow per frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ppd_ros.pipeline.scene_change import DEFAULT_THRESHOLD, SceneChangeDetector

#: The smoothing (flow, warp, blend) runs on images at most this many pixels wide.
WORK_WIDTH = 320
#: Every n-th pixel in each axis takes part in the affine fit.
_FIT_STRIDE = 4
#: keep_edges: a 3 x 3 range of the relative depth above this is a depth edge.
EDGE_STEP = 0.05


def to_grey(rgb: np.ndarray) -> np.ndarray:
    image = np.asarray(rgb)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def work_size(width: int, height: int, max_width: int = WORK_WIDTH) -> tuple[int, int]:
    """(width, height) of the working images: scaled down to max_width, aspect kept."""
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class OpticalFlow:
    """Dense flow of a grey image towards a previous one of the same size: new pixel (u, v)
    shows what the previous image showed at (u + flow_x, v + flow_y)."""

    def __init__(self):
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def __call__(self, grey: np.ndarray, previous_grey: np.ndarray) -> np.ndarray:
        """(H, W, 2) float32."""
        return self._dis.calc(grey, previous_grey, None)


def warp_previous(previous: np.ndarray, flow: np.ndarray, nearest: bool = False) -> np.ndarray:
    """previous carried into the new view (bilinear, or nearest: no value between two
    neighbours); NaN where its source is outside."""
    height, width = previous.shape
    grid = flow.copy()
    grid[..., 0] += np.arange(width, dtype=np.float32)
    grid[..., 1] += np.arange(height, dtype=np.float32)[:, None]
    return cv2.remap(previous.astype(np.float32, copy=False), grid, None,
                     cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=float('nan'))


def keep_edges(blended: np.ndarray, current: np.ndarray, step: float = EDGE_STEP) -> np.ndarray:
    """blended, except at the depth edges of current (3 x 3 range > step): there a value that
    moved more than a quarter of the local range away from current is snapped to the nearer
    of the two sides (the local minimum or maximum of current), never left between them."""
    kernel = np.ones((3, 3), np.uint8)
    low, high = cv2.erode(current, kernel), cv2.dilate(current, kernel)
    local_range = high - low
    moved = (local_range > step) & (np.abs(blended - current) > 0.25 * local_range)
    side = np.where(np.abs(blended - low) < np.abs(blended - high), low, high)
    return np.where(moved, side, blended)


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    x_mean, y_mean = x.mean(), y.mean()
    dx = x - x_mean
    sxx = float(dx @ dx)
    if x.size < 8 or sxx <= 1e-12:
        return None
    a = float(dx @ (y - y_mean)) / sxx
    return a, float(y_mean - a * x_mean)


def fit_affine(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(a, b) with a * source + b ~ target: least squares over a pixel grid, refitted on the
    pixels within 3 median absolute residuals. (1, 0) when there is too little to fit."""
    x = source[::_FIT_STRIDE, ::_FIT_STRIDE].ravel().astype(np.float64)
    y = target[::_FIT_STRIDE, ::_FIT_STRIDE].ravel().astype(np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    line = _line(x, y)
    if line is not None:
        residual = np.abs(y - (line[0] * x + line[1]))
        close = residual <= 3.0 * max(float(np.median(residual)), 1e-9)
        line = _line(x[close], y[close])
    return line if line is not None and line[0] > 0 else (1.0, 0.0)


class RelativeDepthSmoother:
    """State of the smoothing for one camera stream (module doc)."""

    def __init__(self, weight: float, max_difference: float, motion_compensation: bool = True,
                 edges: bool = False):
        """edges=True keeps the new frame's depth edges (keep_edges, and a nearest warp)."""
        if not 0.0 <= weight < 1.0:
            raise ValueError(f'smoothing weight must be in [0, 1), got {weight}')
        if max_difference <= 0:
            raise ValueError(f'max_difference must be positive, got {max_difference}')
        self.weight = weight
        self.max_difference = max_difference
        self._flow = OpticalFlow() if motion_compensation else None
        self.edges = edges
        self.reset()

    @property
    def motion_compensation(self) -> bool:
        return self._flow is not None

    def reset(self) -> None:
        self._previous: np.ndarray | None = None    # smoothed, at the working size
        self._previous_grey: np.ndarray | None = None
        self._full_size: tuple[int, int] | None = None
        self.blended_fraction = 0.0     #: share of pixels of the last frame that were blended

    def _working(self, relative: np.ndarray, rgb: np.ndarray):
        size = work_size(relative.shape[1], relative.shape[0])
        grey = _resized(to_grey(rgb), size) if self._flow is not None else None
        return _resized(relative, size), grey

    def continue_from(self, smoothed: np.ndarray, rgb: np.ndarray) -> None:
        """Take an earlier frame's smoothed output (and image) as the previous frame."""
        smoothed = np.asarray(smoothed, dtype=np.float32)
        self._keep(*self._working(smoothed, rgb), smoothed.shape, 0.0)

    def update(self, relative: np.ndarray, rgb: np.ndarray, restart: bool = False
               ) -> np.ndarray:
        """The smoothed relative depth of this frame (float32, relative's shape)."""
        relative = np.asarray(relative, dtype=np.float32)
        if np.shape(rgb)[:2] != relative.shape:
            raise ValueError(f'image {np.shape(rgb)[:2]} and relative depth {relative.shape} '
                             'differ in size')
        current, grey = self._working(relative, rgb)
        previous = self._previous
        if (restart or self.weight == 0.0 or previous is None
                or self._full_size != relative.shape):
            self._keep(current, grey, relative.shape, 0.0)
            return relative
        if self._flow is not None:
            previous = warp_previous(previous, self._flow(grey, self._previous_grey),
                                     nearest=self.edges)
        a, b = fit_affine(previous, current)
        change = np.float32(a) * previous + np.float32(b) - current  # s_warped - r
        with np.errstate(invalid='ignore'):
            closeness = 1.0 - np.square(change / np.float32(self.max_difference))
        weight = np.float32(self.weight) * np.clip(np.nan_to_num(closeness, nan=0.0), 0.0, 1.0)
        change = weight * np.nan_to_num(change)
        if self.edges:
            change = keep_edges(current + change, current) - current
        self._keep(current + change, grey, relative.shape, float(np.mean(weight > 0)))
        if change.shape != relative.shape:
            change = cv2.resize(change, relative.shape[::-1], interpolation=cv2.INTER_LINEAR)
        return relative + change

    def _keep(self, smoothed: np.ndarray, grey: np.ndarray | None, full_size, blended: float
              ) -> None:
        self._previous, self._previous_grey = smoothed, grey
        self._full_size = tuple(full_size)
        self.blended_fraction = blended


@dataclass(frozen=True)
class TemporalSettings:
    """Node parameters temporal.*: smoothing of the relative depth and scene changes."""
    smoothing: float = 0.0              #: weight of the previous result; 0: off
    max_difference: float = 0.3         #: relative-depth difference above which no blending
    motion_compensation: bool = True    #: warp the previous result with optical flow
    scene_change_threshold: float = DEFAULT_THRESHOLD  #: thumbnail score of a new scene
    keep_edges: bool = False            #: never leave a value between the sides of an edge


@dataclass(frozen=True)
class TemporalStatus:
    """What the temporal stage did with the last frame (for /diagnostics)."""
    scene_score: float          #: SceneChange.score (NaN for a first frame)
    scene_changed: bool
    blended_fraction: float     #: share of pixels blended with the previous result


class TemporalDepth:
    """Scene-change detection and smoothing for one camera stream; settings may change
    between frames (a change restarts the smoothing)."""

    def __init__(self):
        self._settings: TemporalSettings | None = None
        self._detector: SceneChangeDetector | None = None
        self._smoother: RelativeDepthSmoother | None = None

    def _configure(self, settings: TemporalSettings) -> None:
        if settings != self._settings:
            self._detector = SceneChangeDetector(settings.scene_change_threshold)
            self._smoother = (RelativeDepthSmoother(settings.smoothing, settings.max_difference,
                                                    settings.motion_compensation,
                                                    settings.keep_edges)
                              if settings.smoothing > 0 else None)
            self._settings = settings

    def continue_from(self, relative: np.ndarray, rgb: np.ndarray,
                      settings: TemporalSettings) -> None:
        """Continue a stream as if this earlier output (and its image) were the last frame,
        e.g. when an interrupted evaluation resumes; relative is resized to the image."""
        self._configure(settings)
        self._detector.update(rgb)
        if self._smoother is not None:
            height, width = np.shape(rgb)[:2]
            if np.shape(relative) != (height, width):
                relative = cv2.resize(np.asarray(relative, dtype=np.float32), (width, height),
                                      interpolation=cv2.INTER_NEAREST_EXACT)
            self._smoother.continue_from(relative, rgb)

    def restart(self) -> None:
        """Forget the stream: the next frame starts afresh."""
        self._settings = None

    def update(self, relative: np.ndarray, rgb: np.ndarray, settings: TemporalSettings
               ) -> tuple[np.ndarray, TemporalStatus]:
        """(relative depth to publish, status) of a new frame."""
        self._configure(settings)
        change = self._detector.update(rgb)
        blended = 0.0
        if self._smoother is not None:
            relative = self._smoother.update(relative, rgb, restart=change.changed)
            blended = self._smoother.blended_fraction
        return relative, TemporalStatus(change.score, change.changed, blended)


#: The node's and ppd-eval's defaults (measurements in docs/temporal.md).
RECOMMENDED = TemporalSettings(smoothing=0.8, max_difference=0.3, keep_edges=True)
