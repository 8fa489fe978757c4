"""Scene-change detection between consecutive camera frames (no rclpy).

The score of a frame is the mean absolute difference between its thumbnail and the
previous frame's: grey, area-averaged to THUMBNAIL_SIZE, normalised to zero mean and unit
standard deviation (so exposure and gain changes do not count). On held-out synthetic walks
a camera moving ~1 cm per frame scores 0.01-0.08, four frames apart 0.04-0.22, and a view
of another room 0.56 or more (docs/temporal.md). A score above the
threshold is a scene change: the camera was carried elsewhere, turned fast, or the view was
blocked. What follows a change (restarting the temporal smoothing, letting the metric scale
jump to the new fit) is left to the callers.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: (width, height) of the thumbnails compared.
THUMBNAIL_SIZE = (40, 30)
#: Default score above which a frame starts a new scene.
DEFAULT_THRESHOLD = 0.3


@dataclass(frozen=True)
class SceneChange:
    score: float        #: thumbnail difference to the previous frame (NaN for the first)
    changed: bool       #: score > threshold, or the first frame after a reset


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """Normalised grey thumbnail (float32, THUMBNAIL_SIZE) of an H x W x 3 or H x W image."""
    image = np.asarray(rgb)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey.astype(np.float32), THUMBNAIL_SIZE, interpolation=cv2.INTER_AREA)
    return (small - small.mean()) / max(float(small.std()), 1e-3)


class SceneChangeDetector:
    """Feed frames in order with update(); each gets a SceneChange."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD):
        if threshold <= 0:
            raise ValueError(f'scene change threshold must be positive, got {threshold}')
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame: the next one counts as a change."""
        self._previous = None

    def update(self, rgb: np.ndarray) -> SceneChange:
        current = thumbnail(rgb)
        previous, self._previous = self._previous, current
        if previous is None:
            return SceneChange(float('nan'), True)
        score = float(np.mean(np.abs(current - previous)))
        return SceneChange(score, score > self.threshold)
