"""ppd-eval live --reference-topic: a spawned depth_node in depth.mode reference gets the bag's
metric depth on depth_reference, publishes metres and clouds, and its metres are scored as
published (no re-alignment), beside the reference itself.

The model is a random tiny checkpoint, so its relative depth is noise. The reference is
therefore built FROM that prediction: reference = exp(A * pred + B) - 1 (the node's own
log-affine model), in millimetres, with 30 % holes. A correct node recovers A and B, so its
depth must equal exp(A * pred + B) - 1 everywhere, holes included.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eval_helpers import HEIGHT, WIDTH, eval_args, make_tiny_checkpoint, read_csv, read_json
from ppd_ros.bag import BagReader, write_synthetic_bag
from ppd_ros.evaluation.cli import main
from ppd_ros.evaluation.metrics import depth_metrics
from ppd_ros.synthetic import DepthSensorModel, generate_sequence

N_FRAMES = 6
SEED = 5
REFERENCE_TOPIC = '/camera/aligned_depth/image_raw'
A, B = 0.2, float(np.log1p(2.0))     # reference = exp(A * pred + B) - 1: about 0.4 .. 6.5 m
HOLES = DepthSensorModel(hole_fraction=0.3, noise_rel=0.0, flying_fraction=0.0)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp('model') / 'tiny.safetensors')


@pytest.fixture(scope='module')
def expected_metres(checkpoint):
    """exp(A * pred + B) - 1 of every frame, pred as the node computes it."""
    from ppd_ros.model import load_predictor
    from ppd_ros.pipeline.depth_pipeline import DepthPipeline, PipelineOptions
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pipeline = DepthPipeline(load_predictor(str(checkpoint), device='cpu'))
        options = PipelineOptions(steps=4, seed=0, cloud=False, colorize=False)
        return [np.expm1(A * pipeline.process(f.rgb, None, options).relative + B)
                for f in generate_sequence(SEED, N_FRAMES, WIDTH, HEIGHT)]
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def live_run(checkpoint, expected_metres, tmp_path_factory):
    root = tmp_path_factory.mktemp('live_reference')
    bag = write_synthetic_bag(root / 'bag', N_FRAMES, WIDTH, HEIGHT, seed=SEED,
                              sensor_depth_topic=REFERENCE_TOPIC,
                              sensor_depth=lambda i, _: HOLES.corrupt(expected_metres[i], i))
    out = root / 'live'
    status = main(eval_args(bag.path, out, checkpoint, '--mode', 'live', '--launch-node',
                            '--rate', '5', '--reference-topic', REFERENCE_TOPIC,
                            '--temporal-smoothing', '0'))   # per-frame depth, as expected_metres
    return status, out, bag


def _recorded(out, topic):
    with BagReader(out / 'live_bag') as reader:
        return {m.stamp_ns: m.data for m in reader.messages([topic])}


def test_node_publishes_the_references_metres_everywhere(live_run, expected_metres):
    status, out, bag = live_run
    assert status == 0
    summary = read_json(out / 'live_summary.json')
    assert summary['node']['depth_mode'] == 'reference'
    assert summary['input']['reference_topic'] == REFERENCE_TOPIC
    assert summary['frames']['received'] >= N_FRAMES - 1
    depths = _recorded(out, '/ppd_eval/depth/image')
    assert len(depths) == summary['frames']['received']
    for stamp, depth in depths.items():
        expected = expected_metres[bag.stamps_ns.index(stamp)]
        assert np.isfinite(depth).mean() > 0.99          # the reference's holes are filled
        np.testing.assert_allclose(depth, expected, rtol=0.01)


def test_points_are_the_metric_depth_unprojected(live_run):
    _, out, _ = live_run
    depths = _recorded(out, '/ppd_eval/depth/image')
    clouds = _recorded(out, '/ppd_eval/points')
    assert clouds and set(clouds) == set(depths)
    for stamp, cloud in clouds.items():
        assert cloud.shape == (HEIGHT, WIDTH) and 'rgb' in cloud.dtype.names
        np.testing.assert_allclose(cloud['z'], depths[stamp], rtol=1e-6)


def test_metric_depth_is_scored_as_published_beside_the_reference(live_run):
    _, out, bag = live_run
    summary = read_json(out / 'live_summary.json')
    assert 'without alignment' in summary['accuracy']
    gts = {s: d for s, d in _recorded_gt(bag.path).items()}
    depths = _recorded(out, '/ppd_eval/depth/image')
    rows = [r for r in read_csv(out / 'live_frames.csv') if r['received'] == '1']
    assert rows and 'ransac_log_abs_rel' not in rows[0]
    for row in rows:
        stamp = int(row['stamp_ns'])
        published = depth_metrics(depths[stamp], gts[stamp])
        assert float(row['node_abs_rel']) == pytest.approx(published['abs_rel'], rel=1e-6)
        assert float(row['node_coverage']) > 0.99
        assert float(row['reference_coverage']) == pytest.approx(0.7, abs=0.02)
    mean = summary['metrics']['mean']
    assert {'node_abs_rel', 'node_d1', 'node_flying_pixel_ratio', 'node_edge_chamfer_m',
            'reference_abs_rel', 'reference_coverage'} <= set(mean)
    assert (out / 'live_metrics.png').stat().st_size > 10_000


def _recorded_gt(bag_path):
    with BagReader(bag_path) as reader:
        return {m.stamp_ns: m.data for m in reader.messages(['/camera/depth/image_raw'])}


def test_a_reference_topic_of_the_wrong_type_is_bad_input(checkpoint, live_run, tmp_path,
                                                          capsys):
    _, _, bag = live_run
    assert main(eval_args(bag.path, tmp_path, checkpoint, '--mode', 'live', '--launch-node',
                          '--reference-topic', '/camera/camera_info')) == 2
    assert "reference topic '/camera/camera_info'" in capsys.readouterr().err
