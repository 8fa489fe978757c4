"""'fusion' metric mode: the depth sensor where it is right, aligned PPD everywhere else.

FusionScaler is a ReferenceScaler: the same depth_reference input, the same per-frame robust
fit and TemporalScaleFilter (hold, then no metric output, with the same reasons). Once the
frame has its scale (a, b), PPD's log(1 + m) = a * pred + b is fused with the paired
reference (ppd_ros.fusion.fuse_depth, colour-guided when the frame's image is given). A frame
that keeps the held scale without a reference of its own gets aligned PPD alone, as in
'reference' mode. A reference of another size is brought to the image's (reference_at). `source` holds the last frame's per-pixel origin map when asked for.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ppd_ros.fusion.depth_fusion import (SOURCE_NONE, SOURCE_PPD, FusionSettings, fuse_depth,
                                         reference_at)
from ppd_ros.pipeline.metric_scaler import ReferenceScaler, ScaleSettings


class FusionScaler(ReferenceScaler):
    mode = 'fusion'

    def __init__(self, settings: ScaleSettings, fusion: FusionSettings = FusionSettings()):
        super().__init__(settings)
        self.fusion = dataclasses.replace(fusion, min_m=settings.min_m, max_m=settings.max_m,
                                          flying_step=settings.flying_step)
        self._rgb: np.ndarray | None = None
        self._want_source = False
        self.source: np.ndarray | None = None   #: uint8 SOURCE_* map of the last frame
        self.timings: dict[str, float] = {}      #: seconds per fusion stage, last frame

    def begin_frame(self, stamp_s: float | None, reference_m: np.ndarray | None = None,
                    missing_reason: str = 'no depth reference for this frame',
                    rgb: np.ndarray | None = None, want_source: bool = False) -> None:
        """As ReferenceScaler.begin_frame; ``rgb`` (the frame's colour image, uint8) guides
        the edge repair, ``want_source`` asks for the source map."""
        super().begin_frame(stamp_s, reference_m, missing_reason)
        self._rgb = rgb
        self._want_source = want_source
        self.source = None
        self.timings = {}

    def metres_from(self, relative: np.ndarray, a: float, b: float) -> np.ndarray:
        ppd_log = np.multiply(relative, np.float32(a), dtype=np.float32)
        ppd_log += np.float32(b)
        if self._reference is None:
            metres = super().metres_from(relative, a, b)
            if self._want_source:
                self.source = np.where(np.isfinite(metres), np.uint8(SOURCE_PPD),
                                       np.uint8(SOURCE_NONE))
            return metres
        reference = reference_at(relative.shape, self._reference, self.fusion)
        rgb = self._rgb if self._rgb is not None and self._rgb.shape[:2] == relative.shape \
            else None
        fused = fuse_depth(ppd_log, reference, rgb, self.fusion, with_source=self._want_source)
        self.source = fused.source
        self.timings = fused.timings
        return fused.depth_m
