"""Synthetic bags written and read back in both rosbag2 storage formats."""
import numpy as np
import pytest

from ppd_ros.bag import (BagMessageError, BagReader, BagWriter, MissingTopicError,
                         read_rgbd_frames, write_synthetic_bag)
from ppd_ros.bag.message_builders import camera_info_msg, depth_image_msg, image_msg
from ppd_ros.bag.synthetic_bag import DEFAULT_START_NS
from ppd_ros.synthetic import generate_sequence

W, H, N, SEED = 48, 36, 4, 5
IMAGE, DEPTH, INFO = '/camera/image_raw', '/camera/depth/image_raw', '/camera/camera_info'


@pytest.fixture(scope='module')
def reference():
    return list(generate_sequence(SEED, N, W, H))


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_roundtrip_preserves_count_stamps_images_and_depth(tmp_path, reference, storage):
    written = write_synthetic_bag(tmp_path / 'bag', N, W, H, SEED, storage, rate_hz=20.0)
    suffix = {'sqlite3': '.db3', 'mcap': '.mcap'}[storage]
    assert [p.suffix for p in written.path.iterdir() if p.name != 'metadata.yaml'] == [suffix]
    assert written.topics == {INFO: N, IMAGE: N, DEPTH: N}
    expected_stamps = [DEFAULT_START_NS + i * 50_000_000 for i in range(N)]
    assert list(written.stamps_ns) == expected_stamps

    with BagReader(written.path) as bag:
        assert bag.topics == {INFO: 'sensor_msgs/msg/CameraInfo', IMAGE: 'sensor_msgs/msg/Image',
                              DEPTH: 'sensor_msgs/msg/Image'}
        assert bag.message_count(IMAGE) == N
        images = list(bag.messages([IMAGE]))
        depths = list(bag.messages([DEPTH]))
        infos = list(bag.messages([INFO]))
        everything = list(bag.messages())
    assert len(images) == len(depths) == len(infos) == N and len(everything) == 3 * N
    assert [m.stamp_ns for m in images] == expected_stamps
    assert [m.timestamp_ns for m in depths] == expected_stamps
    assert [m.timestamp_ns for m in everything] == sorted(m.timestamp_ns for m in everything)
    for img, dep, info, ref in zip(images, depths, infos, reference):
        assert img.frame_id == dep.frame_id == info.frame_id == 'camera_color_optical_frame'
        assert img.msg.encoding == 'rgb8' and dep.msg.encoding == '32FC1'
        np.testing.assert_array_equal(img.data, ref.rgb)
        np.testing.assert_array_equal(dep.data, ref.depth)  # incl. the NaN pattern
        assert info.data == ref.camera_info


def test_reference_sequence_has_invalid_depth_to_roundtrip(reference):
    # seed 5 views a window; the NaN-pattern check above would be vacuous otherwise
    assert any(np.isnan(f.depth).any() for f in reference)


@pytest.mark.parametrize('fmt', ['png', 'jpeg'])
def test_compressed_colour(tmp_path, reference, fmt):
    written = write_synthetic_bag(tmp_path / 'bag', N, W, H, SEED, 'mcap', compressed=True,
                                  compressed_format=fmt)
    assert IMAGE + '/compressed' in written.topics and IMAGE not in written.topics
    frames = list(read_rgbd_frames(written.path))  # finds the /compressed sibling
    assert len(frames) == N
    for frame, ref in zip(frames, reference):
        if fmt == 'png':
            np.testing.assert_array_equal(frame.rgb, ref.rgb)
        else:
            assert np.abs(frame.rgb.astype(int) - ref.rgb).mean() < 6.0
        np.testing.assert_array_equal(frame.depth, ref.depth)


def test_rgbd_frames_pair_by_stamp(tmp_path, reference):
    written = write_synthetic_bag(tmp_path / 'bag', N, W, H, SEED, 'sqlite3', rate_hz=5.0)
    frames = list(read_rgbd_frames(written.path))
    assert [f.stamp_ns for f in frames] == list(written.stamps_ns)
    for frame, ref in zip(frames, reference):
        np.testing.assert_array_equal(frame.rgb, ref.rgb)
        np.testing.assert_array_equal(frame.depth, ref.depth)
        np.testing.assert_array_equal(frame.camera_info.K, ref.K)
    colour_only = list(read_rgbd_frames(written.path, depth_topic=None, info_topic=None))
    assert len(colour_only) == N and colour_only[0].depth is None


def test_rgbd_frames_drop_unmatched_and_tolerate_bag_time_ties(tmp_path, reference):
    f = reference[0]
    with BagWriter(tmp_path / 'bag', 'mcap') as bag:
        # info after colour and depth at equal bag time, and a frame whose depth never comes
        bag.write(IMAGE, image_msg(f.rgb, 10, 'cam'))
        bag.write(DEPTH, depth_image_msg(f.depth, 10, 'cam'))
        bag.write(INFO, camera_info_msg(f.camera_info, 10, 'cam'))
        bag.write(IMAGE, image_msg(f.rgb, 20, 'cam'))
        bag.write(IMAGE, image_msg(f.rgb, 3_000_000_000, 'cam'))
        bag.write(DEPTH, depth_image_msg(f.depth, 3_000_000_000, 'cam'))
    frames = list(read_rgbd_frames(tmp_path / 'bag'))
    assert [fr.stamp_ns for fr in frames] == [10, 3_000_000_000]
    assert all(fr.camera_info == f.camera_info for fr in frames)


def test_missing_topic_error_lists_available_topics(tmp_path):
    written = write_synthetic_bag(tmp_path / 'bag', 1, 16, 12, storage='mcap')
    with BagReader(written.path) as bag:
        with pytest.raises(MissingTopicError) as err:
            list(bag.messages([IMAGE, '/nope']))
    assert "/nope" in str(err.value) and IMAGE + ' [sensor_msgs/msg/Image]' in str(err.value)
    assert err.value.missing == ['/nope']
    with pytest.raises(MissingTopicError, match='/camera/depth'):
        list(read_rgbd_frames(written.path, depth_topic='/camera/depth/missing'))


def test_writer_refuses_to_clobber(tmp_path, reference):
    path = tmp_path / 'bag'
    write_synthetic_bag(path, 1, 16, 12)
    with pytest.raises(FileExistsError):
        write_synthetic_bag(path, 1, 16, 12)
    assert write_synthetic_bag(path, 2, 16, 12, overwrite=True).n_frames == 2
    other = tmp_path / 'not_a_bag'
    (other / 'sub').mkdir(parents=True)
    with pytest.raises(FileExistsError, match='not a rosbag2'):
        BagWriter(other, overwrite=True)
    assert (other / 'sub').is_dir()
    with pytest.raises(ValueError, match='storage'):
        BagWriter(tmp_path / 'x', 'rosbag1')
    with BagWriter(tmp_path / 'typed', 'sqlite3') as bag:
        bag.write(IMAGE, image_msg(reference[0].rgb, 1, 'cam'))
        with pytest.raises(TypeError):
            bag.write(IMAGE, camera_info_msg(reference[0].camera_info, 2, 'cam'))


def test_corrupt_message_is_skipped_by_rgbd_frames_and_named_by_reader(tmp_path, reference,
                                                                       caplog):
    f = reference[0]
    corrupt = image_msg(f.rgb, 20, 'cam')
    corrupt.data = corrupt.data[:10]  # payload far shorter than height x step
    with BagWriter(tmp_path / 'bag', 'sqlite3') as bag:
        for stamp, colour in ((10, image_msg(f.rgb, 10, 'cam')), (20, corrupt),
                              (30, image_msg(f.rgb, 30, 'cam'))):
            bag.write(IMAGE, colour)
            bag.write(DEPTH, depth_image_msg(f.depth, stamp, 'cam'))
            bag.write(INFO, camera_info_msg(f.camera_info, stamp, 'cam'))
    with caplog.at_level('WARNING', logger='ppd_ros.bag'):
        frames = list(read_rgbd_frames(tmp_path / 'bag'))
    assert [fr.stamp_ns for fr in frames] == [10, 30]
    assert any(IMAGE in r.getMessage() for r in caplog.records)
    with BagReader(tmp_path / 'bag') as reader, pytest.raises(BagMessageError) as info:
        list(reader.messages([IMAGE]))
    assert info.value.topic == IMAGE and info.value.timestamp_ns == 20


def test_camera_poses_and_room_cuts(tmp_path):
    from ppd_ros.bag import decode_pose_stamped
    written = write_synthetic_bag(tmp_path / 'bag', 5, W, H, SEED, 'mcap', pose_topic='/pose',
                                  frames_per_room=2)
    rooms = [list(generate_sequence(SEED + r, 2, W, H)) for r in range(3)]
    expected = [f for room in rooms for f in room][:5]
    with BagReader(written.path) as bag:
        assert bag.topics['/pose'] == 'geometry_msgs/msg/PoseStamped'
        poses = list(bag.messages(['/pose'], decode=False))
        images = list(bag.messages([IMAGE]))
    assert [p.msg.header.frame_id for p in poses] == ['world_0', 'world_0', 'world_1',
                                                      'world_1', 'world_2']
    assert [p.stamp_ns for p in poses] == [m.stamp_ns for m in images]
    for pose, image, frame in zip(poses, images, expected):
        np.testing.assert_array_equal(image.data, frame.rgb)    # room r = seed + r
        matrix = decode_pose_stamped(pose.msg)
        np.testing.assert_allclose(matrix[:3, :3], frame.pose.world_from_optical, atol=1e-12)
        np.testing.assert_allclose(matrix[:3, 3], frame.pose.position, atol=1e-12)
    one_room = write_synthetic_bag(tmp_path / 'one', 2, W, H, SEED, 'mcap', pose_topic='/pose')
    with BagReader(one_room.path) as bag:
        assert {m.msg.header.frame_id for m in bag.messages(['/pose'], decode=False)} == {'world'}
