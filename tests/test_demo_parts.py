"""Pieces of ppd-demo: ROS isolation, millimetre PNG encoding, PLY export of a recorded cloud."""
from __future__ import annotations

import numpy as np

from ppd_ros.bag import pointcloud2_msg
from ppd_ros.bag.message_decoders import decode_pointcloud2
from ppd_ros.demo.cloud_ply import write_cloud_ply
from ppd_ros.demo.depth_pngs import depth_to_mm
from ppd_ros.demo.ros_isolation import isolate_ros
from ppd_ros.geometry.ply import read_ply


def test_ros_isolation_sets_a_domain_and_localhost_discovery():
    env = {}
    assert isolate_ros(env, pid=1234) == {'ROS_DOMAIN_ID': '35',
                                          'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    assert env['ROS_DOMAIN_ID'] == '35'


def test_ros_isolation_honours_the_users_settings():
    env = {'ROS_DOMAIN_ID': '7', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}
    assert isolate_ros(env, pid=1234) == env
    assert env == {'ROS_DOMAIN_ID': '7', 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}


def test_depth_to_mm_rounds_and_marks_invalid_zero():
    depth = np.array([[1.2346, np.nan, -1.0, 0.0], [0.0004, 70.0, 65.535, 3.0]], np.float32)
    mm = depth_to_mm(depth)
    assert mm.dtype == np.uint16
    assert mm.tolist() == [[1235, 0, 0, 0], [0, 65535, 65535, 3000]]


def test_recorded_cloud_to_ply_keeps_finite_coloured_points(tmp_path):
    xyz = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    xyz[0, 1] = np.nan
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    cloud = decode_pointcloud2(pointcloud2_msg(xyz, 0, 'cam', rgb))
    assert write_cloud_ply(tmp_path / 'c.ply', cloud, ['frame 3']) == 5
    points, colours, comments = read_ply(tmp_path / 'c.ply')
    keep = np.ones(6, bool)
    keep[1] = False
    np.testing.assert_array_equal(points, xyz.reshape(-1, 3)[keep])
    np.testing.assert_array_equal(colours, rgb.reshape(-1, 3)[keep])
    assert comments == ['frame 3']
