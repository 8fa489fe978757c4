"""'moge' depth mode: metres for PPD's relative depth from MoGe-2's metric depth of the frame.

The authors' point-cloud recipe (run_point_cloud.py) fits log(1 + d_MoGe) = a * pred + b over
MoGe-2's mask and applies it to PPD's depth. Here MoGe-2's depth is the per-frame reference of
the 'reference' mode's robust fit (ppd_ros.alignment.fit_log_affine: RANSAC, then Huber), so
the same temporal filter, hold logic and status apply (metric_scaler.FilteredScaler). The
geometry comes with the prediction (ppd_ros.model.metric_predictor.GeometryPrediction);
a frame without one counts as a failed fit.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ppd_ros.pipeline.metric_scaler import ReferenceScaler, ScaleSettings


def moge_reference(geometry: Any) -> np.ndarray:
    """MoGe-2's metric depth with NaN outside its mask (the fit's reference)."""
    return np.where(geometry.mask, geometry.depth, np.float32(np.nan)).astype(np.float32)


class MoGeScaler(ReferenceScaler):
    """ReferenceScaler whose reference is the frame's own MoGe-2 depth."""

    mode = 'moge'

    def __init__(self, settings: ScaleSettings):
        super().__init__(settings)
        self._missing = 'no MoGe-2 geometry for this frame'

    def use_prediction(self, prediction: Any) -> None:
        """Take the reference from the frame's prediction (its ``geometry``)."""
        geometry = getattr(prediction, 'geometry', None)
        self._reference = None if geometry is None else moge_reference(geometry)
        self._missing = 'no MoGe-2 geometry for this frame'

    def begin_frame(self, stamp_s: float | None, reference_m: np.ndarray | None = None,
                    missing_reason: str = 'no MoGe-2 geometry for this frame') -> None:
        """Set the next frame's stamp; its reference comes with use_prediction."""
        super().begin_frame(stamp_s, reference_m, missing_reason)
