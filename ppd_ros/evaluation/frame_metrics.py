"""All metrics of one frame: a relative prediction against GT depth (and intrinsics).

    RANSAC-log alignment (the paper's protocol) -> metres -> AbsRel, delta_0.5..3,
                                                          edge Chamfer, flying-pixel ratio
    LSQ scale + shift in depth space           -> metres -> AbsRel, delta_0.5..3

The edge-aware metrics use the RANSAC-aligned depth and need the camera intrinsics; without a
camera they are NaN. Definitions: ppd_ros.evaluation.alignment_eval / metrics / edge_band /
edge_chamfer / flying_pixels. evaluate_frame leaves two groups NaN for the caller to fill in:
flicker (evaluation.flicker: needs the frame before) and the confidence columns
(evaluation.uncertainty: need the spread of several noise draws).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ppd_ros.evaluation.alignment_eval import align_least_squares, align_ransac_log
from ppd_ros.evaluation.edge_chamfer import edge_chamfer_distance
from ppd_ros.evaluation.flying_pixels import flying_pixel_ratio
from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.evaluation.uncertainty import CONFIDENCE_COLUMNS
from ppd_ros.geometry.camera_model import PinholeCamera
from ppd_ros.pipeline.depth_pipeline import resize_nearest

_DEPTH_KEYS = ('abs_rel', 'd05', 'd1', 'd2', 'd3')
#: Per-frame metric columns, in CSV order.
METRIC_COLUMNS = (
    tuple(f'ransac_log_{k}' for k in _DEPTH_KEYS) + tuple(f'lsq_{k}' for k in _DEPTH_KEYS)
    + ('gt_pixels', 'edge_chamfer_m', 'edge_points', 'flying_pixel_ratio',
       'flying_band_pixels', 'ransac_log_scale', 'ransac_log_shift', 'lsq_scale', 'lsq_shift',
       'flicker', 'flicker_points') + CONFIDENCE_COLUMNS)
#: Columns that are counts, not averaged quantities.
COUNT_COLUMNS = ('gt_pixels', 'edge_points', 'flying_band_pixels', 'flicker_points')


@dataclass(frozen=True)
class EdgeMetricParams:
    band_px: int = 3          #: half-width of the GT edge band, pixels
    flying_tau_rel: float = 0.02  #: flying-pixel distance threshold relative to GT depth
    ransac_seed: int = 0


@dataclass(frozen=True, eq=False)
class FrameEvaluation:
    metrics: dict[str, float]      #: one value per METRIC_COLUMNS key (NaN when not computable)
    metres: np.ndarray | None      #: RANSAC-log aligned depth at GT size, None without GT
    relative: np.ndarray           #: the prediction at GT size (input size without GT)


def empty_metrics() -> dict[str, float]:
    return {key: math.nan for key in METRIC_COLUMNS}


def intrinsics_of(camera: PinholeCamera) -> tuple[float, float, float, float]:
    return camera.fx, camera.fy, camera.cx, camera.cy


def evaluate_frame(relative: np.ndarray, gt: np.ndarray | None,
                   camera: PinholeCamera | None,
                   params: EdgeMetricParams = EdgeMetricParams()) -> FrameEvaluation:
    """Metrics of a relative prediction; a prediction of another size is resized (nearest)
    to GT size first. ``camera`` must describe GT's size (edge metrics need it)."""
    metrics = empty_metrics()
    if gt is None:
        return FrameEvaluation(metrics, None, relative)
    relative = resize_nearest(relative, gt.shape[1], gt.shape[0])
    valid = np.isfinite(gt) & (gt > 0)
    if not valid.any():
        metrics['gt_pixels'] = 0
        return FrameEvaluation(metrics, None, relative)
    ransac = align_ransac_log(relative, gt, seed=params.ransac_seed)
    lsq = align_least_squares(relative, gt)
    for prefix, alignment in (('ransac_log', ransac), ('lsq', lsq)):
        values = depth_metrics(alignment.depth, gt)
        metrics.update({f'{prefix}_{k}': values[k] for k in _DEPTH_KEYS})
        metrics[f'{prefix}_scale'] = alignment.scale
        metrics[f'{prefix}_shift'] = alignment.shift
        metrics['gt_pixels'] = values['n_pixels']
    if camera is not None:
        intrinsics = intrinsics_of(camera)
        chamfer = edge_chamfer_distance(ransac.depth, gt, intrinsics, band_px=params.band_px)
        flying = flying_pixel_ratio(ransac.depth, gt, intrinsics, band_px=params.band_px,
                                    tau_rel=params.flying_tau_rel)
        metrics.update(edge_chamfer_m=chamfer.chamfer_m, edge_points=chamfer.n_points,
                       flying_pixel_ratio=flying.ratio, flying_band_pixels=flying.n_band)
    metrics = {k: float(v) for k, v in metrics.items()}
    return FrameEvaluation(metrics, ransac.depth.astype(np.float32), relative)
