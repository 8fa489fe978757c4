"""depth_node in depth.mode 'reference' on a stream that cuts between rooms (in this process).

Three synthetic rooms (held-out seeds, camera walking ~1 cm per frame), five 128x96 frames
each, with a simulated RGB-D sensor depth as depth_reference (30 % holes, 1 % noise, flying
pixels; 16UC1). The real shipped tiny model runs in the node with its default parameters.
The reference run is the same pipeline with a fresh scale filter for every room, which is
what the node should match: the scene-change test lets the filter take the first good fit of
each new room at once. One reference in the middle of a room is 30 % too far (a bad sensor
frame): the outlier test must still hold the scale there.
"""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter

from in_process_harness import NS, Harness
from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions
from ppd_ros.pipeline.metric_scaler import ReferenceScaler, ScaleSettings
from ppd_ros.pipeline.temporal_smoothing import RECOMMENDED
from ppd_ros.synthetic import DepthSensorModel, generate_room_walks
from ppd_ros.training.seed_splits import EVAL_SEED_START

W, H = 128, 96
ROOMS, PER_ROOM = 3, 5
GLITCH = PER_ROOM + 2          # frame 2 of room 1
T0 = 1_700_000_000 * NS
NAMESPACE = '/cuts'


@pytest.fixture(scope='module')
def stream():
    """(room, frame, reference in metres as the node receives it: whole millimetres)."""
    sensor = DepthSensorModel()
    out = []
    for i, (room, frame) in enumerate(generate_room_walks(EVAL_SEED_START + 700, ROOMS * PER_ROOM,
                                                          PER_ROOM, W, H)):
        reference = np.round(sensor.corrupt(frame.depth, i) * 1000.0) / 1000.0
        if i == GLITCH:
            reference = reference * 1.3
        out.append((room, frame, reference.astype(np.float32)))
    return out


@pytest.fixture(scope='module')
def predictor():
    from ppd_ros.model import load_predictor
    from ppd_ros.pipeline.package_paths import resolve_package_path
    return load_predictor(str(resolve_package_path('models/tiny_ppd.safetensors')), device='cpu')


@pytest.fixture(scope='module')
def node_depths(stream, predictor):
    def make(context):
        from ppd_ros.node.depth_node import DepthNode
        overrides = [Parameter(k, value=v) for k, v in {
            'depth.mode': 'reference', 'lazy': False, 'colorize': False,
            'reference.max_wait_s': 0.5, 'diagnostics_period': 0.1}.items()]
        return DepthNode(predictor=predictor, context=context, namespace=NAMESPACE,
                         parameter_overrides=overrides)
    harness = Harness(make, NAMESPACE)
    try:
        harness.wait_connected(outputs=('depth/image', 'points'))
        for i, (_, frame, reference) in enumerate(stream):
            stamp = T0 + i * NS // 10
            harness.publish_reference_mm(stamp, reference)
            harness.publish_frame(stamp, frame.rgb, frame.K)
            harness.wait_until(lambda: stamp in harness.stamps('depth/image'), 30.0,
                               f'depth of frame {i}')
    finally:
        harness.close()
    by_stamp = {m.stamp: m.data for m in harness.messages('depth/image')}
    return [by_stamp[T0 + i * NS // 10] for i in range(len(stream))]


def fresh_per_room(stream, predictor):
    depths, pipeline, scaler = [], None, None
    options = PipelineOptions(cloud=False, colorize=False, temporal=RECOMMENDED)
    for i, (room, frame, reference) in enumerate(stream):
        if i % PER_ROOM == 0:
            pipeline, scaler = DepthPipeline(predictor, overlap=False), ReferenceScaler(
                ScaleSettings())
        if i == GLITCH:   # the ideal: a bad reference is ignored, the scale held
            scaler.begin_frame(i * 0.1, None, 'bad reference')
        else:
            scaler.begin_frame(i * 0.1, reference)
        depths.append(pipeline.process(frame.rgb, None, options, scaler).metres)
    return depths


def test_scale_settles_on_each_new_room_and_ignores_a_bad_reference(stream, predictor,
                                                                     node_depths):
    fresh = fresh_per_room(stream, predictor)
    truths = [frame.depth for _, frame, _ in stream]
    node_abs_rel = np.mean([depth_metrics(d, t)['abs_rel'] for d, t in zip(node_depths, truths)])
    fresh_abs_rel = np.mean([depth_metrics(d, t)['abs_rel'] for d, t in zip(fresh, truths)])
    assert node_abs_rel <= 1.10 * fresh_abs_rel
    for i, (node, goal) in enumerate(zip(node_depths, fresh)):
        ratio = np.nanmedian(node / goal)
        # from the first frame of every room on (no frames to settle), glitch included
        assert abs(ratio - 1.0) < 0.05, f'frame {i}: median depth {ratio:.3f} x fresh'
