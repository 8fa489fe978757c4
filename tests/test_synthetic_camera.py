"""Camera model of the synthetic generator: intrinsics, CameraInfo fields, pose, rays."""
import math

import numpy as np
import pytest

from ppd_ros.synthetic import CameraInfoFields, CameraIntrinsics, CameraPose, optical_rays


def test_k_and_camera_info_match_intrinsics():
    intr = CameraIntrinsics(width=64, height=48, fx=50.0, fy=52.0, cx=31.0, cy=24.5)
    info = intr.camera_info()
    np.testing.assert_array_equal(intr.K, [[50, 0, 31], [0, 52, 24.5], [0, 0, 1]])
    assert (info.width, info.height, info.distortion_model) == (64, 48, 'plumb_bob')
    np.testing.assert_array_equal(info.K, intr.K)
    np.testing.assert_array_equal(info.P, np.hstack([intr.K, np.zeros((3, 1))]))
    np.testing.assert_array_equal(info.R, np.eye(3))
    np.testing.assert_array_equal(info.d, np.zeros(5))
    assert info.k.shape == (9,) and info.p.shape == (12,) and info.r.shape == (9,)
    assert info.intrinsics() == intr


def test_from_hfov_gives_the_requested_field_of_view():
    intr = CameraIntrinsics.from_hfov(128, 96, 70.0)
    assert intr.fx == intr.fy
    assert (intr.cx, intr.cy) == (63.5, 47.5)
    # the outer pixel edges (u = -0.5 and W - 0.5) span exactly the horizontal FOV
    half = math.degrees(math.atan((intr.width / 2) / intr.fx))
    assert 2 * half == pytest.approx(70.0)
    with pytest.raises(ValueError):
        CameraIntrinsics.from_hfov(0, 96)


def test_camera_info_equality_compares_arrays():
    a = CameraIntrinsics.from_hfov(32, 24).camera_info()
    b = CameraIntrinsics.from_hfov(32, 24).camera_info()
    c = CameraIntrinsics.from_hfov(32, 24, 60.0).camera_info()
    assert a == b and a != c
    assert isinstance(a, CameraInfoFields)


def test_optical_rays_reproject_to_their_pixels():
    intr = CameraIntrinsics(40, 30, 33.0, 35.0, 19.2, 14.7)
    rays = optical_rays(intr)
    assert rays.shape == (3, 30, 40)
    np.testing.assert_array_equal(rays[2], 1.0)
    uvw = np.einsum('ij,jhw->ihw', intr.K, rays)
    v, u = np.mgrid[0:30, 0:40]
    np.testing.assert_allclose(uvw[0], u, atol=1e-12)
    np.testing.assert_allclose(uvw[1], v, atol=1e-12)


def test_pose_conventions_rep103():
    level = CameraPose.from_yaw_pitch_roll((0, 0, 1))
    # optical z (forward) -> world +x, optical x (right) -> world -y, optical y (down) -> -z
    np.testing.assert_allclose(level.world_from_optical,
                               [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-15)
    tilted = CameraPose.from_yaw_pitch_roll((0, 0, 1), pitch=math.radians(30))
    forward = tilted.world_from_optical[:, 2]
    assert forward[2] == pytest.approx(-0.5)  # positive pitch looks down
    turned = CameraPose.from_yaw_pitch_roll((0, 0, 1), yaw=math.radians(90))
    np.testing.assert_allclose(turned.world_from_optical[:, 2], [0, 1, 0], atol=1e-15)
    rot = CameraPose.from_yaw_pitch_roll((0, 0, 0), 0.3, -0.2, 0.1).world_from_optical
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
