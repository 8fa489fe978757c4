"""rosbag2 I/O with rosbags (no rclpy): message building / decoding, writer, reader, and
synthetic RGB-D bags.

Typical use::

    from ppd_ros.bag import write_synthetic_bag, read_rgbd_frames
    write_synthetic_bag('out/synth_bag', n_frames=20, storage='mcap')
    for frame in read_rgbd_frames('out/synth_bag'):
        frame.rgb, frame.depth, frame.camera_info.K
"""
from .message_builders import (camera_info_msg, compressed_image_msg, depth_image_msg,
                               header_msg, image_msg, pointcloud2_msg, pose_stamped_msg,
                               time_msg)
from .message_decoders import (decode_camera_info, decode_compressed_image, decode_image,
                               decode_message, decode_pointcloud2, decode_pose_stamped,
                               pointcloud2_xyz, stamp_ns, unpack_rgb)
from .reader import BagMessage, BagMessageError, BagReader, MissingTopicError, log_and_skip
from .rgbd_frames import RgbdFrame, read_rgbd_frames
from .synthetic_bag import DEFAULT_FRAME_ID, WrittenBag, frame_stamps_ns, write_synthetic_bag
from .writer import STORAGES, BagWriter

__all__ = [
    'BagMessage', 'BagMessageError', 'BagReader', 'BagWriter', 'DEFAULT_FRAME_ID', 'MissingTopicError',
    'RgbdFrame', 'STORAGES', 'WrittenBag', 'camera_info_msg', 'compressed_image_msg',
    'decode_camera_info', 'decode_compressed_image', 'decode_image', 'decode_message',
    'decode_pointcloud2', 'decode_pose_stamped', 'depth_image_msg', 'frame_stamps_ns',
    'header_msg', 'image_msg', 'pointcloud2_msg', 'pointcloud2_xyz', 'pose_stamped_msg',
    'read_rgbd_frames', 'stamp_ns', 'time_msg',
    'log_and_skip', 'unpack_rgb', 'write_synthetic_bag',
]
