"""Metric scalers' per-frame state machine: fit -> filter -> clipped metres, hold, recovery."""
import numpy as np
import pytest

from ppd_ros.pipeline.metric_scaler import (RangeScaler, ReferenceScaler, ScaleSettings,
                                            metric_scaler_for_mode)

H, W = 60, 80
HOLD = 3


def room_depth():
    """Floor (camera 1 m up, focal 60 px) meeting a wall at 5 m, a box at 2 m."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    floor = np.where(v > H / 2, 1.0 * 60 / np.maximum(v - H / 2, 1e-9), np.inf)
    depth = np.minimum(floor, 5.0)
    depth[10:30, 20:40] = 2.0
    return depth


def ppd_like(depth, scale=0.9, shift=0.05):
    """PPD's normalised log(1 + d) under an affine the scaler does not know."""
    log_depth = np.log1p(depth)
    q2, q98 = np.quantile(log_depth, [0.02, 0.98])
    return (scale * np.clip((log_depth - q2) / (q98 - q2), -0.5, 1.0) + shift).astype(np.float32)


@pytest.fixture
def scene():
    depth = room_depth()
    return depth, ppd_like(depth)


def reference_scaler(**settings):
    return ReferenceScaler(ScaleSettings(hold_frames=HOLD, **settings))


def test_reference_fit_gives_metres_everywhere_even_in_reference_holes(scene):
    depth, pred = scene
    rng = np.random.default_rng(0)
    reference = depth * (1 + 0.01 * rng.normal(size=depth.shape))
    reference[:, :W // 2] = np.nan  # the left half of the reference is missing
    scaler = reference_scaler()
    # half resolution, registered: reference pixel r covers prediction rows 2r, 2r + 1
    scaler.begin_frame(10.0, reference[1::2, 1::2])
    metres = scaler.to_metres(pred)
    status = scaler.status
    assert status.available and status.state == 'tracking' and status.held_for == 0
    assert status.fit.ok and status.fit.inlier_ratio > 0.9 and status.fit.n_points > 100
    unclipped = depth < np.quantile(depth, 0.98)  # PPD saturates its farthest 2 %
    rel_error = np.abs(metres - depth) / depth
    assert np.all(np.isfinite(metres))
    assert np.max(rel_error[unclipped]) < 0.03
    assert np.median(rel_error[:, :W // 2]) < 0.01  # where the reference had holes


def test_missing_reference_holds_the_scale_then_stops_with_the_reason(scene):
    depth, pred = scene
    scaler = reference_scaler()
    scaler.begin_frame(0.0, depth)
    first = scaler.to_metres(pred)
    for k in range(1, HOLD + 1):
        scaler.begin_frame(0.1 * k, None, 'no depth_reference within 0.02 s of the image stamp')
        held = scaler.to_metres(pred)
        np.testing.assert_array_equal(held, first)  # the last good scale, unchanged
        assert scaler.status.state == 'holding' and scaler.status.held_for == k
        assert 'no depth_reference within 0.02 s' in scaler.status.reason
    scaler.begin_frame(0.1 * (HOLD + 1), None, 'no depth_reference within 0.02 s of the image '
                                                'stamp')
    assert scaler.to_metres(pred) is None
    status = scaler.status
    assert status.state == 'unavailable' and status.held_for == HOLD + 1
    assert 'metric scale unavailable' in status.reason
    assert 'no depth_reference within 0.02 s' in status.reason
    assert np.isnan(status.a) and scaler.inlier_mask(pred) is None
    # recovery: the next good reference brings metres back at once
    scaler.begin_frame(1.0, depth)
    assert scaler.to_metres(pred) is not None
    assert scaler.status.state == 'tracking' and scaler.status.held_for == 0


def test_unusable_reference_is_a_failed_fit_with_its_reason(scene):
    depth, pred = scene
    rng = np.random.default_rng(1)
    scaler = reference_scaler(min_inlier_ratio=0.5)
    scaler.begin_frame(0.0, rng.uniform(0.5, 10.0, depth.shape))  # unrelated to the scene
    assert scaler.to_metres(pred) is None
    assert 'no valid fit yet' in scaler.status.reason
    assert 'inlier ratio' in scaler.status.reason and not scaler.status.fit.ok


def test_zero_hold_stops_at_the_first_failure(scene):
    depth, pred = scene
    scaler = ReferenceScaler(ScaleSettings(hold_frames=0))
    scaler.begin_frame(0.0, depth)
    assert scaler.to_metres(pred) is not None
    scaler.begin_frame(0.1, None, 'no depth_reference received yet')
    assert scaler.to_metres(pred) is None


@pytest.mark.parametrize('mode', ['range', 'reference'])
def test_metric_depth_outside_min_max_is_invalid(scene, mode):
    depth, pred = scene
    scaler = metric_scaler_for_mode(mode, ScaleSettings(range_near_m=1.0, range_far_m=5.0,
                                                        min_m=1.5, max_m=4.0))
    scaler.begin_frame(0.0, *(() if mode == 'range' else (depth,)))
    metres = scaler.to_metres(pred)
    finite = metres[np.isfinite(metres)]
    assert finite.min() >= 1.5 * (1 - 1e-6) and finite.max() <= 4.0 * (1 + 1e-6)  # float32
    assert 0.2 < np.isnan(metres).mean() < 0.9  # the near floor and the wall are cut off


def test_range_mode_smooths_percentile_jitter(scene):
    _, pred = scene
    scaler = RangeScaler(ScaleSettings(1.0, 5.0, smoothing=0.5))
    scaler.begin_frame(0.0)
    scaler.to_metres(pred)
    a0 = scaler.status.a
    scaler.begin_frame(0.1)
    scaler.to_metres(pred * 1.1)  # percentiles 10 % wider: the frame's own a is a0 / 1.1
    assert scaler.status.fit.a == pytest.approx(a0 / 1.1, rel=1e-6)
    assert scaler.status.a == pytest.approx(0.5 * a0 + 0.5 * a0 / 1.1, rel=1e-6)


def test_inlier_mask_marks_reference_pixels_that_agree(scene):
    depth, pred = scene
    reference = depth.copy()
    reference[:10] = np.nan          # holes
    reference[40:, :10] *= 1.5       # a wrong patch (e.g. reflections)
    scaler = reference_scaler()
    scaler.begin_frame(0.0, reference)
    scaler.to_metres(pred)
    mask = scaler.inlier_mask(pred[::2, ::2])  # at the output size, e.g. output_scale 0.5
    assert mask.shape == (H // 2, W // 2) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 255}
    assert np.all(mask[:5] == 0) and np.all(mask[20:, :5] == 0)
    assert (mask[5:20] == 255).mean() > 0.9


def test_stamp_going_back_restarts_the_filter(scene):
    depth, pred = scene
    scaler = reference_scaler()
    scaler.begin_frame(5.0, depth)
    scaler.to_metres(pred)
    scaler.begin_frame(1.0, None, 'no depth_reference received yet')
    assert scaler.to_metres(pred) is None  # nothing to hold after the reset
