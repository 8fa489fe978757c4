"""Flicker (ppd_ros.evaluation.flicker) on synthetic camera walks with exact depth and poses."""
import numpy as np
import pytest

from ppd_ros.evaluation.flicker import correspondences, frame_flicker, sequence_flicker
from ppd_ros.geometry.rigid_transform import transform_matrix
from ppd_ros.synthetic import generate_sequence

W, H = 96, 72


@pytest.fixture(scope='module')
def walk():
    frames = list(generate_sequence(4, 6, W, H))
    poses = [transform_matrix(f.pose.world_from_optical, f.pose.position) for f in frames]
    intrinsics = (frames[0].intrinsics.fx, frames[0].intrinsics.fy, frames[0].intrinsics.cx,
                  frames[0].intrinsics.cy)
    return frames, poses, intrinsics


def test_correspondences_are_the_same_surface_points(walk):
    frames, poses, intrinsics = walk
    a, b = frames[0], frames[3]
    index_a, index_b = correspondences(a.depth, poses[0], b.depth, poses[3], intrinsics)
    assert index_a.size > 0.7 * np.isfinite(a.depth).sum()
    # the same object, and the two back-projected world points agree within the pixel size
    assert np.mean(a.object_id.ravel()[index_a] == b.object_id.ravel()[index_b]) > 0.97
    same = correspondences(a.depth, poses[0], a.depth, poses[0], intrinsics)
    np.testing.assert_array_equal(same[0], same[1])
    assert same[0].size == np.isfinite(a.depth).sum()


def test_exact_depth_has_no_flicker_and_a_constant_error_neither(walk):
    frames, poses, intrinsics = walk
    pairs = [frame_flicker(1.3 * frames[k].depth, frames[k].depth, poses[k],
                           1.3 * frames[k + 1].depth, frames[k + 1].depth, poses[k + 1],
                           intrinsics) for k in range(len(frames) - 1)]
    assert all(p.n_points > 1000 for p in pairs)
    assert sequence_flicker(pairs) == pytest.approx(0.0, abs=1e-6)


def test_flicker_measures_the_change_of_the_error(walk):
    frames, poses, intrinsics = walk
    a, b = frames[1], frames[2]
    scaled = frame_flicker(a.depth, a.depth, poses[1], 1.05 * b.depth, b.depth, poses[2],
                           intrinsics)
    assert scaled.flicker == pytest.approx(np.log(1.05), rel=1e-4)
    rng = np.random.default_rng(0)
    sigma = 0.02       # independent per frame: E|e_b - e_a| = 2 sigma / sqrt(pi)
    noisy = frame_flicker(a.depth * np.exp(rng.normal(0, sigma, a.depth.shape)), a.depth,
                          poses[1], b.depth * np.exp(rng.normal(0, sigma, b.depth.shape)),
                          b.depth, poses[2], intrinsics)
    assert noisy.flicker == pytest.approx(2 * sigma / np.sqrt(np.pi), rel=0.05)


def test_moved_objects_and_invalid_predictions_are_left_out(walk):
    frames, poses, intrinsics = walk
    a, b = frames[0], frames[1]
    moved = b.depth.copy()
    moved[20:40, 30:60] *= 0.7               # something else now stands there
    full = correspondences(a.depth, poses[0], b.depth, poses[1], intrinsics)[1]
    kept = correspondences(a.depth, poses[0], moved, poses[1], intrinsics)[1]
    rows, cols = np.divmod(kept, W)
    inside = (rows >= 20) & (rows < 40) & (cols >= 30) & (cols < 60)
    assert inside.sum() < 0.01 * 20 * 30  # (a point of frame a may happen to lie there)
    assert kept.size < full.size - 0.9 * 20 * 30
    pred = a.depth.copy()
    pred[:, :W // 2] = np.nan
    half = frame_flicker(pred, a.depth, poses[0], b.depth, b.depth, poses[1], intrinsics)
    assert 0 < half.n_points < 0.7 * full.size and half.flicker == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        frame_flicker(a.depth[:, :10], a.depth, poses[0], b.depth, b.depth, poses[1],
                      intrinsics)


def test_log_least_squares_alignment_recovers_an_affine_prediction(walk):
    from ppd_ros.evaluation.alignment_eval import align_log_least_squares
    frame = walk[0][0]
    pred = (np.log1p(frame.depth) - 0.3) / 1.7
    aligned = align_log_least_squares(pred, frame.depth)
    assert (aligned.scale, aligned.shift) == pytest.approx((1.7, 0.3), rel=1e-6)
    valid = np.isfinite(frame.depth)
    np.testing.assert_allclose(aligned.depth[valid], frame.depth[valid], rtol=1e-5)
