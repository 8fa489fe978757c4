"""The network-resolution knob and its bounds."""
import time

import numpy as np
import pytest
import torch

from ppd_ros.model import DepthPredictor, build_model
from ppd_ros.model.network_resolution import (MAX_ASPECT_RATIO, MAX_NETWORK_AREA,
                                              MIN_NETWORK_AREA, bounded_network_size)
from ppd_ros.pipeline.predictor_loading import check_network_area_setting, parse_network_area


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return build_model('tiny')


def test_default_is_the_training_area_and_the_knob_keeps_aspect_and_multiples_of_16(tiny):
    assert DepthPredictor(tiny, 'cpu').network_size(480, 640) == (96, 128)
    small = DepthPredictor(tiny, 'cpu', network_area=64 * 48)
    assert small.network_area == 3072
    assert small.network_size(480, 640) == (48, 64)
    assert small.network_size(720, 1280) == (48, 80)
    pred = small.predict(np.zeros((480, 640, 3), np.uint8), steps=1, seed=0)
    assert pred.network_depth.shape == (48, 64) and pred.depth.shape == (480, 640)
    large = DepthPredictor(build_model('large', device='meta'), 'meta', network_area=512 * 384)
    assert large.network_size(480, 640) == (384, 512)
    assert large.network_size(1080, 1920) == (336, 592)


@pytest.mark.parametrize('area', [0, MIN_NETWORK_AREA - 1, MAX_NETWORK_AREA + 1, 10**12, 2.5])
def test_out_of_range_areas_are_refused(tiny, area):
    with pytest.raises(ValueError, match='network_area'):
        DepthPredictor(tiny, 'cpu', network_area=area)


def test_extreme_aspect_ratios_are_refused_quickly(tiny):
    predictor = DepthPredictor(tiny, 'cpu')
    start = time.perf_counter()
    for shape in [(1, 1_000_000, 3), (100_000, 1, 3), (10, 200, 3)]:
        with pytest.raises(ValueError, match='aspect ratio'):
            predictor.predict(np.zeros(shape, np.uint8))
    assert time.perf_counter() - start < 1.0
    with pytest.raises(ValueError, match='aspect ratio'):
        predictor.predict(np.zeros((16, 512, 3), np.uint8), resize=False)
    with pytest.raises(ValueError, match='exceeds'):
        predictor.prepare(4096, 4096, resize=False)
    with pytest.raises(ValueError, match='empty'):
        predictor.network_size(0, 10)
    # the widest accepted image still gives a network input of about the area
    h, w = bounded_network_size(1, int(MAX_ASPECT_RATIO), 128 * 96)
    assert (h, w) == (32, 448)


@pytest.mark.parametrize('area', [MIN_NETWORK_AREA, 128 * 96, 1024 * 768, MAX_NETWORK_AREA])
def test_network_input_is_bounded_for_any_accepted_image(area):
    for height, width in [(1, 16), (16, 1), (7, 100), (3000, 200), (1, 1), (4000, 3000)]:
        h, w = bounded_network_size(height, width, area)
        assert h % 16 == 0 and w % 16 == 0
        assert h * w <= 1.1 * area + 16 * 16 * MAX_ASPECT_RATIO


def test_settings_parse_width_x_height_or_pixels():
    assert parse_network_area('768x576') == 442368
    assert parse_network_area('442368') == parse_network_area(442368) == 442368
    assert parse_network_area('') == parse_network_area('0') == 0
    with pytest.raises(ValueError, match='WIDTHxHEIGHT'):
        parse_network_area('big')
    assert check_network_area_setting(0) is None
    assert check_network_area_setting(512 * 384) is None
    assert 'outside' in check_network_area_setting(10)


def test_tool_options_carry_the_network_area():
    import argparse

    from ppd_ros.cli.tool_main import ToolError
    from ppd_ros.evaluation.model_options import add_model_arguments, model_options_from_args
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert model_options_from_args(parser.parse_args([])).network_area == 0
    options = model_options_from_args(parser.parse_args(['--network-area', '512x384']))
    assert options.network_area == 512 * 384
    with pytest.raises(ToolError, match='--network-area'):
        model_options_from_args(parser.parse_args(['--network-area', '10']))


def test_ppd_predict_runs_at_the_given_network_area(tmp_path, tiny):
    import cv2

    from ppd_ros.cli.predict import main
    from ppd_ros.model import save_checkpoint
    checkpoint = save_checkpoint(tiny, tmp_path / 'tiny.safetensors')
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8))
    base = ['--checkpoint', str(checkpoint), '--device', 'cpu', '--steps', '1']
    assert main([str(image), '--outdir', str(tmp_path / 'a'), *base]) == 0
    assert main([str(image), '--outdir', str(tmp_path / 'b'), '--network-area', '64x48',
                 *base]) == 0
    default, small = (np.load(tmp_path / d / 'a_relative_depth.npy') for d in 'ab')
    assert default.shape == small.shape == (60, 80)
    assert np.abs(default - small).max() > 1e-3
    assert main([str(image), '--outdir', str(tmp_path / 'c'), '--network-area', '10',
                 *base]) == 2
