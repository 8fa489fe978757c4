"""Evaluation metrics (ppd_ros.evaluation): alignment, AbsRel/delta, edge Chamfer, flying pixels."""
import cv2
import numpy as np
import pytest

from ppd_ros.evaluation.edge_band import depth_edge_band
from ppd_ros.evaluation.metrics import (align_least_squares, align_ransac_log, chamfer_distance,
                                        depth_metrics, edge_chamfer_distance,
                                        evaluate_relative_prediction, flying_pixel_ratio)
from ppd_ros.evaluation.nearest_neighbour import nearest_neighbour_distances

HEIGHT, WIDTH = 240, 320
INTRINSICS = (300.0, 300.0, 160.0, 120.0)


def scene_depth():
    """Floor (camera 1.2 m up) meeting a slanted wall at 7..9 m, a box at 2.5 m."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    floor = np.where(v > 121, 1.2 * 300.0 / np.maximum(v - 120, 1e-9), np.inf)
    depth = np.minimum(floor, 7.0 + 2.0 * u / WIDTH)
    depth[(u >= 100) & (u < 160) & (v >= 90) & (v < 170)] = 2.5
    return depth


def step_depth(near=1.5, far=4.0):
    """Fronto-parallel near half (left) and far half (right): one vertical step edge."""
    depth = np.full((HEIGHT, WIDTH), far)
    depth[:, :WIDTH // 2] = near
    return depth


def test_perfect_prediction_scores_perfectly():
    gt = scene_depth()
    metrics = depth_metrics(gt, gt)
    assert metrics['abs_rel'] == 0.0
    assert metrics['d05'] == metrics['d1'] == metrics['d2'] == metrics['d3'] == 1.0
    assert metrics['n_pixels'] == gt.size
    chamfer = edge_chamfer_distance(gt, gt, INTRINSICS)
    assert chamfer.n_points > 500 and chamfer.chamfer_m == 0.0
    flying = flying_pixel_ratio(gt, gt, INTRINSICS)
    assert flying.n_band == chamfer.n_points and flying.ratio == 0.0


def test_depth_metrics_on_a_hand_computed_example():
    gt = np.array([1.0, 2.0, 4.0, 0.0])            # the 0 is outside the evaluation mask
    pred = np.array([1.1, 2.0, 2.1, 5.0])
    metrics = depth_metrics(pred, gt)
    assert metrics['abs_rel'] == pytest.approx((0.1 + 0.0 + 1.9 / 4) / 3, rel=1e-4)
    assert metrics['d05'] == metrics['d1'] == metrics['d2'] == pytest.approx(2 / 3)
    assert metrics['d3'] == 1.0                      # 4 / 2.1 = 1.905 < 1.25^3
    assert metrics['n_pixels'] == 3
    assert depth_metrics(pred, gt, mask=np.array([1, 1, 0, 1], bool))['abs_rel'] == \
        pytest.approx(0.05, rel=1e-4)


def test_ransac_log_alignment_undoes_a_log_affine_despite_outliers():
    gt = scene_depth()
    a, b = 1.7, 0.4
    pred = (np.log1p(gt) - b) / a
    rng = np.random.default_rng(0)
    corrupted = gt.copy()
    outliers = rng.random(gt.shape) < 0.10
    factor = rng.uniform(3.0, 10.0, outliers.sum())
    corrupted[outliers] *= np.where(rng.random(outliers.sum()) < 0.5, factor, 1.0 / factor)
    aligned = align_ransac_log(pred, corrupted)
    assert aligned.fallback == ''
    assert aligned.scale == pytest.approx(a, rel=1e-6)
    assert aligned.shift == pytest.approx(b, abs=1e-6)
    assert depth_metrics(aligned.depth, gt)['abs_rel'] < 1e-4
    again = align_ransac_log(pred, corrupted)
    assert (again.scale, again.shift) == (aligned.scale, aligned.shift)


def test_ransac_log_alignment_falls_back_on_a_negative_slope():
    gt = scene_depth()
    aligned = align_ransac_log(-np.log1p(gt), gt)
    assert 'non-positive slope' in aligned.fallback
    assert aligned.depth.min() >= 1e-3 and aligned.depth.max() <= gt.max()


def test_least_squares_alignment_recovers_scale_and_shift():
    gt = scene_depth()
    aligned = align_least_squares((gt - 0.7) / 2.5, gt)
    assert aligned.scale == pytest.approx(2.5) and aligned.shift == pytest.approx(0.7)
    np.testing.assert_allclose(aligned.depth, gt, rtol=1e-9)
    assert align_least_squares(np.full(gt.shape, -5.0) + 1e-3 * gt, gt).depth.min() >= 1e-3


def test_evaluate_relative_prediction_reports_both_alignments():
    gt = scene_depth()
    result = evaluate_relative_prediction((np.log1p(gt) - 0.4) / 1.7, gt)
    assert set(result) == {f'{prefix}_{key}' for prefix in ('ransac_log', 'lsq')
                           for key in ('abs_rel', 'd05', 'd1', 'd2', 'd3', 'n_pixels')}
    assert result['ransac_log_abs_rel'] < 1e-6
    assert result['lsq_abs_rel'] > result['ransac_log_abs_rel']


def test_chamfer_of_a_cloud_shifted_by_one_centimetre():
    # 50k points on a plane at 2 m, 5 mm apart: each point's nearest neighbour in the other
    # cloud is its own copy shifted 1 cm along the plane normal.
    x, y = np.meshgrid(np.arange(250) * 0.005, np.arange(200) * 0.005)
    cloud = np.stack([x.ravel(), y.ravel(), np.full(x.size, 2.0)], axis=1)
    assert chamfer_distance(cloud, cloud + [0.0, 0.0, 0.01]) == pytest.approx(0.01, rel=0.01)
    assert chamfer_distance(cloud, cloud) == 0.0


def test_nearest_neighbour_distances_match_brute_force():
    rng = np.random.default_rng(2)
    x, y = np.meshgrid(np.linspace(-1, 1, 120), np.linspace(-1, 1, 100))
    surface = np.stack([x.ravel(), y.ravel(), 3 + 0.5 * (x.ravel() > 0)], axis=1)
    queries = surface + rng.normal(0, 0.003, surface.shape)
    queries[rng.random(len(queries)) < 0.1, 2] -= 0.3          # flying points
    queries = np.concatenate([queries, rng.normal(0, 10, (50, 3))])  # far away points
    distances = nearest_neighbour_distances(queries, surface)
    check = rng.choice(len(queries), 300, replace=False)
    brute = [np.sqrt(((surface - q) ** 2).sum(axis=1).min()) for q in queries[check]]
    np.testing.assert_allclose(distances[check], brute, rtol=1e-9, atol=1e-9)


def test_edge_band_finds_depth_steps_but_not_slanted_planes_or_creases():
    gt = scene_depth()
    edge_band = depth_edge_band(gt, band_px=3)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    box_outline = (u >= 99) & (u <= 160) & (v >= 89) & (v <= 170) & \
        ~((u >= 101) & (u <= 158) & (v >= 91) & (v <= 168))
    assert not np.any(edge_band.edges & ~box_outline)       # floor, wall, floor/wall crease
    assert edge_band.edges[95:165, 99:101].all() and edge_band.edges[95:165, 159:161].all()
    band_columns = np.flatnonzero(edge_band.band[130])
    assert set(range(97, 103)) <= set(band_columns) and 104 not in band_columns


def test_edge_band_ignores_holes_in_the_ground_truth():
    gt = np.full((HEIGHT, WIDTH), 3.0)
    gt[50:100, 50:100] = np.nan
    gt[150:200, 150:200] = 0.0
    assert not depth_edge_band(gt).edges.any()


@pytest.mark.parametrize('width', [3, 5])
def test_blurred_step_has_more_flying_pixels_and_larger_edge_chamfer(width):
    gt = step_depth()
    noise = 1 + 0.003 * np.random.default_rng(1).normal(size=gt.shape)
    sharp = gt * noise
    blurred = cv2.blur(gt, (width, width), borderType=cv2.BORDER_REPLICATE) * noise
    flying_sharp = flying_pixel_ratio(sharp, gt, INTRINSICS)
    flying_blurred = flying_pixel_ratio(blurred, gt, INTRINSICS)
    assert flying_sharp.ratio < 0.01
    assert flying_blurred.ratio > flying_sharp.ratio + 0.1
    flying_columns = np.flatnonzero(flying_blurred.flying.any(axis=0))
    assert np.all(np.abs(flying_columns - (WIDTH // 2 - 0.5)) <= width // 2)
    chamfer_sharp = edge_chamfer_distance(sharp, gt, INTRINSICS)
    chamfer_blurred = edge_chamfer_distance(blurred, gt, INTRINSICS)
    assert chamfer_blurred.chamfer_m > 3 * chamfer_sharp.chamfer_m
    assert np.array_equal(chamfer_sharp.band, flying_sharp.band)
