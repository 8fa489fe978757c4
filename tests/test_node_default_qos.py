"""A plain camera into depth_node with every default and no Fast DDS profile anywhere.

The camera is an rclpy publisher with default QoS (reliable, history 10), as a camera driver
would create it, sending 640x480 rgb8 with CameraInfo at 10 Hz; a consumer subscribes to
depth/relative with default QoS. The node runs with its built-in parameters only (no params
file, no overrides: the shipped tiny model, qos.reliability 'auto'). Then the camera is
replaced by a best-effort publisher, which 'auto' follows.
"""
import pytest

from ros_helpers import FASTDDS_PROFILE, IMAGE_TOPIC, NAMESPACE, NodeProcess, last_diagnostics, \
    run_probe

RELATIVE = f'{NAMESPACE}/depth/relative'
FRAMES, BEST_EFFORT_FRAMES = 60, 20


@pytest.fixture(scope='module')
def session(tmp_path_factory):
    work = tmp_path_factory.mktemp('default_qos')
    node = NodeProcess(work / 'node.log', params_file=None, profile=False)
    try:
        node.wait_ready()
        result = run_probe({
            'rate_hz': 10.0, 'publisher_qos': 'default', 'record_qos': 'default',
            'phases': [{'kind': 'good', 'count': FRAMES},
                       {'mark': 'reliable camera'},
                       {'image_publisher': 'best_effort'},
                       {'kind': 'good', 'count': BEST_EFFORT_FRAMES}],
            'record': [RELATIVE, '/diagnostics'],
        }, work, profile=False)
    finally:
        returncode = node.stop()
    return result, node.output(), returncode


def test_plain_camera_frames_arrive_with_the_defaults(session):
    result, _, returncode = session
    received = int(result['marks']['reliable camera']['frames received'])
    print(f'\nplain 640x480 rgb8 camera at 10 Hz, no Fast DDS profile: the node received '
          f'{received} of {FRAMES} frames ({received / FRAMES:.1%}); '
          f"{len(result['topics'][RELATIVE])} depth/relative outputs in all")
    assert received >= 0.95 * FRAMES
    assert result['topics'][RELATIVE], 'the node published no depth'
    assert returncode == 0


def test_auto_reliability_follows_a_best_effort_camera(session):
    result, output, _ = session
    assert f"subscribed to '{IMAGE_TOPIC}' best_effort" in output
    before = int(result['marks']['reliable camera']['frames received'])
    after = int(last_diagnostics(result)['values']['frames received'])
    print(f"best-effort camera matched after {result['matched_after_s']['best_effort']:.2f} s; "
          f'received {after - before} of {BEST_EFFORT_FRAMES} frames')
    # a reliable reader gets nothing at all from this publisher; best effort gets what the
    # transport delivers, without a profile on the camera often a minority of the frames
    assert after - before >= 1


def test_one_warning_names_the_profile_variable_this_fast_dds_reads(session):
    _, output, _ = session
    lines = [line for line in output.splitlines() if 'large-message profile' in line]
    assert len(lines) == 1, output
    assert '[WARN]' in lines[0]
    # Jazzy's Fast DDS 2.14 reads FASTRTPS_DEFAULT_PROFILES_FILE only
    assert f'FASTRTPS_DEFAULT_PROFILES_FILE={FASTDDS_PROFILE}' in lines[0]
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in lines[0]
