"""depth_node in depth.mode 'moge' in its own process: metric depth from one RGB camera.

The shipped tiny PPD and tiny MoGe-2 (models/), a probe publishing a 640x480 procedural room:
  no CameraInfo   metric depth/image and points; depth/camera_info carries MoGe-2's estimated
                  intrinsics, and the log (once) and /diagnostics say so
  CameraInfo      depth/camera_info is the camera's (scaled with output_scale); MoGe-2 solves
                  only the depth shift
  require         moge.require_camera_info true and an unusable CameraInfo (NaN K): no metric
                  output, and the reason in the log
"""
import subprocess
import sys

import pytest

from ros_helpers import (NAMESPACE, PROBE_K, REPO_ROOT, NodeProcess, by_stamp, ros_env,
                         run_probe)

METRIC, INFO, POINTS, RELATIVE = (f'{NAMESPACE}/{t}' for t in (
    'depth/image', 'depth/camera_info', 'points', 'depth/relative'))
PHASE = 6
NO_INFO, WITH_INFO, REQUIRED = range(3)


@pytest.fixture(scope='module')
def session(tmp_path_factory):
    work = tmp_path_factory.mktemp('moge_mode')
    node = NodeProcess(work / 'node.log', params={
        'checkpoint': 'models/tiny_ppd.safetensors',
        'moge_checkpoint': 'models/tiny_moge2.safetensors', 'depth.mode': 'moge',
        'num_threads': 1, 'output_scale': 0.5, 'cloud.stride': 2})
    try:
        node.wait_ready()
        result = run_probe({
            'rate_hz': 3.0, 'scene_seed': 1_000_011,
            'phases': [
                {'kind': 'no_info', 'count': PHASE},
                {'mark': 'estimated'},
                {'kind': 'good', 'count': PHASE},
                {'mark': 'camera_info'},
                {'set_parameters': {'depth.mode': 'relative'}},
                {'set_parameters': {'depth.mode': 'moge', 'moge.require_camera_info': True}},
                {'kind': 'nan_k', 'count': PHASE},
            ],
            'record': [METRIC, INFO, POINTS, '/diagnostics'],
            'wait_for_outputs': [METRIC, INFO, POINTS],
        }, work, timeout=180.0)
    finally:
        returncode = node.stop()
    return result, node.output(), returncode


def _phase(result, topic, index):
    stamps = [p['stamp'] for p in result['published'][index * PHASE:(index + 1) * PHASE]]
    received = by_stamp(result['topics'][topic])
    return [received[s] for s in stamps if s in received]


def test_metric_depth_and_points_with_and_without_camera_info(session):
    result, _, _ = session
    for phase in (NO_INFO, WITH_INFO):
        depth = _phase(result, METRIC, phase)
        assert len(depth) >= 2, f'too few metric depth images in phase {phase}'
        for msg in depth:
            assert (msg['width'], msg['height'], msg['encoding']) == (320, 240, '32FC1')
            assert msg['finite_fraction'] > 0.5
            assert 0.1 <= msg['min'] < msg['max'] <= 20.0   # metres within depth.min/max_m
        clouds = _phase(result, POINTS, phase)
        assert clouds and all(c['finite_fraction'] > 0.5 for c in clouds)
        assert all(c['nan_pattern_matches'] and c['xyz_max_error'] < 1e-4 for c in clouds)


def test_camera_info_is_the_estimate_without_camera_info_and_the_camera_s_with_it(session):
    result, _, _ = session
    estimated = _phase(result, INFO, NO_INFO)
    assert estimated
    for info in estimated:
        k = info['k']
        assert (info['width'], info['height']) == (320, 240)
        assert k[2] == pytest.approx(159.5) and k[5] == pytest.approx(119.5)  # centred
        assert 50 < k[0] < 800 and k[0] != pytest.approx(PROBE_K[0] / 2)
        assert info['distortion_model'] == 'plumb_bob' and info['d'] == [0.0] * 5
    given = _phase(result, INFO, WITH_INFO)
    assert given
    s = 0.5
    for info in given:
        assert info['k'] == pytest.approx([PROBE_K[0] * s, 0, (PROBE_K[2] + 0.5) * s - 0.5,
                                           0, PROBE_K[4] * s, (PROBE_K[5] + 0.5) * s - 0.5,
                                           0, 0, 1])


def test_the_log_and_diagnostics_say_where_the_intrinsics_come_from(session):
    result, output, returncode = session
    assert output.count("depth.mode 'moge' uses MoGe-2's estimated intrinsics") == 1
    assert result['marks']['estimated']['intrinsics'] == 'MoGe-2 estimate (no CameraInfo)'
    assert result['marks']['camera_info']['intrinsics'] == 'CameraInfo'
    assert result['marks']['camera_info']['depth mode'] == 'moge'
    assert returncode == 0 and 'Traceback' not in output


def test_required_camera_info_that_is_unusable_gives_no_metric_output(session):
    result, output, _ = session
    assert not _phase(result, METRIC, REQUIRED) and not _phase(result, POINTS, REQUIRED)
    assert "depth.mode 'moge' with moge.require_camera_info: no usable CameraInfo" in output


def test_moge_mode_can_be_left_and_entered_again(session):
    result, _, _ = session
    assert result['parameter_results'] == [[[True, '']], [[True, ''], [True, '']]]


def test_a_node_without_moge_refuses_the_mode_at_run_time(tmp_path):
    with NodeProcess(tmp_path / 'node.log', params={
            'checkpoint': 'models/tiny_ppd.safetensors', 'num_threads': 1}) as node:
        node.wait_ready()
        result = run_probe({'phases': [{'set_parameters': {'depth.mode': 'moge'}}],
                            'record': [], 'wait_for_outputs': [RELATIVE]}, tmp_path)
    (ok, reason), = result['parameter_results'][0]
    assert not ok and 'restart the node with depth.mode:=moge' in reason


def test_missing_moge_weights_are_one_fatal_line(tmp_path):
    missing = tmp_path / 'model.pt'
    proc = subprocess.run(
        [sys.executable, '-m', 'ppd_ros.node.depth_node', '--ros-args', '-p', 'depth.mode:=moge',
         '-p', f'moge_checkpoint:={missing}'], cwd=REPO_ROOT, env=ros_env(), capture_output=True,
        text=True, timeout=60)
    output = proc.stdout + proc.stderr
    fatal = [line for line in output.splitlines() if '[FATAL]' in line]
    assert proc.returncode != 0 and 'Traceback' not in output and len(fatal) == 1, output
    assert 'moge_checkpoint' in fatal[0] and str(missing) in fatal[0] and 'ppd-fetch' in fatal[0]
