"""ROS conventions as plain functions: QoS matching and the Fast DDS profile check."""
import subprocess
import sys

import pytest

from ppd_ros.ros_conventions.camera_info import distortion_warning
from ppd_ros.ros_conventions.fastdds_profile import (fastdds_major_version, profile_problem,
                                                     profile_variable)
from ppd_ros.ros_conventions.qos_matching import matching_reliability

FASTRTPS, FASTDDS = 'FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'
FAST_DDS = 'rmw_fastrtps_cpp'


@pytest.mark.parametrize('setting, offered, expected', [
    ('auto', [], 'reliable'),                            # no camera yet
    ('auto', ['reliable'], 'reliable'),                  # a plain rclpy / image_transport camera
    ('auto', ['best_effort'], 'best_effort'),            # SensorDataQoS camera
    ('auto', ['reliable', 'best_effort'], 'best_effort'),  # a reliable reader misses the second
    ('reliable', ['best_effort'], 'reliable'),           # explicit settings are kept
    ('best_effort', ['reliable'], 'best_effort'),
])
def test_auto_reliability_matches_every_publisher(setting, offered, expected):
    assert matching_reliability(setting, offered) == expected


def test_fast_dds_version_from_loaded_libraries():
    assert fastdds_major_version(['/usr/lib/libc.so.6', '/opt/lib/libfastrtps.so.2.14']) == 2
    assert fastdds_major_version(['/opt/ros/kilted/lib/libfastdds.so.3.2']) == 3
    assert fastdds_major_version(['/usr/lib/libddsc.so.0']) is None


def test_this_ros_install_runs_fast_dds_2():
    code = ('import rclpy\nrclpy.init()\n'
            'from ppd_ros.ros_conventions.fastdds_profile import *\n'
            'print(fastdds_major_version(loaded_libraries()))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=60).stdout.split()
    assert out[-1] == '2'


def test_profile_variable_per_release():
    assert profile_variable(2) == FASTRTPS
    assert profile_variable(3) == FASTDDS
    assert profile_variable(None, 'jazzy') == FASTRTPS
    assert profile_variable(None, 'kilted') == FASTDDS
    assert profile_variable(None) is None


def test_profile_problem_names_the_variable_and_the_file(tmp_path):
    profile = tmp_path / 'profile.xml'
    profile.write_text('<dds/>')
    shipped = '/share/ppd_ros/config/fastdds_large_messages.xml'
    assert profile_problem(FAST_DDS, {FASTRTPS: str(profile)}, 2, shipped) is None
    assert profile_problem(FAST_DDS, {FASTDDS: str(profile)}, 3, shipped) is None
    assert profile_problem('rmw_cyclonedds_cpp', {}, None, shipped) is None

    problem = profile_problem(FAST_DDS, {}, 2, shipped)
    assert f'{FASTRTPS}={shipped}' in problem and FASTDDS not in problem
    # the README's old advice: FASTDDS_... alone does nothing on Fast DDS 2 (Jazzy)
    problem = profile_problem(FAST_DDS, {FASTDDS: str(profile)}, 2, shipped)
    assert f'{FASTDDS} is set, but Fast DDS 2.x reads only {FASTRTPS}' in problem
    assert profile_problem(FAST_DDS, {}, 3, shipped).count(f'{FASTDDS}={shipped}') == 1
    problem = profile_problem(FAST_DDS, {FASTRTPS: str(tmp_path / 'missing.xml')}, 2, shipped)
    assert 'missing.xml, which does not exist' in problem
    # version unknown: both names, either works
    problem = profile_problem(FAST_DDS, {}, None, shipped)
    assert f'{FASTDDS}={shipped}' in problem and f'{FASTRTPS}={shipped}' in problem


def test_distortion_warning_only_for_non_zero_d_on_an_image_not_named_rectified():
    raw, info = '/camera/color/image_raw', '/camera/color/camera_info'
    warning = distortion_warning(raw, info, 'plumb_bob', [0.1, -0.2, 0.0, 0.0, 0.0])
    assert "CameraInfo on '/camera/color/camera_info' has non-zero distortion" in warning
    assert "'plumb_bob', D = [0.1, -0.2, 0, 0, 0]" in warning and 'image_rect' in warning
    hostile = distortion_warning(raw, info, 'x\n[INFO] fake' + 'y' * 10_000, [0.1] * 10_000)
    assert '\n' not in hostile and len(hostile) < 500 and '(10000 values)' in hostile
    assert distortion_warning(raw, info, 'plumb_bob', [0.0] * 5) is None
    assert distortion_warning(raw, info, '', []) is None
    # raw and rectified images share one CameraInfo (D describes the raw image)
    assert distortion_warning('/camera/color/image_rect', info, 'plumb_bob', [0.1]) is None
    assert distortion_warning('/camera/image_rect_color', info, 'plumb_bob', [0.1]) is None
