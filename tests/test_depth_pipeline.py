"""DepthPipeline with the real tiny model (random weights): outputs, scaling, metric clouds."""
from dataclasses import replace

import numpy as np
import pytest

from ppd_ros.geometry.camera_model import camera_from_info_fields
from ppd_ros.geometry.pointcloud_layout import decode_cloud
from ppd_ros.pipeline.depth_pipeline import (DepthPipeline, PipelineOptions, output_size,
                                            resize_nearest)
from ppd_ros.pipeline.metric_scaler import (DepthModeError, RangeScaler, ReferenceScaler,
                                            ScaleSettings, metric_scaler_for_mode)

W, H = 160, 120
K = [100.0, 0.0, 79.5, 0.0, 100.0, 59.5, 0.0, 0.0, 1.0]
P = K[:3] + [0.0] + K[3:6] + [0.0] + K[6:] + [0.0]


@pytest.fixture(scope='module')
def pipeline():
    from ppd_ros.model import DepthPredictor, build_model
    import torch
    torch.manual_seed(0)
    return DepthPipeline(DepthPredictor(build_model('tiny'), device='cpu'))


@pytest.fixture(scope='module')
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


class PlaneAt2m:
    """A metric scaler for the test: every pixel 2 m away."""

    def __init__(self):
        self.scene_changes = 0

    def to_metres(self, relative):
        return np.full(relative.shape, 2.0, np.float32)

    def scene_changed(self):
        self.scene_changes += 1


class NotReady(PlaneAt2m):
    def to_metres(self, relative):
        return None


def _camera():
    return camera_from_info_fields(K, P, W, H)


def test_relative_mode_gives_depth_and_colour_but_no_cloud(pipeline, rgb):
    frame = pipeline.process(rgb, _camera(), PipelineOptions(steps=2))
    assert frame.depth.shape == (H, W) and frame.depth.dtype == np.float32
    assert np.all(np.isfinite(frame.depth))
    assert frame.metres is None and frame.cloud is None
    assert frame.colored.shape == (H, W, 3) and frame.colored.dtype == np.uint8
    assert {'preprocess', 'semantics', 'dit', 'postprocess', 'cloud', 'colorize',
            'total'} <= set(frame.timings)


def test_fixed_seed_is_reproducible(pipeline, rgb):
    a = pipeline.process(rgb, None, PipelineOptions(steps=1, seed=3, colorize=False))
    b = pipeline.process(rgb, None, PipelineOptions(steps=1, seed=3, colorize=False))
    np.testing.assert_array_equal(a.depth, b.depth)


def test_metric_scaler_output_becomes_an_organized_cloud(pipeline, rgb):
    frame = pipeline.process(rgb, _camera(), PipelineOptions(steps=1, cloud_stride=2),
                             PlaneAt2m())
    np.testing.assert_array_equal(frame.depth, 2.0)
    cloud = frame.cloud
    assert (cloud.height, cloud.width, cloud.point_step) == (H // 2, W // 2, 32)
    xyz, colours = decode_cloud(cloud.fields, cloud.point_step, cloud.height, cloud.width,
                                cloud.data)
    np.testing.assert_allclose(xyz[..., 2], 2.0)
    np.testing.assert_allclose(xyz[0, 0, :2], [(0 - 79.5) * 2 / 100, (0 - 59.5) * 2 / 100],
                               atol=1e-6)
    np.testing.assert_array_equal(colours, rgb[::2, ::2])


def test_no_camera_means_no_cloud(pipeline, rgb):
    frame = pipeline.process(rgb, None, PipelineOptions(steps=1), PlaneAt2m())
    assert frame.metres is not None and frame.cloud is None and frame.camera is None


def test_scaler_without_scale_gives_no_metres_and_no_cloud(pipeline, rgb):
    frame = pipeline.process(rgb, _camera(), PipelineOptions(steps=1), NotReady())
    assert frame.metres is None and frame.cloud is None


def test_output_scale_resizes_outputs_and_intrinsics(pipeline, rgb):
    frame = pipeline.process(rgb, _camera(), PipelineOptions(steps=1, output_scale=0.5,
                                                             cloud_rgb=False), PlaneAt2m())
    assert frame.depth.shape == (H // 2, W // 2) and frame.colored.shape == (H // 2, W // 2, 3)
    assert (frame.camera.width, frame.camera.height) == (W // 2, H // 2)
    assert frame.camera.fx == pytest.approx(50.0)
    assert frame.camera.cx == pytest.approx((79.5 + 0.5) * 0.5 - 0.5)
    assert frame.cloud.point_step == 16 and frame.cloud.width == W // 2
    assert output_size(641, 481, 0.5) == (320, 240)


def test_camera_of_another_size_is_rejected(pipeline, rgb):
    with pytest.raises(ValueError, match='160x120'):
        pipeline.process(rgb, camera_from_info_fields(K, P, 320, 240), PipelineOptions(steps=1))


def test_depth_modes():
    assert metric_scaler_for_mode('relative') is None
    assert isinstance(metric_scaler_for_mode('range', ScaleSettings(1.0, 4.0)), RangeScaler)
    assert isinstance(metric_scaler_for_mode('reference'), ReferenceScaler)
    with pytest.raises(DepthModeError, match='near_m < far_m'):
        metric_scaler_for_mode('range', ScaleSettings(4.0, 1.0))
    with pytest.raises(DepthModeError, match='depth.min_m < depth.max_m'):
        metric_scaler_for_mode('reference', ScaleSettings(min_m=5.0, max_m=1.0))
    with pytest.raises(DepthModeError, match='unknown'):
        metric_scaler_for_mode('metres')


def test_range_mode_maps_percentiles_to_near_and_far(pipeline, rgb):
    frame = pipeline.process(rgb, _camera(), PipelineOptions(steps=1),
                             RangeScaler(ScaleSettings(1.0, 4.0)))
    p2, p98 = np.percentile(frame.metres, [2, 98])
    assert p2 == pytest.approx(1.0, rel=0.05) and p98 == pytest.approx(4.0, rel=0.05)
    # larger relative depth = farther
    order = np.argsort(frame.relative.ravel())
    assert np.all(np.diff(frame.metres.ravel()[order]) >= -1e-5)
    assert frame.cloud is not None and frame.cloud.height == H


def test_range_mode_without_spread_gives_no_scale():
    flat = np.full((8, 8), 0.3, np.float32)
    scaler = RangeScaler(ScaleSettings(1.0, 4.0))
    assert scaler.to_metres(flat) is None
    assert not scaler.status.available and 'no spread' in scaler.status.reason


class SlopedScaler(PlaneAt2m):
    """A metric scaler for the test: 1..3 m across the image, so colours and points vary."""

    def to_metres(self, relative):
        h, w = relative.shape
        return np.broadcast_to(np.linspace(1.0, 3.0, w, dtype=np.float32), (h, w)).copy()


def test_colourising_beside_the_cloud_gives_the_same_outputs(rgb):
    class FixedNetwork:  # the same prediction every call, so only the wiring differs
        def predict(self, image, steps=4, seed=None):
            from ppd_ros.model.predictor import Prediction
            depth = np.linspace(0.0, 1.0, H * W, dtype=np.float32).reshape(H, W)
            return Prediction(depth, depth, {'total': 0.0})

    overlapped, serial = (DepthPipeline(FixedNetwork(), overlap=o) for o in (True, False))
    options = PipelineOptions(steps=1)
    a = overlapped.process(rgb, _camera(), options, SlopedScaler())
    b = serial.process(rgb, _camera(), options, SlopedScaler())
    np.testing.assert_array_equal(a.colored, b.colored)
    assert np.unique(a.colored.reshape(-1, 3), axis=0).shape[0] > 10
    assert bytes(a.cloud.payload) == bytes(b.cloud.payload)
    assert a.timings['colorize'] > 0 and a.timings['cloud'] > 0
    overlapped.close()
    c = overlapped.process(rgb, _camera(), options, SlopedScaler())  # after close: one thread
    np.testing.assert_array_equal(c.colored, b.colored)
    serial.close()


def test_a_cloud_still_held_is_never_overwritten_by_the_next_frame(pipeline, rgb):
    options = PipelineOptions(steps=1)
    first = pipeline.process(rgb, _camera(), options, SlopedScaler()).cloud
    before = bytes(first.payload)
    second = pipeline.process(rgb, _camera(), options, PlaneAt2m()).cloud
    assert second.payload is not first.payload
    assert bytes(first.payload) == before
    xyz, _ = decode_cloud(second.fields, second.point_step, second.height, second.width,
                          second.data)
    np.testing.assert_allclose(xyz[..., 2], 2.0)


def test_scene_changes_reach_the_scaler_and_restart_smoothing(rgb):
    from ppd_ros.model import DepthPredictor, build_model
    from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED
    import torch
    torch.manual_seed(0)
    pipeline = DepthPipeline(DepthPredictor(build_model('tiny'), device='cpu'), overlap=False)
    scaler = PlaneAt2m()
    options = PipelineOptions(steps=1, colorize=False, temporal=RECOMMENDED)
    other = np.ascontiguousarray(rgb[::-1])            # another view
    first = pipeline.process(rgb, None, options, scaler)
    again = pipeline.process(rgb, None, replace(options, seed=5), scaler)
    assert first.temporal.scene_changed and not again.temporal.scene_changed
    assert again.temporal.blended_fraction > 0.05  # random weights: seeds disagree a lot
    raw = pipeline.predictor.predict(rgb, steps=1, seed=5).depth
    assert not np.allclose(again.relative, raw, atol=1e-4)   # blended with the first frame
    cut = pipeline.process(other, None, options, scaler)
    assert cut.temporal.scene_changed and scaler.scene_changes == 2
    np.testing.assert_array_equal(cut.relative, pipeline.predictor.predict(
        other, steps=1, seed=0).depth)
    pipeline.continue_stream(rgb, first.relative, options)     # resume after frame 1
    resumed = pipeline.process(rgb, None, replace(options, seed=5), scaler)
    np.testing.assert_array_equal(resumed.relative, again.relative)
    assert scaler.scene_changes == 2


def test_samples_give_a_confidence_map_in_the_units_of_the_depth(pipeline, rgb):
    relative = pipeline.process(rgb, None, PipelineOptions(steps=1, samples=3, colorize=False))
    assert relative.confidence.shape == (H, W) and relative.confidence.dtype == np.float32
    spread = pipeline.predictor.predict(rgb, steps=1, seed=0, samples=3).spread
    np.testing.assert_array_equal(relative.confidence, spread)
    assert pipeline.process(rgb, None, PipelineOptions(steps=1)).confidence is None
    scaler = RangeScaler(ScaleSettings(1.0, 5.0))
    scaler.begin_frame(0.0)
    options = PipelineOptions(steps=1, samples=3, colorize=False, output_scale=0.5)
    metric = pipeline.process(rgb, None, options, scaler)
    a = scaler.status.a        # d = exp(a p + b) - 1 moves a (1 + d) metres per unit of p
    expected = a * (1 + metric.metres) * resize_nearest(spread, W // 2, H // 2)
    np.testing.assert_allclose(metric.confidence, expected, rtol=1e-5)
    assert metric.confidence.shape == metric.metres.shape == (H // 2, W // 2)
    assert np.array_equal(np.isnan(metric.confidence), np.isnan(metric.metres))
