"""The authors' metric cloud (run_point_cloud.py) from the shipped tiny PPD and tiny MoGe-2."""
from pathlib import Path

import numpy as np
import pytest

from ppd_ros.evaluation.alignment_eval import align_ransac_log
from ppd_ros.pipeline.geometry_loading import load_metric_predictor_from_paths
from ppd_ros.pipeline.moge_point_cloud import metric_cloud
from ppd_ros.synthetic import generate_frame

MODELS = Path(__file__).resolve().parents[1] / 'models'


@pytest.fixture(scope='module')
def prediction():
    predictor = load_metric_predictor_from_paths(
        str(MODELS / 'tiny_ppd.safetensors'), '', '', str(MODELS / 'tiny_moge2.safetensors'),
        device='cpu')
    frame = generate_frame(1_000_021, 128, 96, hfov_deg=70.0)   # the network size itself
    return frame, predictor.predict(frame.rgb, steps=4, seed=0)


def test_cloud_is_the_mask_back_projected_with_pixel_centres(prediction):
    frame, result = prediction
    cloud = metric_cloud(result.network_depth, result.geometry, frame.rgb)
    mask = result.geometry.mask
    assert len(cloud.points) == mask.sum() and cloud.colors.shape == cloud.points.shape
    rows, cols = np.nonzero(mask)
    K = cloud.K
    assert K[0, 2] == pytest.approx(63.5) and K[1, 2] == pytest.approx(47.5)
    z = cloud.metric_depth[rows, cols]
    assert np.allclose(cloud.points[:, 2], z)
    assert np.allclose(cloud.points[:, 0], (cols - 63.5) / K[0, 0] * z, rtol=1e-5, atol=1e-6)
    assert np.array_equal(cloud.colors, frame.rgb[rows, cols])
    # run_point_cloud's cx = 0.5 w would move every point by half a pixel: 0.5 z / fx in x
    assert np.allclose((cols - 64.0) / K[0, 0] * z - cloud.points[:, 0], -0.5 * z / K[0, 0],
                       atol=1e-5)
    assert any('half a pixel' in c for c in cloud.comments)


def test_depth_is_the_paper_alignment_to_moge_depth(prediction):
    frame, result = prediction
    cloud = metric_cloud(result.network_depth, result.geometry, frame.rgb)
    g = result.geometry
    expected = align_ransac_log(result.network_depth, np.where(g.mask, g.depth, np.nan), g.mask)
    assert np.array_equal(cloud.metric_depth, expected.depth.astype(np.float32))
    assert cloud.metric_depth.max() <= g.depth[g.mask].max() + 1e-4   # clipped as the reference
    ok = frame.valid & g.mask
    error = np.mean(np.abs(cloud.metric_depth[ok] - frame.depth[ok]) / frame.depth[ok])
    assert error < 0.5


def test_an_empty_mask_is_a_clear_error(prediction):
    frame, result = prediction
    g = result.geometry
    empty = type(g)(g.depth, np.zeros_like(g.mask), g.intrinsics, g.points, g.focal, g.shift,
                    g.metric_scale, g.intrinsics_estimated)
    with pytest.raises(ValueError, match='empty mask'):
        metric_cloud(result.network_depth, empty, frame.rgb)
