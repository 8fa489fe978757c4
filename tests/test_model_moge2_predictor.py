"""MoGe2Predictor: uint8 frames in, numpy geometry out; known cameras; shared features."""
import numpy as np
import pytest
import torch

from ppd_ros.model.moge2 import build_moge2
from ppd_ros.model.moge2_geometry import KnownIntrinsics, infer
from ppd_ros.model.moge2_predictor import MoGe2Predictor
from ppd_ros.model.preprocess import image_to_tensor


@pytest.fixture(scope='module')
def predictor():
    torch.manual_seed(2)
    return MoGe2Predictor(build_moge2('moge2_tiny'), device='cpu')


@pytest.fixture(scope='module')
def rgb():
    return np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)


def test_infer_matches_the_tensor_infer(predictor, rgb):
    geometry = predictor.infer(rgb)
    expected = infer(predictor.model, image_to_tensor(rgb))
    assert geometry.depth.shape == (96, 128) and geometry.depth.dtype == np.float32
    assert np.array_equal(geometry.depth, expected.depth[0].numpy())
    assert np.array_equal(geometry.mask, expected.mask[0].numpy())
    assert np.array_equal(geometry.intrinsics, expected.intrinsics[0].numpy())
    assert geometry.intrinsics_estimated
    assert {'moge_encoder', 'moge_heads', 'moge_geometry', 'moge_total'} <= set(geometry.timings)


def test_camera_matrix_uses_integer_pixel_centres(predictor, rgb):
    geometry = predictor.infer(rgb)
    K = geometry.camera_matrix()
    assert K[0, 2] == pytest.approx(0.5 * 128 - 0.5) and K[1, 2] == pytest.approx(0.5 * 96 - 0.5)
    assert K[0, 0] == pytest.approx(geometry.intrinsics[0, 0] * 128)
    assert geometry.camera_matrix(256, 192)[0, 0] == pytest.approx(2 * K[0, 0])


def test_known_camera_is_kept(predictor, rgb):
    camera = KnownIntrinsics(100.0, 101.0, 63.0, 48.0)
    geometry = predictor.infer(rgb, camera=camera)
    assert np.allclose(geometry.camera_matrix(), [[100, 0, 63], [0, 101, 48], [0, 0, 1]])
    assert not geometry.intrinsics_estimated


def test_geometry_from_features_equals_infer_on_the_same_grid(predictor, rgb):
    image = image_to_tensor(rgb)
    with torch.no_grad():
        features, cls = predictor.model.encoder.features(image, 6, 8)
    shared = predictor.geometry_from_features(features, cls, 96, 128)
    direct = predictor.infer(rgb, grid=(6, 8))
    assert np.array_equal(shared.depth, direct.depth)


def test_bad_input_is_refused(predictor):
    with pytest.raises(ValueError, match='uint8'):
        predictor.infer(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match='precision'):
        MoGe2Predictor(predictor.model, precision='int4')
