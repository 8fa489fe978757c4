"""depth_node in its own process, fed 640x480 rgb8 + CameraInfo by a publisher process.

Runs the tiny model with random weights from a checkpoint the test writes, through the
shipped params file, remappings, a namespace and the Fast DDS large-message profile. The
probe changes parameters at run time, so one node run covers four phases:
  relative   output_scale 0.5               depth/relative 320x240, scaled camera_info, no cloud
  relative   output_scale 1.0, steps 2      depth/relative 640x480
  range      1..4 m, cloud.stride 2         depth/image in metres, 240x320 xyz+rgb cloud
  range      16UC1, output_scale 0.5, no rgb   depth/image in millimetres, 120x160 xyz cloud
The probe also snapshots the topics the node advertises in each depth.mode, and runs a
consumer that finds the CameraInfo of each depth topic as image_transport does.
"""
import pytest

from ppd_ros.ros_conventions.image_transport import camera_info_topic
from ros_helpers import (NAMESPACE, PROBE_K, PROBE_P, NodeProcess, by_stamp, last_diagnostics,
                         run_probe, tiny_checkpoint)  # noqa: F401 (fixture)

RELATIVE, METRIC, INFO, POINTS, COLORED, INLIERS = (
    f'{NAMESPACE}/{t}' for t in ('depth/relative', 'depth/image', 'depth/camera_info', 'points',
                                 'depth/colored', 'depth/inliers'))
PHASE = 10  # frames per phase
RELATIVE_HALF, RELATIVE_FULL, RANGE_FULL, RANGE_HALF_MM = range(4)


@pytest.fixture(scope='module')
def session(tiny_checkpoint, tmp_path_factory):
    work = tmp_path_factory.mktemp('cross_process')
    node = NodeProcess(work / 'node.log', params={
        'checkpoint': str(tiny_checkpoint), 'num_threads': 1, 'output_scale': 0.5})
    try:
        node.wait_ready()
        result = run_probe({
            'rate_hz': 5.0,  # slow enough for a loaded machine to process most frames
            'phases': [
                {'kind': 'good', 'count': PHASE},
                {'sleep': 0.5},
                {'graph': 'relative'},
                {'set_parameters': {'output_scale': 1.0, 'steps': 2}},
                {'set_parameters': {'depth.encoding': 'png'}},  # rejected: not an encoding
                {'set_parameters': {'depth.min_m': 25.0}},  # rejected: above depth.max_m
                {'set_parameters': {'variant': 'tiny'}},  # rejected: read-only
                {'set_parameters': {'steps': 0}},  # rejected: out of range
                {'kind': 'good', 'count': PHASE},
                {'sleep': 0.5},
                {'set_parameters': {'depth.mode': 'range', 'range.near_m': 1.0,
                                    'range.far_m': 4.0, 'cloud.stride': 2}},
                {'graph': 'range'},
                {'kind': 'good', 'count': PHASE},
                {'sleep': 0.5},
                {'set_parameters': {'depth.encoding': '16UC1', 'output_scale': 0.5,
                                    'cloud.rgb': False}},
                {'kind': 'good', 'count': PHASE},
            ],
            'record': [RELATIVE, METRIC, INFO, POINTS, COLORED, '/diagnostics'],
            'camera_consumers': [RELATIVE, METRIC],
            'wait_for_outputs': [RELATIVE, INFO, COLORED],  # those of the first depth.mode
        }, work)
    finally:
        returncode = node.stop()
    return result, node.output(), returncode


def _phase(result, topic, index):
    """Messages on `topic` answering the frames of phase `index`."""
    stamps = [p['stamp'] for p in result['published'][index * PHASE:(index + 1) * PHASE]]
    received = by_stamp(result['topics'][topic])
    return [received[s] for s in stamps if s in received]


def _depth_topic(phase):
    return RELATIVE if phase < RANGE_FULL else METRIC


def _all_depth(result):
    """Depth messages of both depth topics by stamp."""
    return {**by_stamp(result['topics'][RELATIVE]), **by_stamp(result['topics'][METRIC])}


def test_depth_outputs_match_input_stamps_frames_and_sizes(session):
    result, _, _ = session
    assert set(_all_depth(result)) <= {p['stamp'] for p in result['published']}
    for phase, (w, h, encoding, bytes_per_pixel) in enumerate([
            (320, 240, '32FC1', 4), (640, 480, '32FC1', 4), (640, 480, '32FC1', 4),
            (320, 240, '16UC1', 2)]):
        outputs = _phase(result, _depth_topic(phase), phase)
        assert len(outputs) >= PHASE // 2, f'too few depth images in phase {phase}'
        for msg in outputs:
            assert msg['frame_id'] == 'camera_color_optical_frame'
            assert (msg['width'], msg['height'], msg['encoding']) == (w, h, encoding)
            assert msg['step'] == bytes_per_pixel * w
            assert msg['bytes'] == bytes_per_pixel * w * h
            assert msg['max'] > msg['min']
            # relative depth has no invalid pixels; metres outside [0, inf) become invalid
            assert msg['finite_fraction'] == 1.0 if phase < RANGE_FULL else \
                msg['finite_fraction'] > 0.9


def test_relative_depth_and_metres_each_on_their_own_topic(session):
    result, _, _ = session
    relative, metric = by_stamp(result['topics'][RELATIVE]), by_stamp(result['topics'][METRIC])
    stamps = [[p['stamp'] for p in result['published'][i * PHASE:(i + 1) * PHASE]]
              for i in range(4)]
    assert not any(s in metric for s in stamps[RELATIVE_HALF] + stamps[RELATIVE_FULL])
    assert not any(s in relative for s in stamps[RANGE_FULL] + stamps[RANGE_HALF_MM])


def test_each_mode_advertises_only_what_it_can_publish(session):
    result, _, _ = session
    graph = result['graph']
    outputs = {INFO, COLORED, '/diagnostics'}
    assert set(graph['relative']) & {RELATIVE, METRIC, POINTS, INLIERS} == {RELATIVE}
    assert outputs <= set(graph['relative'])
    assert set(graph['range']) & {RELATIVE, METRIC, POINTS, INLIERS} == {METRIC, POINTS}
    assert outputs <= set(graph['range'])


def test_consumer_finds_camera_info_beside_each_depth_topic(session):
    """As depth_image_proc does: derive the CameraInfo topic from the image topic
    (image_transport's getCameraInfoTopic) and pair both by stamp."""
    result, _, _ = session
    for topic, phases in ((RELATIVE, (RELATIVE_HALF, RELATIVE_FULL)),
                          (METRIC, (RANGE_FULL, RANGE_HALF_MM))):
        consumer = result['camera_consumers'][topic]
        assert consumer['info_topic'] == camera_info_topic(topic) == INFO
        images, infos = set(consumer['image_stamps']), set(consumer['info_stamps'])
        expected = {p['stamp'] for i in phases
                    for p in result['published'][i * PHASE:(i + 1) * PHASE]}
        assert len(images & expected) >= PHASE, topic  # reliable, like depth_image_proc
        assert images <= infos, f'{topic}: images without their CameraInfo'


def test_range_mode_depth_is_metres_in_the_configured_range(session):
    result, _, _ = session
    for phase in (RANGE_FULL, RANGE_HALF_MM):
        for msg in _phase(result, METRIC, phase):
            # the prediction's 2nd / 98th percentiles are placed at 1 m / 4 m
            p2, p98 = msg['percentiles_2_98']
            assert p2 == pytest.approx(1.0, rel=0.1) and p98 == pytest.approx(4.0, rel=0.1)
            assert msg['min'] >= 0.0


def test_camera_info_scaled_with_the_depth(session):
    result, _, _ = session
    depth = _all_depth(result)
    infos = by_stamp(result['topics'][INFO])
    assert set(infos) == set(depth)  # one per depth image, same header
    for stamp, info in infos.items():
        assert info['frame_id'] == depth[stamp]['frame_id']
        assert (info['width'], info['height']) == (depth[stamp]['width'], depth[stamp]['height'])
        s = info['width'] / 640
        k, p = info['k'], info['p']
        # pixel-centre convention: c' = (c + 0.5) s - 0.5; Tx scales with fx
        assert k == pytest.approx([PROBE_K[0] * s, 0, (PROBE_K[2] + 0.5) * s - 0.5,
                                   0, PROBE_K[4] * s, (PROBE_K[5] + 0.5) * s - 0.5, 0, 0, 1])
        assert p == pytest.approx([PROBE_P[0] * s, 0, (PROBE_P[2] + 0.5) * s - 0.5,
                                   PROBE_P[3] * s, 0, PROBE_P[5] * s,
                                   (PROBE_P[6] + 0.5) * s - 0.5, 0, 0, 0, 1, 0])
        assert info['distortion_model'] == 'plumb_bob' and info['d'][:2] == [0.01, -0.02]


def test_colored_depth_published_with_the_same_header(session):
    result, _, _ = session
    depth = _all_depth(result)
    colored = by_stamp(result['topics'][COLORED])
    assert set(colored) == set(depth)
    for stamp, msg in colored.items():
        assert msg['encoding'] == 'bgr8' and msg['frame_id'] == depth[stamp]['frame_id']
        assert (msg['width'], msg['height']) == (depth[stamp]['width'], depth[stamp]['height'])


def test_clouds_only_in_metric_mode(session):
    result, _, _ = session
    assert _phase(result, POINTS, RELATIVE_HALF) == _phase(result, POINTS, RELATIVE_FULL) == []
    depth = _all_depth(result)
    assert {m['stamp'] for m in result['topics'][POINTS]} <= set(depth)


def test_metric_clouds_unproject_the_depth_with_camera_info(session):
    result, _, _ = session
    xyz = [('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1)]
    for phase, (w, h, step, fields, tolerance) in (
            (RANGE_FULL, (320, 240, 32, xyz + [('rgb', 16, 7, 1)], 1e-5)),
            (RANGE_HALF_MM, (160, 120, 16, xyz, 1e-3))):  # 16UC1 depth is rounded to mm
        clouds = _phase(result, POINTS, phase)
        assert len(clouds) >= PHASE // 2, f'too few clouds in phase {phase}'
        for cloud in clouds:
            assert cloud['frame_id'] == 'camera_color_optical_frame'
            assert (cloud['width'], cloud['height'], cloud['point_step']) == (w, h, step)
            assert cloud['row_step'] == step * w and cloud['bytes'] == step * w * h
            assert [tuple(f) for f in cloud['fields']] == fields
            assert cloud['is_dense'] is False
            assert cloud['finite_fraction'] > 0.9  # NaN exactly where the depth is invalid
            assert cloud['stride'] == 2 and cloud['nan_pattern_matches']
            assert cloud['xyz_max_error'] < tolerance
        if phase == RANGE_FULL:
            assert all(c['rgb_matches_input'] for c in clouds)


def test_run_time_parameters_validated(session):
    result, _, _ = session
    outcomes = result['parameter_results']
    assert outcomes[0] == [[True, ''], [True, '']]
    (ok, reason), = outcomes[1]
    assert not ok and 'depth.encoding' in reason
    (ok, reason), = outcomes[2]
    assert not ok and 'depth.min_m' in reason
    (ok, reason), = outcomes[3]
    assert not ok and 'read-only' in reason
    (ok, reason), = outcomes[4]
    assert not ok
    assert all(ok for ok, _ in outcomes[5]) and all(ok for ok, _ in outcomes[6])


def test_diagnostics_and_clean_shutdown(session):
    result, output, returncode = session
    status = last_diagnostics(result)
    assert status['name'] == 'ppd_ros: depth_node'
    values = status['values']
    assert int(values['frames processed']) >= len(_all_depth(result))
    # best effort with history 1: a frame may be lost in transport before the callback sees it
    assert 4 * PHASE - 3 <= int(values['frames received']) <= 4 * PHASE
    for key in ('dit (ms)', 'semantics (ms)', 'cloud (ms)', 'colorize (ms)', 'rate (Hz)',
                'frames dropped', 'last frame age (s)', 'latency (s)'):
        assert key in values
    assert returncode == 0
    assert 'Traceback' not in output and '[ERROR]' not in output
    assert 'large-message profile' not in output  # the profile is set: no warning


def test_one_warning_for_a_distorted_camera_info_on_a_raw_image(session):
    _, output, _ = session
    lines = [line for line in output.splitlines() if 'non-zero distortion' in line]
    assert len(lines) == 1, output  # once, although every frame's CameraInfo has D != 0
    assert '[WARN]' in lines[0] and "'/camera/color/image_raw' as a rectified image" in lines[0]
    assert 'D = [0.01, -0.02, 0, 0, 0]' in lines[0]
