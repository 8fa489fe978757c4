"""Scene-change detection and temporal smoothing of relative depth (ppd_ros.pipeline)."""
import cv2
import numpy as np
import pytest

from ppd_ros.pipeline.scene_change import DEFAULT_THRESHOLD, SceneChangeDetector
from ppd_ros.pipeline.temporal_smoothing import (RECOMMENDED, RelativeDepthSmoother,
                                                 TemporalDepth, TemporalSettings, fit_affine)
from ppd_ros.synthetic import generate_frame, generate_sequence

W, H = 128, 96


def normalised_log_depth(depth):
    """What a perfect PPD predicts: (log(1 + d) - q2) / (q98 - q2)."""
    log_depth = np.log1p(np.nan_to_num(depth, nan=20.0))
    q2, q98 = np.quantile(log_depth, [0.02, 0.98])
    return ((log_depth - q2) / (q98 - q2)).astype(np.float32)


@pytest.fixture(scope='module')
def walk():
    """14 frames of a camera moving ~1 cm and ~0.3 deg per frame through one room."""
    return list(generate_sequence(5, 14, W, H))


def test_scene_change_separates_camera_motion_from_another_room(walk):
    detector = SceneChangeDetector()
    first = detector.update(walk[0].rgb)
    assert first.changed and np.isnan(first.score)
    scores = [detector.update(f.rgb) for f in walk[1:]]
    assert all(not s.changed and s.score < DEFAULT_THRESHOLD / 2 for s in scores)
    for seed in (11, 12, 13):
        other = detector.update(generate_frame(seed, W, H).rgb)
        assert other.changed and other.score > 1.5 * DEFAULT_THRESHOLD
    detector.reset()
    assert detector.update(walk[0].rgb).changed
    brighter = np.clip(walk[0].rgb.astype(np.int32) * 5 // 4 + 10, 0, 255).astype(np.uint8)
    assert not detector.update(brighter).changed  # exposure is not a new scene


def test_smoothing_halves_the_noise_of_a_moving_camera(walk):
    rng = np.random.default_rng(0)
    smoother = RelativeDepthSmoother(0.8, 0.3)
    raw_error, smoothed_error = [], []
    for k, frame in enumerate(walk):
        truth = normalised_log_depth(frame.depth)
        noisy = truth + rng.normal(0.0, 0.02, truth.shape).astype(np.float32)
        smoothed = smoother.update(noisy, frame.rgb)
        if k >= 6:
            raw_error.append(np.abs(noisy - truth).mean())
            smoothed_error.append(np.abs(smoothed - truth).mean())
    assert smoother.blended_fraction > 0.8
    assert np.mean(smoothed_error) < 0.6 * np.mean(raw_error)


def test_motion_compensation_keeps_a_moving_view_sharp(walk):
    """Without noise the truth is the best output; warping keeps close to it, blending the
    unwarped previous frames (no gate here) smears the moving view."""
    errors = {}
    for compensate in (True, False):
        smoother = RelativeDepthSmoother(0.8, 10.0, motion_compensation=compensate)
        for frame in walk[::2]:
            truth = normalised_log_depth(frame.depth)
            out = smoother.update(truth, frame.rgb)
        errors[compensate] = np.abs(out - truth).mean()
    assert errors[True] < 0.7 * errors[False]


def test_a_region_that_changed_takes_the_new_prediction_at_once(walk):
    frame = walk[0]
    truth = normalised_log_depth(frame.depth)
    smoother = RelativeDepthSmoother(0.8, 0.3)
    for _ in range(5):
        smoother.update(truth, frame.rgb)
    moved = truth.copy()
    moved[20:50, 30:70] -= 0.4                 # something came closer
    out = smoother.update(moved, frame.rgb)
    np.testing.assert_array_equal(out[20:50, 30:70], moved[20:50, 30:70])
    np.testing.assert_allclose(out, moved, atol=1e-5)  # elsewhere nothing changed either


def test_restart_and_new_size_return_the_prediction_itself(walk):
    smoother = RelativeDepthSmoother(0.8, 0.3)
    a, b = (normalised_log_depth(f.depth) for f in walk[:2])
    smoother.update(a, walk[0].rgb)
    np.testing.assert_array_equal(smoother.update(b, walk[1].rgb, restart=True), b)
    small = np.zeros((H // 2, W // 2), np.float32)
    np.testing.assert_array_equal(
        smoother.update(small, walk[2].rgb[::2, ::2]), small)


def test_per_frame_normalisation_drift_is_followed_not_averaged(walk):
    frame = walk[0]
    base = normalised_log_depth(frame.depth)
    smoother = RelativeDepthSmoother(0.8, 0.3)
    for k in range(6):
        current = (1.0 + 0.05 * k) * base + 0.02 * k      # same scene, drifting affine
        out = smoother.update(current, frame.rgb)
    np.testing.assert_allclose(out, current, atol=2e-3)
    assert fit_affine(base, 1.3 * base - 0.1) == pytest.approx((1.3, -0.1), abs=1e-5)


def test_temporal_depth_restarts_at_a_scene_change_and_on_new_settings(walk):
    temporal = TemporalDepth()
    rng = np.random.default_rng(1)
    for frame in walk[:4]:
        noisy = normalised_log_depth(frame.depth) + rng.normal(0, 0.02, (H, W))
        out, status = temporal.update(noisy.astype(np.float32), frame.rgb, RECOMMENDED)
    assert not status.scene_changed and status.blended_fraction > 0.8
    assert not np.array_equal(out, noisy.astype(np.float32))
    other = generate_frame(99, W, H)
    new = normalised_log_depth(other.depth)
    out, status = temporal.update(new, other.rgb, RECOMMENDED)
    assert status.scene_changed and status.scene_score > DEFAULT_THRESHOLD
    np.testing.assert_array_equal(out, new)
    off = TemporalSettings(smoothing=0.0)
    out, status = temporal.update(new + 0.1, other.rgb, off)
    np.testing.assert_array_equal(out, new + 0.1)
    assert status.blended_fraction == 0.0


def test_settings_are_checked():
    with pytest.raises(ValueError):
        RelativeDepthSmoother(1.0, 0.2)
    with pytest.raises(ValueError):
        RelativeDepthSmoother(0.5, 0.0)
    with pytest.raises(ValueError):
        SceneChangeDetector(0.0)


def test_large_images_are_smoothed_at_the_working_size_and_keep_their_detail():
    frames = list(generate_sequence(5, 6, 640, 480))
    rng = np.random.default_rng(2)
    smoother = RelativeDepthSmoother(0.8, 0.3)
    raw, smoothed = [], []
    for k, frame in enumerate(frames):
        truth = normalised_log_depth(frame.depth)
        blotches = cv2.resize(rng.normal(0, 0.02, (15, 20)).astype(np.float32), (640, 480),
                              interpolation=cv2.INTER_CUBIC)      # flicker 32 px across
        out = smoother.update(truth + blotches, frame.rgb)
        assert out.shape == (480, 640)
        if k >= 3:
            raw.append(np.abs(blotches).mean())
            smoothed.append(np.abs(out - truth).mean())
    assert np.mean(smoothed) < 0.7 * np.mean(raw)
    # a one-pixel detail of the new frame survives (only the working-size change is added)
    dotted = truth + blotches
    dotted[100, 100] += 0.5
    out = smoother.update(dotted, frames[-1].rgb)
    assert out[100, 100] - out[100, 101] == pytest.approx(
        dotted[100, 100] - dotted[100, 101], abs=0.01)


def test_keep_edges_never_leaves_a_depth_between_two_surfaces():
    """A box edge in front of a wall, the view panning 2 px per frame: plain smoothing blends
    the edge the flow misplaces; with edges kept, every edge pixel is one of the two sides."""
    rng = np.random.default_rng(3)
    texture = rng.integers(0, 256, (60, 120, 3), dtype=np.uint8)
    outputs = {}
    for edges in (False, True):
        smoother = RelativeDepthSmoother(0.8, 0.3, edges=edges)
        for k in range(6):
            rgb = np.ascontiguousarray(np.roll(texture, 2 * k, axis=1))
            depth = np.full((60, 120), 0.8, np.float32)
            depth[:, 40 + 2 * k:80 + 2 * k] = 0.6      # the box moves with the view
            out = smoother.update(depth + rng.normal(0, 0.005, depth.shape).astype(np.float32),
                                  rgb)
        outputs[edges] = out
    between = [((o > 0.63) & (o < 0.77)).sum() for o in (outputs[False], outputs[True])]
    assert between[0] > 0 and between[1] == 0
    np.testing.assert_allclose(outputs[True][:, 60], 0.6, atol=0.03)
