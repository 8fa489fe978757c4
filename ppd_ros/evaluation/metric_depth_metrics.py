"""Metrics of a depth map that is already in metres (a metric depth node's output, or a depth
sensor's image), scored against GT as it is: no alignment.

    coverage            share of valid GT pixels where the depth is valid (finite, > 0)
    abs_rel, d05 .. d3  over the pixels valid in both (metrics.depth_metrics)
    gt_pixels           those pixels
    edge_chamfer_m, edge_points, flying_pixel_ratio, flying_band_pixels
                        edge-aware metrics (edge_chamfer, flying_pixels); need the intrinsics

A depth of another size than GT is resized (nearest) to GT size first. A depth with holes
scores its AbsRel on fewer pixels: read it together with coverage.
"""
from __future__ import annotations

import math

import numpy as np

from ppd_ros.evaluation.edge_chamfer import edge_chamfer_distance
from ppd_ros.evaluation.flying_pixels import flying_pixel_ratio
from ppd_ros.evaluation.frame_metrics import EdgeMetricParams, intrinsics_of
from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.geometry.camera_model import PinholeCamera
from ppd_ros.pipeline.depth_pipeline import resize_nearest

METRIC_DEPTH_KEYS = ('abs_rel', 'd05', 'd1', 'd2', 'd3', 'coverage', 'gt_pixels',
                     'edge_chamfer_m', 'edge_points', 'flying_pixel_ratio', 'flying_band_pixels')
#: Keys that count pixels / points rather than measure.
METRIC_DEPTH_COUNT_KEYS = ('gt_pixels', 'edge_points', 'flying_band_pixels')


def score_metric_depth(depth_m: np.ndarray, gt: np.ndarray, camera: PinholeCamera | None,
                       params: EdgeMetricParams = EdgeMetricParams()) -> dict[str, float]:
    """One value per METRIC_DEPTH_KEYS key (NaN when not computable); ``camera`` describes
    GT's size."""
    metrics = {key: math.nan for key in METRIC_DEPTH_KEYS}
    depth = resize_nearest(np.asarray(depth_m, dtype=np.float32), gt.shape[1], gt.shape[0])
    with np.errstate(invalid='ignore'):
        depth = np.where(depth > 0, depth, np.nan)
        gt_valid = np.isfinite(gt) & (gt > 0)
    if not gt_valid.any():
        metrics['gt_pixels'] = 0
        return metrics
    metrics['coverage'] = float(np.isfinite(depth[gt_valid]).mean())
    values = depth_metrics(depth, gt)
    metrics.update({key: values[key] for key in ('abs_rel', 'd05', 'd1', 'd2', 'd3')})
    metrics['gt_pixels'] = values['n_pixels']
    if camera is not None:
        intrinsics = intrinsics_of(camera)
        chamfer = edge_chamfer_distance(depth, gt, intrinsics, band_px=params.band_px)
        flying = flying_pixel_ratio(depth, gt, intrinsics, band_px=params.band_px,
                                    tau_rel=params.flying_tau_rel)
        metrics.update(edge_chamfer_m=chamfer.chamfer_m, edge_points=chamfer.n_points,
                       flying_pixel_ratio=flying.ratio, flying_band_pixels=flying.n_band)
    return {key: float(value) for key, value in metrics.items()}
