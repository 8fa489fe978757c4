"""resize_keep_aspect sizes and cv2 flags, RGB tensor conversion, bilinear upsampling."""
import cv2
import numpy as np
import pytest
import torch

from ppd_ros.model.preprocess import (image_to_tensor, network_size, resize_keep_aspect,
                                      upsample_depth)


@pytest.mark.parametrize('size, expected', [
    ((480, 640), (768, 1024)),
    ((720, 1280), (672, 1184)),
    ((1080, 1920), (672, 1184)),
    ((1280, 1920), (720, 1088)),
    ((64, 64), (880, 880)),
])
def test_network_size_examples_from_spec(size, expected):
    assert network_size(*size) == expected


def test_network_size_uses_python_round_half_to_even_and_minimum_16():
    # s = 1: H/16 = 2.5 -> 2 (not 3), 3.5 -> 4
    assert network_size(40, 100, area=4000) == (32, 96)
    assert network_size(56, 100, area=5600) == (64, 96)
    assert network_size(1, 100000)[0] == 16


def test_resize_uses_area_when_shrinking_and_cubic_when_enlarging():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    shrunk = resize_keep_aspect(big)
    area = cv2.resize(big, (1184, 672), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(shrunk, area)
    assert not np.array_equal(shrunk, cv2.resize(big, (1184, 672), interpolation=cv2.INTER_CUBIC))
    enlarged = cv2.resize(small, (1024, 768), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(resize_keep_aspect(small), enlarged)
    assert resize_keep_aspect(small, area=128 * 96).shape == (96, 128, 3)


def test_image_to_tensor_keeps_rgb_order_and_scales_to_unit_range():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 51, 1
    t = image_to_tensor(rgb)
    assert t.shape == (1, 3, 2, 3) and t.dtype == torch.float32
    assert t[0, :, 0, 0].tolist() == [1.0, np.float32(0.2), np.float32(1 / 255)]


def test_upsample_is_bilinear_without_corner_alignment():
    x = torch.tensor([[[[0.0, 1.0]]]])
    up = upsample_depth(x, 1, 4)[0, 0, 0]
    assert up.tolist() == [0.0, 0.25, 0.75, 1.0]
