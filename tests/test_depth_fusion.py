"""Depth-sensor fusion (ppd_ros.fusion): kept sensor, local correction, surface snapping."""
import numpy as np
import pytest

from ppd_ros.evaluation.flying_pixels import flying_pixel_ratio
from ppd_ros.fusion.depth_fusion import (SOURCE_EDGE, SOURCE_NONE, SOURCE_PPD, SOURCE_SENSOR,
                                         FusionSettings, fuse_depth, kept_sensor,
                                         sharpen_steps)
from ppd_ros.fusion.local_correction import correction_fields
from ppd_ros.fusion.sensor_inpainting import inpaint_sensor_log
from ppd_ros.synthetic import DepthSensorModel, generate_frame

H, W = 60, 80
NEAR, FAR = 1.0, 3.0


def box_scene(height=H, width=W):
    """A box at 1 m (columns 30..49, rows 15..44) in front of a wall at 3 m; colour follows
    depth (box red, wall grey), exactly as in the depth."""
    depth = np.full((height, width), FAR, np.float32)
    rows, cols = slice(height // 4, 3 * height // 4), slice(3 * width // 8, 5 * width // 8)
    depth[rows, cols] = NEAR
    rgb = np.full((height, width, 3), 120, np.uint8)
    rgb[rows, cols] = (200, 30, 30)
    return depth, rgb


def ppd_log_of(depth, scale=1.1, shift=0.05):
    """PPD-like log(1 + m) that is off: a global scale and offset error."""
    return (scale * np.log1p(depth) + shift).astype(np.float32)


def test_kept_sensor_drops_flying_pixels_and_invalid_depth():
    depth, _ = box_scene()
    sensor = depth.copy()
    sensor[30, 29] = 2.0                   # between the box (1 m) and the wall (3 m)
    sensor[10, 10] = np.nan
    sensor[12, 10] = 0.05                  # below min_m
    noisy = sensor * (1 + 0.01 * np.random.default_rng(0).standard_normal(sensor.shape))
    kept = kept_sensor(noisy.astype(np.float32), 0.1, 20.0, 0.04) > 0
    assert not kept[30, 29] and not kept[10, 10] and not kept[12, 10]
    assert kept[30, 28] and kept[30, 30]   # both surfaces beside it are kept
    assert kept.mean() > 0.99


def test_kept_sensor_pixels_are_the_sensor_and_holes_get_corrected_ppd():
    depth, rgb = box_scene()
    sensor = depth.copy()
    sensor[:, :8] = np.nan                 # a hole over the wall
    ppd_log = ppd_log_of(depth)
    fused = fuse_depth(ppd_log, sensor, rgb, with_source=True)
    kept = np.isfinite(sensor)
    np.testing.assert_array_equal(fused.depth_m[kept], sensor[kept])
    assert np.all(fused.source[kept] == SOURCE_SENSOR)
    assert np.all(fused.source[~kept] == SOURCE_PPD)
    # PPD alone is 10 % off in log depth; corrected to the sensor it lands on the wall
    assert np.abs(np.expm1(ppd_log[:, :8]) / FAR - 1).min() > 0.1
    np.testing.assert_allclose(fused.depth_m[:, :8], FAR, rtol=0.02)


def test_flying_pixels_and_holes_at_an_edge_go_to_one_surface():
    depth, rgb = box_scene()
    sensor = depth.copy()
    sensor[:, 28:31] = np.nan              # a hole across the box's left edge (column 30)
    sensor[20:40, 49] = 2.0                # flying pixels along its right edge
    sensor[20:40, 50] = 2.5
    ppd_log = ppd_log_of(depth)
    ppd_log[:, 26:34] = ppd_log_of(np.full((H, 8), 2.0, np.float32))  # PPD blurred there
    fused = fuse_depth(ppd_log, sensor, rgb, with_source=True)
    for columns in (slice(28, 31), slice(49, 51)):
        values = fused.depth_m[15:45, columns]
        on_box = np.abs(values - NEAR) < 0.02
        on_wall = np.abs(values - FAR) < 0.06
        assert np.all(on_box | on_wall)            # never between the two surfaces
    assert np.all(np.abs(fused.depth_m[15:45, 30] - NEAR) < 0.02)   # colour: box
    assert np.all(np.abs(fused.depth_m[15:45, 28:30] - FAR) < 0.06)  # colour: wall
    assert np.all(np.abs(fused.depth_m[20:40, 50] - FAR) < 0.06)
    assert np.all(fused.source[20:40, 49:51] == SOURCE_EDGE)
    assert np.all(fused.source[15:45, 28:31] == SOURCE_EDGE)


def test_a_blurred_step_of_ppd_inside_a_hole_becomes_a_step():
    """No sensor anywhere near the box: PPD's ramp between box and wall is split between
    the two surfaces, never left between them."""
    depth, rgb = box_scene(240, 320)           # box: rows 60..179, columns 120..199
    sensor = depth.copy()
    sensor[:, 80:240] = np.nan                 # the whole box and its edges: a sensor hole
    ppd_log = ppd_log_of(depth, scale=1.0)     # only an offset: the wall alone corrects it
    near, far = ppd_log[100, 150], ppd_log[100, 20]
    ppd_log[:, 119:122] = np.linspace(far, near, 5)[1:-1]  # PPD blurred over 3 px
    fused = fuse_depth(ppd_log, sensor, rgb, with_source=True)
    values = fused.depth_m[60:180, 119:122]
    on_box, on_wall = np.abs(values - NEAR) < 0.05, np.abs(values - FAR) < 0.15
    assert np.all(on_box | on_wall) and on_box.any() and on_wall.any()
    assert np.all(fused.source[60:180, 119:122] == SOURCE_EDGE)


def test_sharpen_steps_moves_only_pixels_between_two_surfaces():
    log_depth = np.array([[1.0, 1.0, 1.4, 1.6, 2.0, 2.0, 2.02]], np.float32)
    where = np.ones(log_depth.shape, bool)
    where[0, 3] = False                       # left alone
    moved = sharpen_steps(log_depth, where, 2, 0.05)
    np.testing.assert_array_equal(moved, [[False, False, True, False, False, False, False]])
    np.testing.assert_allclose(log_depth, [[1.0, 1.0, 1.0, 1.6, 2.0, 2.0, 2.02]])


def test_sparse_reference_gives_locally_corrected_ppd():
    """A few hundred LiDAR-like points: everything else is PPD corrected to them, and that
    correction is local (a shape error of PPD is removed where points are)."""
    frame = generate_frame(1_000_004, 160, 120)
    exact = np.where(frame.valid, frame.depth, np.nan).astype(np.float32)
    far = np.nanmax(exact)
    rows = np.linspace(0, 1, 120, dtype=np.float32)[:, None]
    ppd_log = np.log1p(np.where(frame.valid, frame.depth, far)) * (1.0 + 0.15 * rows)
    rng = np.random.default_rng(0)
    points = rng.choice(np.flatnonzero(frame.valid), 400, replace=False)
    sparse = np.full(exact.shape, np.nan, np.float32)
    sparse.flat[points] = exact.flat[points]
    fused = fuse_depth(ppd_log.astype(np.float32), sparse, frame.rgb, with_source=True)
    valid = frame.valid
    assert np.isfinite(fused.depth_m[valid]).all()
    assert (fused.source == SOURCE_SENSOR).sum() == 400
    global_fit = np.polyfit(ppd_log.flat[points], np.log1p(exact.flat[points]), 1)
    globally = np.expm1(np.polyval(global_fit, ppd_log))
    error = np.abs(fused.depth_m - exact)[valid] / exact[valid]
    global_error = np.abs(globally - exact)[valid] / exact[valid]
    assert error.mean() < 0.6 * global_error.mean()


def test_a_hole_wider_than_every_window_falls_back_to_one_global_offset():
    rows, cols = np.mgrid[0:120, 0:160].astype(np.float32)
    depth = 2.0 + 0.01 * cols
    sensor = depth.copy()
    sensor[:, 40:120] = np.nan
    ppd_log = np.log1p(depth) + np.float32(0.1)              # PPD's shape right, offset off
    slope, shift = correction_fields(ppd_log, np.log1p(sensor), np.isfinite(sensor), (3, 8))
    assert np.allclose(slope[:, 70:90], 1.0) and np.allclose(shift[:, 70:90], -0.1, atol=1e-4)
    fused = fuse_depth(ppd_log, sensor)
    np.testing.assert_allclose(fused.depth_m, depth, rtol=1e-3)


def test_full_resolution_composition_matches_the_working_grid_result():
    """A 320 px wide working grid under a 4x larger image: kept sensor pixels stay exact at
    full resolution, holes and edges come out as at the working size."""
    depth, rgb = box_scene(240, 320)
    sensor = depth.copy()
    sensor[:, 110:130] = np.nan
    ppd_log = ppd_log_of(depth)
    small = fuse_depth(ppd_log, sensor, rgb)
    big_depth, big_rgb = box_scene(960, 1280)
    big_sensor = big_depth.copy()
    big_sensor[:, 440:520] = np.nan
    big = fuse_depth(ppd_log_of(big_depth), big_sensor, big_rgb, with_source=True)
    kept = np.isfinite(big_sensor)
    np.testing.assert_array_equal(big.depth_m[kept], big_sensor[kept])
    assert {'working_grid', 'full_resolution', 'total'} <= set(big.timings)
    np.testing.assert_allclose(big.depth_m[::4, ::4], small.depth_m, rtol=0.02)
    values = big.depth_m[240:720, 440:520] / np.float32(NEAR)
    assert np.all((np.abs(values - 1) < 0.05) | (np.abs(values - FAR / NEAR) < 0.15))


def test_out_of_range_depth_is_invalid_and_counted_as_none():
    depth, rgb = box_scene()
    sensor = depth.copy()
    sensor[:, :10] = np.nan
    ppd_log = ppd_log_of(depth)
    fused = fuse_depth(ppd_log, sensor, rgb, FusionSettings(max_m=2.5), with_source=True)
    assert np.all(np.isnan(fused.depth_m[:, :10])) and np.all(fused.source[:, :10] == SOURCE_NONE)
    assert np.all(np.isnan(fused.depth_m[:, 60:]))     # the 3 m wall is out of range


def test_synthetic_room_with_the_demo_sensor():
    """The demo's corruption on a held-out room; PPD stands in as the exact depth with a
    shape error: fusion covers everything, beats the sensor's flying pixels, and keeps
    the sensor's accuracy."""
    frame = generate_frame(1_000_002, 160, 120)
    exact = np.where(frame.valid, frame.depth, np.nan).astype(np.float32)
    sensor = DepthSensorModel(hole_size_px=8).corrupt(exact, 0)
    rows = np.linspace(-1, 1, 120, dtype=np.float32)[:, None]
    ppd_log = np.log1p(np.where(frame.valid, frame.depth, 20)) * (1 + 0.05 * rows) + 0.1
    fused = fuse_depth(ppd_log.astype(np.float32), sensor, frame.rgb).depth_m
    i = frame.intrinsics
    intrinsics = (i.fx, i.fy, i.cx, i.cy)
    valid = frame.valid
    assert np.isfinite(fused[valid]).all()
    sensed = np.isfinite(sensor)
    fly_sensor = flying_pixel_ratio(sensor, exact, intrinsics).ratio
    fly_fused = flying_pixel_ratio(np.where(sensed, fused, np.nan), exact, intrinsics).ratio
    assert fly_fused < 0.6 * fly_sensor
    error = np.abs(fused - exact)[valid] / exact[valid]
    assert error.mean() < 0.02


def test_inpainting_baseline_fills_the_holes_from_the_kept_sensor():
    depth, _ = box_scene()
    sensor = depth.copy()
    sensor[5:12, 5:12] = np.nan
    sensor[30, 29] = 2.0                    # a flying pixel is not a source
    filled = np.expm1(inpaint_sensor_log(sensor))
    np.testing.assert_allclose(filled[5:12, 5:12], FAR, rtol=1e-3)
    assert abs(filled[30, 29] - 2.0) > 0.1              # re-estimated from its neighbours
    kept = np.isfinite(sensor)
    kept[30, 29] = False
    np.testing.assert_allclose(filled[kept], sensor[kept], rtol=1e-5)


def test_settings_are_checked():
    with pytest.raises(ValueError, match='radii'):
        FusionSettings(radii=())
    with pytest.raises(ValueError, match='min_m'):
        FusionSettings(min_m=5.0, max_m=1.0)
    with pytest.raises(ValueError, match='same'):
        fuse_depth(np.zeros((4, 4), np.float32), np.zeros((4, 5), np.float32))
