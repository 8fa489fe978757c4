"""Metric alignment (ppd_ros.alignment) on synthetic scenes with sensor-like corruption."""
import numpy as np
import pytest

from ppd_ros.alignment import (LogAffineFit, RangeScale, TemporalScaleFilter, apply_log_affine,
                               fit_log_affine, resample_reference_to)

HEIGHT, WIDTH = 240, 320
FOCAL = 300.0
#: The unknown affine between PPD's normalised output and the scene's normalised log depth.
PRED_SCALE, PRED_SHIFT = 0.8, 0.1


def scene_depth(height=HEIGHT, width=WIDTH, focal=FOCAL):
    """Floor (camera 1.2 m up), slanted back wall 7..9 m, two boxes at 2.5 m and 4 m."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    v_centre = height / 2
    floor = np.where(v > v_centre + 1, 1.2 * focal / np.maximum(v - v_centre, 1e-9), np.inf)
    depth = np.minimum(floor, 7.0 + 2.0 * u / width)
    depth[(u > 0.3 * width) & (u < 0.5 * width) & (v > 0.35 * height) & (v < 0.7 * height)] = 2.5
    depth[(u > 0.65 * width) & (u < 0.85 * width) & (v > 0.45 * height) & (v < 0.8 * height)] = 4.0
    return depth


def discontinuity_pixels(depth, ratio=1.05):
    """Pixels whose 3x3 neighbourhood spans a depth step (max/min > ratio)."""
    padded = np.pad(depth, 1, mode='edge')
    windows = np.stack([padded[dy:dy + depth.shape[0], dx:dx + depth.shape[1]]
                        for dy in range(3) for dx in range(3)])
    return windows.max(axis=0) / windows.min(axis=0) > ratio, windows.min(0), windows.max(0)


def ppd_like_prediction(depth, rng, noise=0.005):
    """Normalised log(1 + d) (training normalisation with q2/q98), noise, unknown affine."""
    log_depth = np.log1p(depth)
    q2, q98 = np.quantile(log_depth, [0.02, 0.98])
    normalised = np.clip((log_depth - q2) / (q98 - q2), -0.5, 1.0)
    return (PRED_SCALE * (normalised + rng.normal(0, noise, depth.shape))
            + PRED_SHIFT).astype(np.float32)


def corrupt_reference(depth, rng):
    """Depth-sensor-like reference: flying pixels at edges, 1 % noise, 5 % outliers, 30 % holes."""
    ref = depth.copy()
    edges, near, far = discontinuity_pixels(depth)
    ref[edges] = near[edges] + rng.uniform(0.2, 0.8, edges.sum()) * (far - near)[edges]
    ref *= 1 + 0.01 * rng.normal(size=ref.shape)
    outliers = rng.random(ref.shape) < 0.05
    ref[outliers] = rng.uniform(0.3, 20.0, outliers.sum())
    ref[rng.random(ref.shape) < 0.30] = np.nan
    return ref, edges


def abs_rel(estimate, truth, where=None):
    where = np.ones(truth.shape, bool) if where is None else where
    where = where & np.isfinite(estimate)
    return float(np.mean(np.abs(estimate[where] - truth[where]) / truth[where]))


@pytest.fixture(scope='module')
def scene():
    rng = np.random.default_rng(7)
    truth = scene_depth()
    pred = ppd_like_prediction(truth, rng)
    ref, edges = corrupt_reference(truth, rng)
    return truth, pred, ref, edges


@pytest.mark.parametrize('method', ['ransac', 'huber'])
def test_corrupted_reference_gives_one_percent_abs_rel_on_all_pixels(scene, method):
    truth, pred, ref, _ = scene
    fit = fit_log_affine(pred, ref, method=method)
    assert fit.ok, fit.reason
    depth = apply_log_affine(pred, fit.a, fit.b)
    assert depth.dtype == np.float32 and np.all(np.isfinite(depth))
    assert abs_rel(depth, truth) <= 0.01
    assert 0.7 < fit.inlier_ratio < 0.99
    assert fit.residual < 0.03


def test_edge_pixels_take_the_clean_prediction_not_the_flying_reference(scene):
    truth, pred, ref, edges = scene
    fit = fit_log_affine(pred, ref)
    depth = apply_log_affine(pred, fit.a, fit.b)
    seen = edges & np.isfinite(ref)
    assert abs_rel(ref, truth, seen) > 0.15          # the sensor's flying pixels
    assert abs_rel(depth, truth, edges) < 0.015      # aligned prediction stays sharp


def test_sparse_reference_of_500_points(scene):
    truth, pred, ref, _ = scene
    rng = np.random.default_rng(3)
    sparse = np.full_like(ref, np.nan)
    chosen = rng.choice(np.flatnonzero(np.isfinite(ref)), 500, replace=False)
    sparse.flat[chosen] = ref.flat[chosen]
    fit = fit_log_affine(pred, sparse)
    assert fit.ok and fit.n_points == 500
    assert abs_rel(apply_log_affine(pred, fit.a, fit.b), truth) <= 0.02


def test_half_resolution_reference(scene):
    truth, pred, _, _ = scene
    rng = np.random.default_rng(5)
    low_res_truth = scene_depth(HEIGHT // 2, WIDTH // 2, FOCAL / 2)
    ref, _ = corrupt_reference(low_res_truth, rng)
    fit = fit_log_affine(pred, ref)
    assert fit.ok, fit.reason
    assert abs_rel(apply_log_affine(pred, fit.a, fit.b), truth) <= 0.01


def test_explicit_valid_mask_and_reference_range(scene):
    truth, pred, ref, _ = scene
    zeros_for_holes = np.nan_to_num(ref, nan=0.0)
    fit = fit_log_affine(pred, zeros_for_holes, valid=zeros_for_holes > 0, max_ref_m=12.0)
    assert fit.ok and abs_rel(apply_log_affine(pred, fit.a, fit.b), truth) <= 0.01


def test_fit_fails_with_reason_on_hopeless_input(scene):
    _, pred, ref, _ = scene
    empty = fit_log_affine(pred, np.full_like(ref, np.nan))
    assert not empty.ok and 'too few' in empty.reason
    noise = fit_log_affine(pred, np.random.default_rng(1).uniform(0.3, 20, ref.shape))
    assert not noise.ok and ('inlier ratio' in noise.reason or 'slope' in noise.reason)


def test_fit_is_deterministic_for_a_seed(scene):
    _, pred, ref, _ = scene
    assert fit_log_affine(pred, ref, seed=4) == fit_log_affine(pred, ref, seed=4)


def test_resample_reference_is_nearest_and_keeps_holes():
    ref = np.array([[1.0, 2.0], [np.nan, 4.0]], np.float32)
    up = resample_reference_to((4, 6), ref)
    assert up.shape == (4, 6)
    np.testing.assert_array_equal(up[:2, :3], 1.0)
    np.testing.assert_array_equal(up[:2, 3:], 2.0)
    assert np.all(np.isnan(up[2:, :3]))
    np.testing.assert_array_equal(up[2:, 3:], 4.0)
    down = resample_reference_to((1, 1), np.arange(16, dtype=np.float32).reshape(4, 4) + 1)
    assert down[0, 0] in np.arange(1, 17)       # a sample, not an average


def test_apply_log_affine_range_limits():
    pred = np.array([[0.0, 1.0, 2.0, np.nan]], np.float32)
    depth = apply_log_affine(pred, 1.0, 0.0, min_range=0.5, max_range=7.0)
    assert np.isnan(depth[0, 0]) and np.isnan(depth[0, 3])
    assert depth[0, 1] == pytest.approx(np.e - 1, rel=1e-6)
    assert depth[0, 2] == pytest.approx(np.e ** 2 - 1, rel=1e-6)
    assert np.isnan(apply_log_affine(pred, 1.0, 0.0, max_range=2.0)[0, 2])


def test_range_scale_maps_percentiles_to_near_and_far():
    rng = np.random.default_rng(0)
    truth = scene_depth()
    pred = ppd_like_prediction(truth, rng, noise=0.0)
    scale = RangeScale(near_m=1.0, far_m=10.0, stride=1)
    depth = scale.apply(pred)
    assert np.percentile(depth, 2) == pytest.approx(1.0, rel=1e-3)
    assert np.percentile(depth, 98) == pytest.approx(10.0, rel=1e-3)
    # With the true range, RangeScale approximately recovers the scene.
    q2, q98 = np.percentile(truth, [2, 98])
    assert abs_rel(RangeScale(q2, q98, stride=1).apply(pred), truth) < 0.03
    assert not RangeScale(1.0, 10.0).fit(np.zeros((8, 8))).ok


def fit_of(a, b=0.0, pred_median=1.0, ok=True, reason=''):
    return LogAffineFit(a, b, 1.0, 0.0, 100, ok, reason, pred_median)


def test_filter_smooths_fluctuating_fits():
    flt = TemporalScaleFilter(alpha=0.2)
    inputs = [2.0 * (1 + 0.05 * (-1) ** i) for i in range(40)]
    outputs = [flt.update(fit_of(a), stamp=i * 0.1).a for i, a in enumerate(inputs)]
    assert np.std(outputs[10:]) < 0.3 * np.std(inputs[10:])
    assert np.mean(outputs[10:]) == pytest.approx(2.0, rel=0.01)
    assert flt.state == ''


def test_filter_rejects_an_outlier_fit():
    flt = TemporalScaleFilter(max_relative_jump=0.25)
    for i in range(5):
        flt.update(fit_of(2.0), stamp=i)
    out = flt.update(fit_of(3.0), stamp=5)         # median depth e^3-1 vs e^2-1: +155 %
    assert out.valid and out.a == pytest.approx(2.0) and out.held_for == 1
    assert 'rejected' in out.reason
    back = flt.update(fit_of(2.0), stamp=6)
    assert back.valid and back.held_for == 0 and back.a == pytest.approx(2.0)


def test_filter_holds_then_reports_unavailable():
    flt = TemporalScaleFilter(hold_frames=3)
    first = flt.update(fit_of(2.0, 0.5))
    assert first.valid and (first.a, first.b) == (2.0, 0.5)
    failed = fit_of(float('nan'), ok=False, reason='too few reference points (3 < 20)')
    for frame in range(1, 4):
        out = flt.update(failed)
        assert out.valid and (out.a, out.b) == (2.0, 0.5) and out.held_for == frame
    out = flt.update(failed)
    assert not out.valid and np.isnan(out.a) and out.held_for == 4
    assert 'unavailable' in out.reason and 'too few reference points' in out.reason
    assert flt.state == out.reason and not flt.available
    assert flt.update(fit_of(2.0, 0.5)).valid


def test_filter_without_any_fit_is_unavailable():
    out = TemporalScaleFilter().update(fit_of(float('nan'), ok=False, reason='no reference'))
    assert not out.valid and 'no valid fit yet' in out.reason


def test_filter_resets_on_a_persistent_jump():
    flt = TemporalScaleFilter(reset_after=4, alpha=0.5)
    for _ in range(5):
        flt.update(fit_of(2.0))
    outputs = [flt.update(fit_of(3.0)) for _ in range(4)]
    assert all(o.a == pytest.approx(2.0) for o in outputs[:3])
    assert outputs[3].a == pytest.approx(3.0) and 'reset' in outputs[3].reason
    assert flt.update(fit_of(3.0)).a == pytest.approx(3.0)


def test_filter_resets_when_time_goes_backwards():
    flt = TemporalScaleFilter()
    flt.update(fit_of(2.0), stamp=10.0)
    out = flt.update(fit_of(3.0), stamp=1.0)
    assert out.valid and out.a == pytest.approx(3.0)


def test_one_far_future_stamp_does_not_reset_the_filter():
    """A lone corrupt stamp ahead of time, then a degenerate fit: the filter keeps its scale,
    rejects the bad fit and accepts the next correct one (a reset would have re-initialised
    from the bad fit and rejected the correct one)."""
    flt = TemporalScaleFilter(max_relative_jump=0.25)
    for i in range(5):
        flt.update(fit_of(2.0), stamp=100.0 + i * 0.1)
    flt.update(fit_of(2.0), stamp=4e9)                   # one stamp in the year 2096
    skewed = flt.update(fit_of(3.5), stamp=100.6)        # back on time, a skewed fit
    assert skewed.a == pytest.approx(2.0) and 'rejected' in skewed.reason
    correct = flt.update(fit_of(2.0), stamp=100.7)
    assert correct.valid and correct.held_for == 0 and correct.a == pytest.approx(2.0)
    looped = flt.update(fit_of(3.5), stamp=50.0)         # a real bag loop still resets
    assert looped.a == pytest.approx(3.5)


@pytest.mark.parametrize('size', [2, 3, 4, 5])
def test_range_scale_fits_tiny_images(size):
    pred = np.linspace(0.0, 1.0, size * size).reshape(size, size)
    fit = RangeScale(0.5, 10.0).fit(pred)
    assert fit.ok and fit.n_points == size * size


def test_range_scale_on_one_pixel_says_why_it_cannot_fit():
    fit = RangeScale(0.5, 10.0).fit(np.zeros((1, 1)))
    assert not fit.ok and '1 finite pixel(s)' in fit.reason and 'needs 2' in fit.reason


def test_filter_takes_the_next_fit_after_a_scene_change():
    flt = TemporalScaleFilter(alpha=0.3, reset_after=5)
    for _ in range(5):
        flt.update(fit_of(2.0))
    flt.scene_changed()
    out = flt.update(fit_of(3.0))           # would be rejected as an outlier otherwise
    assert out.valid and out.held_for == 0 and out.a == pytest.approx(3.0)
    assert 'scene changed' in out.reason
    # from then on the old guard is back: a lone jump is rejected, smoothing resumes
    assert 'rejected' in flt.update(fit_of(2.0)).reason
    assert flt.update(fit_of(3.1)).a == pytest.approx(0.7 * 3.0 + 0.3 * 3.1)


def test_filter_holds_through_failed_fits_after_a_scene_change():
    flt = TemporalScaleFilter(hold_frames=3)
    flt.update(fit_of(2.0))
    flt.scene_changed()
    held = flt.update(fit_of(float('nan'), ok=False, reason='no reference'))
    assert held.valid and held.a == pytest.approx(2.0) and held.held_for == 1
    assert flt.update(fit_of(3.0)).a == pytest.approx(3.0)  # the first good fit restarts
