"""Seeded random rooms and camera sequences."""
import numpy as np
import pytest

from ppd_ros.synthetic import generate_frame, generate_sequence, sample_room
from ppd_ros.synthetic.room_sampler import STAND_RADIUS_M

W, H = 64, 48


def assert_frames_equal(a, b):
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)  # NaN positions must agree too
    np.testing.assert_array_equal(a.valid, b.valid)


def test_same_seed_same_frame_and_different_seed_different_frame():
    a, b = generate_frame(7, W, H), generate_frame(7, W, H)
    assert_frames_equal(a, b)
    c = generate_frame(8, W, H)
    assert not np.array_equal(a.rgb, c.rgb)
    assert not np.allclose(np.nan_to_num(a.depth), np.nan_to_num(c.depth))


def test_frame_outputs_are_consistent():
    for seed in range(5):
        f = generate_frame(seed, W, H, with_normals=True)
        assert f.rgb.shape == (H, W, 3) and f.rgb.dtype == np.uint8
        assert f.depth.shape == (H, W) and f.depth.dtype == np.float32
        assert f.valid.dtype == bool and f.normals.shape == (H, W, 3)
        np.testing.assert_array_equal(f.valid, np.isfinite(f.depth))
        assert f.valid.mean() > 0.5
        assert np.all(f.depth[f.valid] > 0.3) and np.all(f.depth[f.valid] <= 20.0)
        np.testing.assert_array_equal(f.K, f.camera_info.K)
        assert f.rgb.std() > 5  # textured and shaded, not flat


def test_rooms_contain_the_promised_primitives():
    rooms = [sample_room(np.random.default_rng(s)) for s in range(12)]
    cylinders = [c for r in rooms for c in r.scene.cylinders]
    assert any(c.radius <= 0.03 for c in cylinders)  # thin poles
    assert any(c.radius > 0.05 for c in cylinders)
    assert any(r.scene.boxes for r in rooms) and any(r.scene.spheres for r in rooms)
    assert any(not np.allclose(b.rotation, np.eye(3)) for r in rooms for b in r.scene.boxes)
    patterns = {p.material.pattern for r in rooms for p in r.scene.objects}
    assert patterns == {'solid', 'checker', 'stripes', 'noise'}
    # camera: heights and downward pitch vary per seed
    assert len({round(r.camera_position[2], 3) for r in rooms}) == len(rooms)
    assert all(0 < r.pitch < np.radians(25) for r in rooms)


def test_objects_keep_clear_of_the_camera_path():
    for seed in range(20):
        room = sample_room(np.random.default_rng(seed))
        np.testing.assert_array_equal(room.camera_position[0], 0.0)
        for obj in room.scene.boxes + room.scene.spheres + room.scene.cylinders:
            # bounding corners >= 1 m ahead; trajectories move the camera <= 0.5 m forward
            assert obj.corners[:, 0].min() >= 1.0 - 1e-9


def test_every_object_touches_the_floor_or_stands_on_a_stand():
    raised = 0
    for seed in range(40):
        scene = sample_room(np.random.default_rng(seed)).scene
        stands = [c for c in scene.cylinders if c.radius == STAND_RADIUS_M]
        for obj in scene.boxes + scene.spheres:
            bottom = obj.corners[:, 2].min()
            if bottom < 1e-6:  # resting on the floor
                continue
            raised += 1
            centre = obj.center
            under = [c for c in stands if np.allclose(c.base[:2], centre[:2])
                     and c.base[2] == 0.0 and c.height >= centre[2] - 1e-9]
            assert under, f'seed {seed}: an object floats at {bottom:.2f} m with no stand'
    assert raised >= 5  # raised objects do occur


def test_sequence_starts_at_the_single_frame_and_moves_a_little():
    frames = list(generate_sequence(3, 6, W, H))
    assert len(frames) == 6
    assert_frames_equal(frames[0], generate_frame(3, W, H))
    assert_frames_equal(frames[4], list(generate_sequence(3, 6, W, H))[4])
    for prev, cur in zip(frames, frames[1:]):
        step = np.linalg.norm(cur.pose.position - prev.pose.position)
        assert 0 < step < 0.03
        rot = prev.pose.world_from_optical.T @ cur.pose.world_from_optical
        assert np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))) < 0.5
        assert not np.array_equal(prev.rgb, cur.rgb)
    # one scene: the same object ids appear throughout
    assert set(np.unique(frames[0].object_id)) & set(np.unique(frames[-1].object_id))


def test_sequence_stays_bounded_over_long_runs():
    frames = generate_sequence(1, 400, 8, 6)
    positions = np.array([f.pose.position for f in frames])
    drift = np.abs(positions - positions[0]).max(0)
    assert np.all(drift <= [0.5 + 1e-9, 0.3 + 1e-9, 0.1 + 1e-9])


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError):
        generate_frame(0, 0, 10)
    with pytest.raises(ValueError):
        next(generate_sequence(0, -1, W, H))
