"""ppd-eval live with a depth_node process in depth.mode fusion: the shipped tiny model in the
node's own process, a synthetic room bag with the demo's RGB-D sensor corruption (0.5 %
noise here, see below) and exact depth for scoring. The sensor falls silent for the last
frames, so the run also shows the node holding its scale and then stopping metric output.

Accuracy criterion (as in test_node_reference_mode): a cloud point p at pixel (u, v) is
within 2 % when |p - p_true| <= 0.02 |p_true|, p_true the true surface point of that pixel;
the scene is made of known planes (floor, walls, boxes), so such points lie on them within
2 % of their range. Fusion keeps the sensor's own depth, noise included: the sensor here has
0.5 % noise, so that the criterion measures the node rather than the sensor.
"""
from __future__ import annotations

import numpy as np
import pytest

from eval_helpers import DEPTH_TOPIC, INFO_TOPIC, eval_args, read_json
from ppd_ros.bag import BagReader, write_synthetic_bag
from ppd_ros.evaluation.cli import main
from ppd_ros.pipeline.package_paths import resolve_package_path
from ppd_ros.synthetic import DepthSensorModel

WIDTH, HEIGHT = 160, 120
N_FRAMES, SILENT_FROM, HOLD = 12, 5, 2
SENSOR_TOPIC = '/camera/aligned_depth_to_color/image_raw'
SENSOR = DepthSensorModel(noise_rel=0.005, hole_size_px=8)
NS = '/ppd_eval'


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('live_fusion')
    bag = write_synthetic_bag(
        root / 'bag', N_FRAMES, WIDTH, HEIGHT, seed=7, rate_hz=3.0,
        sensor_depth_topic=SENSOR_TOPIC,
        sensor_depth=lambda i, frame: SENSOR.corrupt(frame.depth, i) if i < SILENT_FROM else None)
    out = root / 'live'
    status = main(eval_args(bag.path, out, resolve_package_path('models/tiny_ppd.safetensors'),
                            '--mode', 'live', '--launch-node', '--rate', '3', '--sim-time',
                            '--reference-topic', SENSOR_TOPIC, '--node-param',
                            'depth.mode:=fusion', '--node-param', f'scale.hold_frames:={HOLD}'))
    return status, out, bag


def _recorded(out, topic):
    with BagReader(out / 'live_bag') as reader:
        return {m.stamp_ns: m.data for m in reader.messages([topic])}


def _truth(bag):
    """{stamp: exact depth}, {stamp: the sensor's depth as played}, the CameraInfo."""
    with BagReader(bag.path) as reader:
        gt = {m.stamp_ns: m.data for m in reader.messages([DEPTH_TOPIC])}
        sensed = {m.stamp_ns: m.data for m in reader.messages([SENSOR_TOPIC])}
        info = next(m.data for m in reader.messages([INFO_TOPIC]))
    return gt, sensed, info


def test_fused_depth_camera_info_and_points_share_stamps_and_lie_on_the_planes(run):
    status, out, bag = run
    assert status == 0
    summary = read_json(out / 'live_summary.json')
    assert summary['node']['depth_mode'] == 'fusion'
    depth, info, points = (_recorded(out, f'{NS}/{t}')
                           for t in ('depth/image', 'depth/camera_info', 'points'))
    assert set(depth) == set(info) == set(points)
    with_reference = set(bag.stamps_ns[:SILENT_FROM])
    assert len(with_reference & set(depth)) >= 2      # a loaded machine may drop frames
    gt, sensed, camera = _truth(bag)
    k = camera.K
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    shares = []
    for stamp in sorted(with_reference & set(points)):
        z = gt[stamp].astype(np.float64)
        truth = np.stack([(u - k[0, 2]) / k[0, 0] * z, (v - k[1, 2]) / k[1, 1] * z, z], -1)
        cloud = points[stamp]
        xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], -1).astype(np.float64)
        seen = np.isfinite(z)                                  # the sky has no depth
        assert np.isfinite(xyz[..., 2][seen]).mean() > 0.999   # surface pixels have depth
        np.testing.assert_allclose(depth[stamp], xyz[..., 2], rtol=1e-6)
        error = np.linalg.norm(xyz - truth, axis=-1) / np.linalg.norm(truth, axis=-1)
        kept = depth[stamp] == sensed[stamp]                   # the sensor's own depth
        assert kept.mean() > 0.55                              # 70 % valid, less its edges
        shares.append(((error[kept] <= 0.02).mean(), (error[seen] <= 0.02).mean()))
    print('\nfusion, live: share of cloud points within 2 % of the true planes (sensor pixels, '
          'all): ' + ', '.join(f'{a:.3f} {b:.3f}' for a, b in shares))
    assert min(a for a, _ in shares) >= 0.97
    assert min(b for _, b in shares) >= 0.8       # the tiny model fills the sensor's holes


def test_a_silent_sensor_holds_the_scale_then_stops_metric_output_and_says_why(run):
    _, out, bag = run
    depth = set(_recorded(out, f'{NS}/depth/image')) | set(_recorded(out, f'{NS}/points'))
    silent = bag.stamps_ns[SILENT_FROM:]
    metric = [s in depth for s in silent]
    # the node holds its scale for HOLD processed frames (a busy node may drop frames), then
    # publishes no metres, to the end of the run
    assert 1 <= sum(metric) <= HOLD and not any(metric[sum(metric):])
    log = (out / 'live_node.log').read_text()
    assert 'publishing no metric depth and no points' in log
    assert f'no {SENSOR_TOPIC} within' in log.split('publishing no metric depth')[0].splitlines()[-1]
