"""How a depth mode turns PPD's relative depth into metres.

PPD predicts relative, affine-invariant depth: roughly (log(1 + d) - q2) / (q98 - q2) with
q2 / q98 percentiles over the image, larger = farther; it is neither metres nor disparity.
A metric depth mode supplies a MetricScaler object; the pipeline calls it once per frame and
only builds point clouds from its output, so a cloud always has units.

  relative   no scaler: the relative map is published as is, and no cloud.
  range      ppd_ros.alignment.RangeScale: the prediction's 2nd / 98th percentiles are taken
             to lie at range.near_m / range.far_m (an assumption about the scene, refitted
             every frame).
  reference  fit against a metric reference sensor: not provided by this node yet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

DEPTH_MODES = ('relative', 'range', 'reference')


class DepthModeError(ValueError):
    """A depth mode (or its settings) this build cannot provide."""


#: Former name, kept for callers written against it.
UnsupportedDepthModeError = DepthModeError


class MetricScaler(Protocol):
    """Relative depth -> metres for one frame (NaN where invalid).

    Returns None while the scaler has no scale (e.g. a failed fit); the frame then gets no
    metric depth and no cloud. Scalers that need more inputs (a range sensor, a reference
    depth) are fed by their owner between frames.
    """

    def to_metres(self, relative: np.ndarray) -> np.ndarray | None:
        ...


@dataclass(frozen=True)
class ScaleSettings:
    """Settings of the metric modes (node parameters range.near_m, range.far_m)."""
    range_near_m: float = 0.5
    range_far_m: float = 10.0


class RangeScaler:
    """'range' mode: RangeScale's per-frame fit applied to the whole prediction."""

    def __init__(self, near_m: float, far_m: float):
        from ppd_ros.alignment import RangeScale
        try:
            self.range_scale = RangeScale(near_m, far_m)
        except ValueError as err:
            raise DepthModeError(f"depth.mode 'range': {err}") from err

    def to_metres(self, relative: np.ndarray) -> np.ndarray | None:
        from ppd_ros.alignment import apply_log_affine
        fit = self.range_scale.fit(relative)
        if not fit.ok:
            return None
        return apply_log_affine(relative, fit.a, fit.b)


def metric_scaler_for_mode(mode: str, scale: ScaleSettings = ScaleSettings()
                           ) -> MetricScaler | None:
    """The scaler of a depth mode: None for 'relative'."""
    if mode == 'relative':
        return None
    if mode == 'range':
        return RangeScaler(scale.range_near_m, scale.range_far_m)
    if mode == 'reference':
        raise DepthModeError(
            "depth.mode 'reference' (fit to a metric reference sensor) is not provided by "
            "depth_node yet; use 'range' or 'relative'")
    raise DepthModeError(f"unknown depth.mode '{mode}'; expected one of {', '.join(DEPTH_MODES)}")
