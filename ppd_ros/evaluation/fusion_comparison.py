"""What fusion adds, frame by frame: four metric depths of one frame, scored against GT.

    sensor            the depth sensor's registered depth, as it comes
    fused             depth.mode fusion (FusionScaler: the reference fit, then fuse_depth)
    fused_inpainting  the same fusion with PPD replaced by plain inpainting of the sensor
                      (sensor_inpainting): what the fusion achieves without the model
    ppd_aligned       depth.mode reference: PPD alone, with the same fit

Each frame gets its own fit (a fresh scaler), so a frame's scores do not depend on the frames
before it (offline runs resume; rooms are independent); the node also smooths the fit over
time (TemporalScaleFilter). Scores are metric_depth_metrics' (no alignment to GT) plus
`flying_pixel_ratio_sensor_valid` and `edge_chamfer_m_sensor_valid`: the same scores on the
GT edge band restricted to the pixels where the sensor has depth, i.e. where the sensor
itself can be compared (the plain scores of a depth that fills the sensor's holes also count
the edges inside them, which the sensor's do not).
"""
from __future__ import annotations

import math

import numpy as np

from ppd_ros.alignment import apply_log_affine
from ppd_ros.evaluation.edge_chamfer import edge_chamfer_distance
from ppd_ros.evaluation.flying_pixels import flying_pixel_ratio
from ppd_ros.evaluation.frame_metrics import EdgeMetricParams, intrinsics_of
from ppd_ros.evaluation.metric_depth_metrics import (METRIC_DEPTH_COUNT_KEYS,
                                                     METRIC_DEPTH_KEYS, score_metric_depth)
from ppd_ros.fusion.depth_fusion import FusionSettings, fuse_depth
from ppd_ros.fusion.sensor_inpainting import inpaint_sensor_log
from ppd_ros.geometry.camera_model import PinholeCamera
from ppd_ros.pipeline.depth_pipeline import resize_nearest
from ppd_ros.pipeline.fusion_scaler import FusionScaler
from ppd_ros.pipeline.metric_scaler import ScaleSettings

COMPARISON_ROWS = ('sensor', 'fused', 'fused_inpainting', 'ppd_aligned')
ROW_LABELS = {
    'sensor': 'RGB-D sensor depth (input)',
    'fused': 'ppd_ros fused (depth.mode fusion)',
    'fused_inpainting': 'same fusion, PPD replaced by inpainting',
    'ppd_aligned': 'PPD alone, aligned (depth.mode reference)',
}
SENSOR_VALID_KEYS = ('flying_pixel_ratio_sensor_valid', 'flying_band_pixels_sensor_valid',
                     'edge_chamfer_m_sensor_valid')
SCORE_KEYS = METRIC_DEPTH_KEYS + SENSOR_VALID_KEYS
COUNT_KEYS = METRIC_DEPTH_COUNT_KEYS + ('flying_band_pixels_sensor_valid',)
#: Per-frame columns, row by row.
COMPARISON_COLUMNS = tuple(f'{row}_{key}' for row in COMPARISON_ROWS for key in SCORE_KEYS)
COMPARISON_COUNT_COLUMNS = tuple(f'{row}_{key}' for row in COMPARISON_ROWS
                                 for key in COUNT_KEYS)


def comparison_depths(relative: np.ndarray, sensor_m: np.ndarray, rgb: np.ndarray | None,
                      scale: ScaleSettings = ScaleSettings(),
                      fusion: FusionSettings = FusionSettings()) -> dict[str, np.ndarray | None]:
    """{row: float32 metres at the prediction's size, NaN invalid} (the sensor at its own
    size); fused and ppd_aligned are None when the fit fails."""
    scaler = FusionScaler(scale, fusion)
    scaler.begin_frame(None, sensor_m, rgb=rgb)
    fused = scaler.to_metres(relative)
    status = scaler.status
    aligned = (apply_log_affine(relative, status.a, status.b, scale.min_m, scale.max_m)
               if status.available else None)
    sensor = resize_nearest(np.asarray(sensor_m, np.float32), relative.shape[1],
                            relative.shape[0])
    settings = scaler.fusion
    inpainted = inpaint_sensor_log(sensor, settings.flying_step, settings.min_m,
                                   settings.max_m)
    guide = rgb if rgb is not None and rgb.shape[:2] == relative.shape else None
    return {'sensor': np.asarray(sensor_m, np.float32), 'fused': fused,
            'fused_inpainting': fuse_depth(inpainted, sensor, guide, settings).depth_m,
            'ppd_aligned': aligned}


def score_comparison(depths: dict[str, np.ndarray | None], gt: np.ndarray,
                     camera: PinholeCamera | None,
                     params: EdgeMetricParams = EdgeMetricParams()) -> dict[str, float]:
    """{'<row>_<score>': value} for COMPARISON_COLUMNS; ``camera`` describes GT's size."""
    height, width = gt.shape
    sensor = resize_nearest(depths['sensor'], width, height)
    with np.errstate(invalid='ignore'):
        sensor_valid = np.isfinite(sensor) & (sensor > 0)
    scores = {}
    for row in COMPARISON_ROWS:
        depth = depths[row]
        values = dict.fromkeys(SCORE_KEYS, math.nan)
        if depth is not None:
            depth = resize_nearest(np.asarray(depth, np.float32), width, height)
            values.update(score_metric_depth(depth, gt, camera, params))
            if camera is not None:
                where_sensed = np.where(sensor_valid, depth, np.nan)
                intrinsics = intrinsics_of(camera)
                flying = flying_pixel_ratio(where_sensed, gt, intrinsics,
                                            band_px=params.band_px,
                                            tau_rel=params.flying_tau_rel)
                chamfer = edge_chamfer_distance(where_sensed, gt, intrinsics,
                                                band_px=params.band_px)
                values.update(flying_pixel_ratio_sensor_valid=flying.ratio,
                              flying_band_pixels_sensor_valid=flying.n_band,
                              edge_chamfer_m_sensor_valid=chamfer.chamfer_m)
        scores.update({f'{row}_{key}': float(value) for key, value in values.items()})
    return scores


#: Table columns: (score key, title, format, scale).
TABLE_SCORES = (('coverage', 'coverage', '{:.1%}', 1.0), ('abs_rel', 'AbsRel', '{:.4f}', 1.0),
                ('d1', 'δ1', '{:.4f}', 1.0),
                ('flying_pixel_ratio', 'flying px', '{:.1%}', 1.0),
                ('flying_pixel_ratio_sensor_valid', 'flying px (sensor-valid)', '{:.1%}', 1.0),
                ('edge_chamfer_m', 'edge Chamfer', '{:.1f} mm', 1e3),
                ('edge_chamfer_m_sensor_valid', 'edge Chamfer (sensor-valid)', '{:.1f} mm',
                 1e3))


def comparison_table(means: dict[str, float], frames: int | None = None) -> str:
    """A markdown table of the four rows from mean scores ('<row>_<score>' keys)."""
    head = '| depth | ' + ' | '.join(title for _, title, _, _ in TABLE_SCORES) + ' |'
    lines = [head, '|---|' + '---:|' * len(TABLE_SCORES)]
    for row in COMPARISON_ROWS:
        cells = []
        for key, _, fmt, factor in TABLE_SCORES:
            value = means.get(f'{row}_{key}', math.nan)
            cells.append(fmt.format(value * factor) if math.isfinite(value) else 'n/a')
        lines.append(f'| {ROW_LABELS[row]} | ' + ' | '.join(cells) + ' |')
    if frames is not None:
        lines.append(f'\nmeans over {frames} frame(s)')
    return '\n'.join(lines)
