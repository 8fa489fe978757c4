"""depth_node's output catalogue: image_transport sibling names, and which outputs each
depth.mode advertises (plain Python, no ROS graph)."""
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from ppd_ros.node.node_parameters import PARAMETERS, DepthNodeSettings
from ppd_ros.node.outputs import (CAMERA_INFO, DEPTH_COLORED, DEPTH_IMAGE, DEPTH_INLIERS,
                                  DEPTH_RELATIVE, IMAGE, OUTPUT_BY_TOPIC, OUTPUTS, POINTS,
                                  FrameProducts, advertised_outputs)
from ppd_ros.ros_conventions.image_transport import camera_info_topic

DEFAULTS = DepthNodeSettings.from_values({p.name: p.default for p in PARAMETERS})


@pytest.mark.parametrize('image_topic, info_topic', [
    ('/cam/depth/image', '/cam/depth/camera_info'),
    ('/cam/depth/relative', '/cam/depth/camera_info'),
    ('/camera/color/image_raw', '/camera/color/camera_info'),
    ('/depth', '/camera_info'),                    # the old layout: no sibling camera_info
    ('image', '/camera_info'),                     # unresolved: image_transport's result
    ('depth/image', '/depth/camera_info'),
    ('//a//b', '/a/camera_info'),                  # empty components are dropped ...
    ('/a/b/', '/a/b/camera_info'),                 # ... except a trailing one
])
def test_camera_info_topic_follows_image_transport(image_topic, info_topic):
    assert camera_info_topic(image_topic) == info_topic


def test_every_image_output_has_the_camera_info_as_sibling():
    images = [o for o in OUTPUTS if o.message == IMAGE]
    assert {o.topic for o in images} >= {DEPTH_IMAGE, DEPTH_RELATIVE, DEPTH_COLORED,
                                         DEPTH_INLIERS}
    for output in images:
        assert output.image is not None, output.topic
        for namespace in ('', '/front', '/robot/front'):
            assert camera_info_topic(f'{namespace}/{output.topic}') == \
                f'{namespace}/{CAMERA_INFO}'


@pytest.mark.parametrize('changes, topics', [
    ({}, {CAMERA_INFO, DEPTH_RELATIVE, DEPTH_COLORED}),
    ({'depth_mode': 'range'}, {CAMERA_INFO, DEPTH_IMAGE, POINTS, DEPTH_COLORED}),
    ({'depth_mode': 'reference'}, {CAMERA_INFO, DEPTH_IMAGE, POINTS, DEPTH_COLORED}),
    ({'depth_mode': 'reference', 'reference_publish_inliers': True},
     {CAMERA_INFO, DEPTH_IMAGE, POINTS, DEPTH_COLORED, DEPTH_INLIERS}),
    ({'depth_mode': 'relative', 'reference_publish_inliers': True, 'colorize': False},
     {CAMERA_INFO, DEPTH_RELATIVE}),
])
def test_each_mode_advertises_only_what_it_can_publish(changes, topics):
    assert {o.topic for o in advertised_outputs(replace(DEFAULTS, **changes))} == topics


def _products(metres, mode='range', encoding='32FC1'):
    frame = SimpleNamespace(relative=np.full((2, 3), 0.25, np.float32), metres=metres,
                            colored=np.zeros((2, 3, 3), np.uint8))
    return FrameProducts(frame, replace(DEFAULTS, depth_mode=mode, depth_encoding=encoding),
                         None)


def test_depth_image_carries_metres_only_and_relative_its_own_topic():
    metres = np.full((2, 3), 1.5, np.float32)
    data = OUTPUT_BY_TOPIC[DEPTH_IMAGE].image(_products(metres, encoding='16UC1'))
    assert data.array is metres and data.encoding == '16UC1'
    assert OUTPUT_BY_TOPIC[DEPTH_IMAGE].image(_products(None)) is None  # no scale: nothing
    relative = OUTPUT_BY_TOPIC[DEPTH_RELATIVE].image(_products(None, mode='relative'))
    assert relative.encoding == '32FC1' and np.all(relative.array == 0.25)
    assert OUTPUT_BY_TOPIC[DEPTH_COLORED].image(_products(None)).encoding == 'bgr8'
    assert OUTPUT_BY_TOPIC[DEPTH_INLIERS].image(_products(metres)) is None  # no reference fit


def test_output_catalogue_imports_no_ros():
    code = ('import sys, ppd_ros.node.outputs, ppd_ros.ros_conventions.image_transport\n'
            'sys.exit(any(m.split(".")[0] in ("rclpy", "sensor_msgs") for m in sys.modules))')
    assert subprocess.run([sys.executable, '-c', code], timeout=60).returncode == 0


def test_ros_interface_page_names_every_output(repo_root):
    page = (repo_root / 'docs' / 'ros_interface.md').read_text()
    for output in OUTPUTS:
        assert f'`{output.topic}`' in page, output.topic
