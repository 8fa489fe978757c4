"""How a depth mode turns PPD's relative depth into metres, frame after frame.

PPD predicts relative, affine-invariant depth: roughly (log(1 + d) - q2) / (q98 - q2) with
q2 / q98 percentiles over the image, larger = farther; it is neither metres nor disparity.
A metric depth mode supplies a MetricScaler object; the pipeline calls it once per frame and
only builds point clouds from its output, so a cloud always has units.

  relative   no scaler: the relative map is published as is, and no cloud.
  range      RangeScaler: the prediction's 2nd / 98th percentiles are taken to lie at
             range.near_m / range.far_m (an assumption about the scene).
  reference  ReferenceScaler: robust fit against a metric reference depth image paired
             with the frame (ppd_ros.alignment.fit_log_affine).
  fusion     FusionScaler (fusion_scaler.py): the reference fit, then the reference kept
             where it is right and aligned PPD everywhere else (ppd_ros.fusion).

Both metric scalers share one per-frame state machine (FilteredScaler):

    frame fit (a, b) --TemporalScaleFilter--> accepted: EMA-smoothed (a, b), metres
                                           \\-> failed / outlier: hold the last accepted
                                                (a, b) for hold_frames frames, then None
    metres = exp(a * pred + b) - 1, invalid (NaN) outside [min_m, max_m]

When the pipeline sees the view change (scene_changed), the next good fit replaces the
scale outright, so a camera carried to another room is metric again after one frame; the
outlier test still guards every other frame.
A missing reference counts as a failed fit, so a silent reference topic holds the scale for
hold_frames frames and then stops metric output. `status` says what happened last frame.
In 'range' mode the fit only fails on a flat prediction; the filter mainly smooths the
frame-to-frame jitter of the prediction's percentiles and rejects sudden jumps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import numpy as np

from ppd_ros.alignment import (RangeScale, TemporalScaleFilter, apply_log_affine, fit_log_affine,
                               resample_reference_to)
from ppd_ros.alignment.log_affine_fit import LogAffineFit, failed_fit

DEPTH_MODES = ('relative', 'range', 'reference', 'fusion', 'moge')
#: Depth modes fed with a depth reference image.
REFERENCE_MODES = ('reference', 'fusion')
#: Reference pixels used per fit (random subset, fixed seed).
REFERENCE_FIT_POINTS = 4096


class DepthModeError(ValueError):
    """A depth mode (or its settings) this build cannot provide."""


#: Former name, kept for callers written against it.
UnsupportedDepthModeError = DepthModeError


class MetricScaler(Protocol):
    """Relative depth -> metres for one frame (NaN where invalid).

    Returns None while the scaler has no scale (e.g. failed fits beyond the hold); the frame
    then gets no metric depth and no cloud. Scalers that need more inputs (a stamp, a
    reference depth) are fed by their owner before each frame (begin_frame).
    """

    def to_metres(self, relative: np.ndarray) -> np.ndarray | None:
        ...

    def scene_changed(self) -> None:
        """The view changed: the next frame's scale need not agree with the last one."""
        ...

    def metres_spread(self, spread: np.ndarray, metres: np.ndarray) -> np.ndarray:
        """A spread of the relative depth (e.g. over K noise draws) in metres, at the scale
        the last to_metres applied; NaN where metres is."""
        ...

    # Optional: use_prediction(prediction), called with the frame's whole prediction before
    # to_metres (the 'moge' mode reads its geometry there).


@dataclass(frozen=True)
class ScaleSettings:
    """Settings of the metric modes (node parameters range.*, depth.min_m / max_m,
    scale.*, reference.*)."""
    range_near_m: float = 0.5
    range_far_m: float = 10.0
    min_m: float = 0.1                  #: metric depth outside [min_m, max_m] is invalid
    max_m: float = 20.0
    smoothing: float = 0.3              #: EMA weight of a new fit (1: no smoothing)
    max_jump: float = 0.25              #: relative median-depth jump that marks an outlier fit
    reset_after: int = 5                #: consistent outliers that restart the filter
    hold_frames: int = 5                #: frames a failed / rejected fit keeps the last scale
    inlier_threshold: float = 0.05      #: reference fit inlier band, log(1 + m) units
    min_inlier_ratio: float = 0.3       #: reference fits with fewer inliers fail
    flying_step: float = 0.04           #: fusion: a reference pixel this much (relative)
    #: between a nearer and a farther neighbour is a flying pixel

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> ScaleSettings:
        """From depth_node parameter values (dotted names)."""
        return cls(values['range.near_m'], values['range.far_m'], values['depth.min_m'],
                   values['depth.max_m'], values['scale.smoothing'], values['scale.max_jump'],
                   values['scale.reset_after'], values['scale.hold_frames'],
                   values['reference.inlier_threshold'], values['reference.min_inlier_ratio'],
                   values.get('fusion.flying_step', cls.flying_step))


@dataclass(frozen=True)
class ScaleStatus:
    """What the scaler did with the last frame (for logs and /diagnostics)."""
    mode: str
    available: bool             #: the frame got metric depth
    reason: str                 #: '' while tracking normally; why held / unavailable otherwise
    a: float = float('nan')     #: applied (filtered) log(1 + d) = a * pred + b
    b: float = float('nan')
    held_for: int = 0           #: frames since the last accepted fit
    fit: LogAffineFit | None = None  #: the frame's own fit

    @property
    def state(self) -> str:
        if not self.available:
            return 'unavailable'
        return 'holding' if self.held_for > 0 else 'tracking'


class FilteredScaler:
    """Per-frame fit -> TemporalScaleFilter -> clipped metres (module doc)."""

    mode = ''

    def __init__(self, settings: ScaleSettings):
        if not 0.0 <= settings.min_m < settings.max_m:
            raise DepthModeError(f'need 0 <= depth.min_m < depth.max_m, got '
                                 f'{settings.min_m}, {settings.max_m}')
        self.settings = settings
        try:
            self._filter = TemporalScaleFilter(settings.smoothing, settings.max_jump,
                                               settings.reset_after, settings.hold_frames)
        except ValueError as err:
            raise DepthModeError(f"depth.mode '{self.mode}': {err}") from err
        self._stamp: float | None = None
        self.status = ScaleStatus(self.mode, False, 'no frame processed yet')

    def begin_frame(self, stamp_s: float | None) -> None:
        """Set the stamp of the next frame (an older stamp than before resets the filter)."""
        self._stamp = stamp_s

    def use_prediction(self, prediction) -> None:
        """The frame's prediction, before to_metres (the 'moge' mode reads its geometry)."""

    def scene_changed(self) -> None:
        """The camera's view changed (ppd_ros.pipeline.scene_change): the next good fit
        becomes the scale at once instead of being tested against the old one."""
        self._filter.scene_changed()

    def metres_spread(self, spread: np.ndarray, metres: np.ndarray) -> np.ndarray:
        """d = exp(a p + b) - 1 changes by a (1 + d) per unit of p, so a spread s of p is
        a spread of about a (1 + d) s metres (float32; NaN where metres is NaN)."""
        a = np.float32(self.status.a)
        return (a * (np.float32(1.0) + metres) * spread).astype(np.float32, copy=False)

    def frame_fit(self, relative: np.ndarray) -> LogAffineFit:
        raise NotImplementedError

    def to_metres(self, relative: np.ndarray) -> np.ndarray | None:
        fit = self.frame_fit(relative)
        out = self._filter.update(fit, self._stamp)
        self.status = ScaleStatus(self.mode, out.valid, out.reason, out.a, out.b, out.held_for,
                                  fit)
        if not out.valid:
            return None
        return self.metres_from(relative, out.a, out.b)

    def metres_from(self, relative: np.ndarray, a: float, b: float) -> np.ndarray:
        """The frame's metres once its scale (a, b) is known."""
        return apply_log_affine(relative, a, b, self.settings.min_m, self.settings.max_m)


class RangeScaler(FilteredScaler):
    """'range' mode: RangeScale's percentile fit, filtered."""

    mode = 'range'

    def __init__(self, settings: ScaleSettings):
        try:
            self.range_scale = RangeScale(settings.range_near_m, settings.range_far_m)
        except ValueError as err:
            raise DepthModeError(f"depth.mode 'range': {err}") from err
        super().__init__(settings)

    def frame_fit(self, relative: np.ndarray) -> LogAffineFit:
        return self.range_scale.fit(relative)


class ReferenceScaler(FilteredScaler):
    """'reference' mode: fit against the metric reference given with begin_frame.

    The reference (float metres, NaN / <= 0 invalid) must be registered to the colour image
    but may have any resolution. Reference values outside [min_m, max_m] are not fitted.
    """

    mode = 'reference'

    def __init__(self, settings: ScaleSettings):
        super().__init__(settings)
        self._reference: np.ndarray | None = None
        self._missing = 'no depth reference given'

    def begin_frame(self, stamp_s: float | None, reference_m: np.ndarray | None = None,
                    missing_reason: str = 'no depth reference for this frame') -> None:
        """Stamp and reference of the next frame; without a reference its fit fails with
        missing_reason."""
        super().begin_frame(stamp_s)
        self._reference = reference_m
        self._missing = missing_reason

    def frame_fit(self, relative: np.ndarray) -> LogAffineFit:
        if self._reference is None:
            return failed_fit(self._missing)
        s = self.settings
        return fit_log_affine(relative, self._reference, max_points=REFERENCE_FIT_POINTS,
                              min_ref_m=s.min_m, max_ref_m=s.max_m,
                              inlier_threshold=s.inlier_threshold,
                              min_inlier_ratio=s.min_inlier_ratio)

    def inlier_mask(self, relative: np.ndarray) -> np.ndarray | None:
        """uint8 mask at relative's size: 255 where the frame's reference agrees with the
        applied scale within inlier_threshold (log(1 + m) units), 0 elsewhere (outlier or no
        reference). None without a reference or a scale."""
        status = self.status
        if self._reference is None or not status.available:
            return None
        reference = resample_reference_to(relative.shape, self._reference)
        with np.errstate(invalid='ignore'):
            residual = np.abs(np.log1p(reference) - (status.a * relative + status.b))
            inliers = residual <= self.settings.inlier_threshold
        inliers &= (reference >= self.settings.min_m) & (reference <= self.settings.max_m)
        return np.where(inliers, np.uint8(255), np.uint8(0))


def metric_scaler_for_mode(mode: str, scale: ScaleSettings = ScaleSettings()
                           ) -> FilteredScaler | None:
    """The scaler of a depth mode: None for 'relative'. Raises DepthModeError for an unknown
    mode or invalid settings."""
    if mode == 'relative':
        return None
    if mode == 'range':
        return RangeScaler(scale)
    if mode == 'reference':
        return ReferenceScaler(scale)
    if mode == 'fusion':
        from ppd_ros.pipeline.fusion_scaler import FusionScaler
        return FusionScaler(scale)
    if mode == 'moge':
        from ppd_ros.pipeline.moge_scaler import MoGeScaler
        return MoGeScaler(scale)
    raise DepthModeError(f"unknown depth.mode '{mode}'; expected one of {', '.join(DEPTH_MODES)}")
