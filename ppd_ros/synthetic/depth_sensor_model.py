"""What an RGB-D camera's registered depth looks like, simulated from exact depth.

    exact depth -> flying pixels at depth edges -> relative noise -> holes (blobs) -> metres

Flying pixels: at depth discontinuities (a 3 x 3 neighbourhood spanning more than
edge_step_rel) a share flying_fraction of the pixels gets a depth between the neighbourhood's
nearest and farthest surface (t * near + (1 - t) * far, t uniform in 0.2 .. 0.8), the mixed
returns of real time-of-flight and stereo sensors. Noise: d * (1 + noise_rel * N(0, 1)).
Holes: smooth random blobs, about hole_size_px across, covering hole_fraction of the image
(NaN). Pixels invalid in the exact depth stay invalid. Each (seed, frame index) draws its own
corruption, reproducibly.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DepthSensorModel:
    hole_fraction: float = 0.30     #: share of the image lost to holes
    hole_size_px: float = 16.0      #: typical hole diameter, pixels
    noise_rel: float = 0.01         #: depth noise, standard deviation relative to the depth
    flying_fraction: float = 0.5    #: share of depth-edge pixels turned into flying pixels
    edge_step_rel: float = 0.05     #: neighbourhood depth spread that marks a depth edge
    seed: int = 0

    def __post_init__(self):
        if not 0.0 <= self.hole_fraction < 1.0 or not 0.0 <= self.flying_fraction <= 1.0:
            raise ValueError('hole_fraction must be in [0, 1) and flying_fraction in [0, 1]')
        if self.noise_rel < 0 or self.hole_size_px <= 0 or self.edge_step_rel <= 0:
            raise ValueError('noise_rel must be >= 0, hole_size_px and edge_step_rel > 0')

    def corrupt(self, depth_m: np.ndarray, index: int = 0) -> np.ndarray:
        """H x W float32 metres (NaN invalid) as the sensor would report them for frame
        ``index``."""
        rng = np.random.default_rng((self.seed, index))
        exact = np.asarray(depth_m, dtype=np.float32)
        valid = np.isfinite(exact) & (exact > 0)
        sensed = self._add_flying_pixels(exact, valid, rng)
        sensed = sensed * (1.0 + self.noise_rel * rng.standard_normal(sensed.shape))
        sensed = sensed.astype(np.float32)
        sensed[~valid | self._holes(exact.shape, rng)] = np.nan
        return sensed

    def _add_flying_pixels(self, depth: np.ndarray, valid: np.ndarray,
                           rng: np.random.Generator) -> np.ndarray:
        kernel = np.ones((3, 3), np.uint8)
        near = cv2.erode(np.where(valid, depth, np.inf).astype(np.float32), kernel,
                         borderType=cv2.BORDER_REPLICATE)
        far = cv2.dilate(np.where(valid, depth, 0.0).astype(np.float32), kernel,
                         borderType=cv2.BORDER_REPLICATE)
        with np.errstate(invalid='ignore', divide='ignore'):
            edge = valid & np.isfinite(near) & (far > near * (1.0 + self.edge_step_rel))
        flying = edge & (rng.random(depth.shape) < self.flying_fraction)
        mix = rng.uniform(0.2, 0.8, size=depth.shape).astype(np.float32)
        return np.where(flying, mix * near + (1.0 - mix) * far, depth)

    def _holes(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        if self.hole_fraction == 0.0:
            return np.zeros(shape, dtype=bool)
        height, width = shape
        coarse = rng.random((max(2, round(height / self.hole_size_px) + 1),
                             max(2, round(width / self.hole_size_px) + 1))).astype(np.float32)
        field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        return field < np.quantile(field, self.hole_fraction)
