"""'fusion' metric mode (FusionScaler) and the four-row fusion comparison of the evaluation."""
import numpy as np
import pytest

from ppd_ros.evaluation.fusion_comparison import (COMPARISON_COLUMNS, COMPARISON_ROWS,
                                                  comparison_depths, comparison_table,
                                                  score_comparison)
from ppd_ros.evaluation.metric_depth_metrics import score_metric_depth
from ppd_ros.fusion.depth_fusion import SOURCE_EDGE, SOURCE_PPD, SOURCE_SENSOR
from ppd_ros.geometry.camera_model import camera_from_info_fields
from ppd_ros.pipeline.fusion_scaler import FusionScaler
from ppd_ros.pipeline.metric_scaler import ReferenceScaler, ScaleSettings
from ppd_ros.synthetic import DepthSensorModel, generate_frame

H, W = 60, 80
HOLD = 2


def scene():
    """Box at 1.5 m before a wall at 4 m; PPD-like normalised log depth; the colour image."""
    depth = np.full((H, W), 4.0, np.float32)
    depth[16:44, 30:50] = 1.5
    log_depth = np.log1p(depth)
    relative = ((log_depth - log_depth.min()) / np.ptp(log_depth)).astype(np.float32)
    rgb = np.full((H, W, 3), 90, np.uint8)
    rgb[16:44, 30:50] = (20, 180, 40)
    return depth, relative, rgb


def sensor_of(depth):
    sensor = depth.copy()
    sensor[:, :12] = np.nan                    # a hole
    sensor[20:40, 29] = 2.5                    # flying pixels at the box's left edge
    return sensor


def test_fusion_keeps_the_sensor_and_fills_the_rest_with_aligned_ppd():
    depth, relative, rgb = scene()
    sensor = sensor_of(depth)
    scaler = FusionScaler(ScaleSettings(hold_frames=HOLD))
    scaler.begin_frame(1.0, sensor, rgb=rgb, want_source=True)
    metres = scaler.to_metres(relative)
    assert scaler.status.available and scaler.status.mode == 'fusion'
    kept = np.isfinite(sensor)
    kept[20:40, 29] = False
    np.testing.assert_array_equal(metres[kept], sensor[kept])
    np.testing.assert_allclose(metres[:, :12], 4.0, rtol=0.01)
    np.testing.assert_allclose(metres[20:40, 29], 4.0, rtol=0.01)    # colour: the wall
    assert np.all(scaler.source[kept] == SOURCE_SENSOR)
    assert np.all(scaler.source[:, :12] == SOURCE_PPD)
    assert np.all(scaler.source[20:40, 29] == SOURCE_EDGE)
    assert scaler.timings['total'] > 0


def test_a_reference_of_another_size_is_paired_pixel_by_pixel():
    depth, relative, rgb = scene()
    scaler = FusionScaler(ScaleSettings())
    scaler.begin_frame(1.0, depth[::2, ::2], rgb=rgb)
    metres = scaler.to_metres(relative)
    assert metres.shape == (H, W)
    np.testing.assert_allclose(metres, depth, rtol=0.01)
    assert scaler.source is None                              # not asked for


def test_silent_reference_holds_like_reference_mode_then_stops():
    depth, relative, rgb = scene()
    fusion, reference = (FusionScaler(ScaleSettings(hold_frames=HOLD)),
                         ReferenceScaler(ScaleSettings(hold_frames=HOLD)))
    for scaler in (fusion, reference):
        scaler.begin_frame(0.0, sensor_of(depth))
        assert scaler.to_metres(relative) is not None
    for frame in range(1, HOLD + 2):
        outputs = []
        for scaler in (fusion, reference):
            scaler.begin_frame(float(frame), None, 'no depth_reference received yet')
            outputs.append(scaler.to_metres(relative))
        assert fusion.status.state == reference.status.state
        assert fusion.status.reason == reference.status.reason
        if frame <= HOLD:      # held: aligned PPD alone, as reference mode publishes
            np.testing.assert_array_equal(outputs[0], outputs[1])
        else:
            assert outputs == [None, None]
            assert 'unavailable' in fusion.status.reason
            assert 'no depth_reference received yet' in fusion.status.reason


def test_comparison_rows_and_scores_on_a_synthetic_room():
    frame = generate_frame(1_000_001, 160, 120)
    exact = np.where(frame.valid, frame.depth, np.nan).astype(np.float32)
    sensor = DepthSensorModel(hole_size_px=8).corrupt(exact, 0)
    log_depth = np.log1p(np.where(frame.valid, frame.depth, 20.0))
    relative = ((log_depth - log_depth.min()) / np.ptp(log_depth)).astype(np.float32)
    depths = comparison_depths(relative, sensor, frame.rgb)
    assert set(depths) == set(COMPARISON_ROWS)
    info = frame.camera_info
    camera = camera_from_info_fields(info.k, info.p, info.width, info.height)
    scores = score_comparison(depths, exact, camera)
    assert set(scores) == set(COMPARISON_COLUMNS)
    alone = score_metric_depth(sensor, exact, camera)
    assert scores['sensor_abs_rel'] == pytest.approx(alone['abs_rel'])
    assert scores['sensor_flying_pixel_ratio_sensor_valid'] == pytest.approx(
        alone['flying_pixel_ratio'])
    assert scores['sensor_edge_chamfer_m_sensor_valid'] == pytest.approx(
        alone['edge_chamfer_m'])
    # the fused depth on the sensor's pixels: its flying pixels are repaired
    assert (scores['fused_edge_chamfer_m_sensor_valid']
            < scores['sensor_edge_chamfer_m_sensor_valid'])
    for row in ('fused', 'fused_inpainting', 'ppd_aligned'):
        assert scores[f'{row}_coverage'] == pytest.approx(1.0, abs=1e-3)
    assert scores['sensor_coverage'] < 0.8
    assert (scores['fused_flying_pixel_ratio_sensor_valid']
            < 0.75 * scores['sensor_flying_pixel_ratio_sensor_valid'])
    table = comparison_table({k: v for k, v in scores.items()}, frames=1)
    assert table.count('\n| ') == 4 and 'ppd_ros fused' in table and 'inpainting' in table


def test_comparison_without_a_fit_leaves_the_ppd_rows_empty():
    depth, relative, rgb = scene()
    depths = comparison_depths(relative, np.full((H, W), np.nan, np.float32), rgb)
    assert depths['fused'] is None and depths['ppd_aligned'] is None
    scores = score_comparison(depths, depth, None)
    assert np.isnan(scores['fused_abs_rel']) and scores['sensor_coverage'] == 0.0
    assert 'n/a' in comparison_table(scores)
