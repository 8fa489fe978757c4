"""Analytic ray casting: exact depth, occlusion, shading, validity, culling."""
import math

import numpy as np
import pytest

import ppd_ros.synthetic.renderer as render_module
from ppd_ros.synthetic import (Box, CameraIntrinsics, CameraPose, Cylinder, DirectionalLight,
                               Material, Plane, Scene, Sphere, render, sample_room)

GREY = Material((0.5, 0.5, 0.5))
WHITE = Material((1.0, 1.0, 1.0))
X, Y, Z = np.eye(3)
INTR = CameraIntrinsics.from_hfov(64, 48, 70.0)
LEVEL = CameraPose.from_yaw_pitch_roll((0.0, 0.0, 1.0))  # looks along +x


def wall_at(x: float, material=GREY, **kwargs) -> Plane:
    """A wall facing the level camera at distance x (plane x = const)."""
    return Plane((x, 0.0, 1.0), Y, Z, material, **kwargs)


def test_fronto_parallel_wall_has_constant_exact_depth():
    frame = render(Scene([wall_at(3.0)]), INTR, LEVEL)
    assert frame.depth.dtype == np.float32 and frame.depth.shape == (48, 64)
    assert frame.valid.all()
    np.testing.assert_allclose(frame.depth, 3.0, atol=1e-5)


def test_floor_depth_matches_the_analytic_formula():
    h, pitch = 1.3, math.radians(25)
    pose = CameraPose.from_yaw_pitch_roll((0.4, -0.2, h), yaw=0.3, pitch=pitch)
    frame = render(Scene([Plane((0, 0, 0), X, Y, GREY)]), INTR, pose, max_range=50.0)
    # optical ray (x, y, 1) meets the floor where Z (y cos(pitch) + sin(pitch)) = h
    y = (np.arange(INTR.height) - INTR.cy) / INTR.fy
    denom = y * math.cos(pitch) + math.sin(pitch)
    expected = np.broadcast_to(np.where(denom > 0, h / np.where(denom > 0, denom, 1), np.nan)
                               [:, None], frame.depth.shape)
    expected = np.where(expected <= 50.0, expected, np.nan)
    np.testing.assert_array_equal(np.isnan(frame.depth), np.isnan(expected))
    assert np.isnan(frame.depth).any() and frame.valid.sum() > 0  # horizon in view
    np.testing.assert_allclose(frame.depth[frame.valid], expected[frame.valid], rtol=1e-6)


def test_sphere_depth_at_its_centre_pixel():
    sphere = Sphere((4.0, 0.0, 1.0), 0.5, GREY)
    frame = render(Scene(spheres=[sphere]), CameraIntrinsics(65, 49, 40.0, 40.0, 32, 24), LEVEL)
    assert frame.depth[24, 32] == pytest.approx(3.5, abs=1e-6)
    assert not frame.valid[0, 0]  # nothing but the sphere: sky around it


def test_object_in_front_occludes_the_wall_with_a_sharp_edge():
    box = Box((2.0, 0.0, 1.0), (0.25, 0.5, 0.5), GREY)
    frame = render(Scene([wall_at(5.0)], boxes=[box]), INTR, LEVEL)
    row = frame.depth[INTR.height // 2]
    box_px = frame.object_id[INTR.height // 2] == 1
    assert box_px.any() and (~box_px).any()
    np.testing.assert_allclose(row[box_px], 1.75, atol=1e-5)  # the box's front face
    np.testing.assert_allclose(row[~box_px], 5.0, atol=1e-5)
    assert row[box_px].max() < row[~box_px].min()
    # no intermediate (flying) depths: adjacent pixels jump by the full 3.25 m
    jumps = np.abs(np.diff(row))
    assert jumps.max() == pytest.approx(3.25, abs=1e-5)
    assert np.all((jumps < 1e-5) | (jumps > 3.2))


def test_pole_in_front_of_wall_is_nearer_and_thin():
    col = 40
    y = -(col - INTR.cx) / INTR.fx * 2.0  # axis on the ray through pixel column 40
    pole = Cylinder((2.0, y, 0.0), 0.02, 2.5, GREY)
    frame = render(Scene([wall_at(4.0)], cylinders=[pole]), INTR, LEVEL)
    hit = frame.object_id == 1
    np.testing.assert_array_equal(np.flatnonzero(hit.any(0)), [col])  # 0.9 px wide at 2 m
    angle = math.atan((col - INTR.cx) / INTR.fx)
    np.testing.assert_allclose(frame.depth[hit], 2.0 - 0.02 * math.cos(angle), atol=1e-6)
    np.testing.assert_allclose(frame.depth[~hit], 4.0, atol=1e-5)


def test_shading_follows_surface_normals():
    light = DirectionalLight(direction=np.array([0.0, -1.0, 0.0]), ambient=0.2)  # from +y (left)
    sphere = Sphere((3.0, 0.0, 1.0), 0.8, WHITE)
    frame = render(Scene(spheres=[sphere], light=light), INTR, LEVEL, with_normals=True)
    row = INTR.height // 2
    hit = np.flatnonzero(frame.object_id[row] == 0)
    left = frame.rgb[row, hit[:len(hit) // 3]].astype(int)
    right = frame.rgb[row, hit[-len(hit) // 3:]].astype(int)
    assert left.mean() > right.mean() + 80
    # the surface facing away gets ambient light only: sqrt(0.2) in display units
    np.testing.assert_allclose(right, round(math.sqrt(0.2) * 255), atol=1)
    # normals come back unit length, in the optical frame, facing the camera
    n = frame.normals[frame.object_id == 0]
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    assert np.all(n[:, 2] < 0)
    centre = frame.normals[row, hit[len(hit) // 2]]
    np.testing.assert_allclose(centre, [0, 0, -1], atol=0.05)


def test_wall_facing_the_light_is_brighter_than_a_wall_facing_away():
    light = DirectionalLight(direction=np.array([1.0, 0.0, 0.0]), ambient=0.1)  # shines +x
    lit = render(Scene([wall_at(3.0, WHITE)], light=light), INTR, LEVEL)
    unlit = render(Scene([wall_at(3.0, WHITE)], light=light), INTR,
                   CameraPose.from_yaw_pitch_roll((6.0, 0.0, 1.0), yaw=math.pi))
    assert lit.rgb.min() == 255 and unlit.rgb.max() == round(math.sqrt(0.1) * 255)


def test_window_and_max_range_define_the_valid_mask():
    wall = wall_at(3.0, hole=(-0.5, 0.5, -0.5, 0.5))  # a 1 m opening at the image centre
    frame = render(Scene([wall]), INTR, LEVEL)
    assert not frame.valid[INTR.height // 2, INTR.width // 2]
    assert frame.valid[0, 0]
    np.testing.assert_array_equal(frame.valid, np.isfinite(frame.depth))
    assert (frame.object_id == -1).sum() == (~frame.valid).sum()
    # the opening spans 1 m at 3 m: fx / 3 pixels wide
    assert (~frame.valid[INTR.height // 2]).sum() == pytest.approx(INTR.fx / 3, abs=1.01)

    far = render(Scene([wall_at(25.0)]), INTR, LEVEL, max_range=20.0)
    assert not far.valid.any() and np.isnan(far.depth).all()
    assert (far.object_id == 0).all()  # still rendered, only its depth is out of range


def test_bounding_window_culling_never_changes_the_image(monkeypatch):
    rooms = [sample_room(np.random.default_rng(seed)) for seed in range(6)]
    culled = [render(r.scene, INTR, r.base_pose(), with_normals=True) for r in rooms]
    monkeypatch.setattr(render_module, 'pixel_window',
                        lambda corners, intr, pose: (slice(0, intr.height), slice(0, intr.width)))
    for room, fast in zip(rooms, culled):
        full = render(room.scene, INTR, room.base_pose(), with_normals=True)
        np.testing.assert_array_equal(fast.object_id, full.object_id)
        np.testing.assert_array_equal(fast.depth, full.depth)
        np.testing.assert_array_equal(fast.rgb, full.rgb)
