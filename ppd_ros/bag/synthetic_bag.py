"""Write a synthetic RGB-D sequence (colour, metric depth, camera info, optionally camera
poses) to a rosbag2 bag."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppd_ros.synthetic.generator import DEFAULT_HFOV_DEG, generate_room_walks
from ppd_ros.synthetic.renderer import SyntheticFrame

from .message_builders import (camera_info_msg, compressed_image_msg, depth_image_msg,
                               image_msg, pose_stamped_msg)
from .writer import BagWriter

#: First header stamp of synthetic bags (2023-11-14T22:13:20Z), fixed for reproducibility.
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000
DEFAULT_FRAME_ID = 'camera_color_optical_frame'
#: Fixed frame of the camera poses; room r of a multi-room bag is 'world_<r>'.
WORLD_FRAME_ID = 'world'


def world_frame_id(room: int, rooms: int) -> str:
    """The poses' fixed frame: 'world' with one room, 'world_<room>' with several (the
    rooms are unrelated, so their poses must not be compared)."""
    return WORLD_FRAME_ID if rooms == 1 else f'{WORLD_FRAME_ID}_{room}'


@dataclass(frozen=True)
class WrittenBag:
    path: Path
    storage: str
    n_frames: int
    topics: dict[str, int]  # topic -> message count
    stamps_ns: tuple[int, ...]


def frame_stamps_ns(n_frames: int, rate_hz: float, start_ns: int = DEFAULT_START_NS
                    ) -> list[int]:
    """Header stamps of ``n_frames`` frames at ``rate_hz``, rounded to whole nanoseconds."""
    if rate_hz <= 0:
        raise ValueError(f'rate_hz must be positive, got {rate_hz}')
    return [start_ns + round(i * 1e9 / rate_hz) for i in range(n_frames)]


def write_synthetic_bag(path: str | Path, n_frames: int, width: int = 128, height: int = 96,
                        seed: int = 0, storage: str = 'sqlite3', rate_hz: float = 10.0,
                        compressed: bool = False, *, compressed_format: str = 'jpeg',
                        jpeg_quality: int = 90, image_topic: str = '/camera/image_raw',
                        info_topic: str | None = '/camera/camera_info',
                        depth_topic: str | None = '/camera/depth/image_raw',
                        frame_id: str = DEFAULT_FRAME_ID, start_ns: int = DEFAULT_START_NS,
                        hfov_deg: float = DEFAULT_HFOV_DEG, overwrite: bool = False,
                        on_frame: Callable[[int, SyntheticFrame], None] | None = None,
                        sensor_depth_topic: str | None = None,
                        sensor_depth: Callable[[int, SyntheticFrame], np.ndarray] | None = None,
                        pose_topic: str | None = None, frames_per_room: int | None = None
                        ) -> WrittenBag:
    """Render ``generate_sequence(seed, n_frames, width, height)`` into a bag.

    With ``frames_per_room`` the camera moves to another room (``generate_room_walks``:
    room r is the sequence of seed + r) every that many frames, a scene cut.

    Per frame, all with the same header stamp (bag time = stamp, increasing at rate_hz) and
    ``frame_id``: camera info on ``info_topic``, colour as rgb8 Image on ``image_topic`` or,
    when ``compressed``, as CompressedImage (jpeg or png) on ``image_topic + '/compressed'``
    (image_transport naming), and depth as 32FC1 metres with NaN invalid on ``depth_topic``.
    Topics set to None are skipped. ``on_frame(index, frame)`` is called after each frame.
    With ``sensor_depth_topic`` and ``sensor_depth(index, frame)`` (metres, NaN invalid, e.g.
    ``lambda i, f: DepthSensorModel().corrupt(f.depth, i)``), that depth is also written, as
    16UC1 millimetres: what an RGB-D camera's registered depth topic carries (a frame whose
    ``sensor_depth`` is None gets none: a sensor that went silent).
    ``pose_topic``: the camera's pose per frame as geometry_msgs/PoseStamped, the optical
    frame ``frame_id`` in the fixed frame ``world_frame_id(room, rooms)`` (same stamps).
    """
    if n_frames < 1:
        raise ValueError(f'n_frames must be >= 1, got {n_frames}')
    stamps = frame_stamps_ns(n_frames, rate_hz, start_ns)
    colour_topic = image_topic + '/compressed' if compressed else image_topic
    per_room = frames_per_room or n_frames
    rooms = -(-n_frames // per_room)
    frames = generate_room_walks(seed, n_frames, per_room, width, height, hfov_deg=hfov_deg)
    with BagWriter(path, storage, overwrite=overwrite) as bag:
        bag.set_custom_data('ppd_ros.synthetic', json.dumps(
            {'seed': seed, 'width': width, 'height': height, 'hfov_deg': hfov_deg,
             'rate_hz': rate_hz, 'n_frames': n_frames, 'frames_per_room': per_room},
            sort_keys=True))
        for i, (stamp, (room, frame)) in enumerate(zip(stamps, frames)):
            if info_topic is not None:
                bag.write(info_topic, camera_info_msg(frame.camera_info, stamp, frame_id))
            if compressed:
                bag.write(colour_topic, compressed_image_msg(frame.rgb, stamp, frame_id,
                                                             compressed_format, jpeg_quality))
            else:
                bag.write(colour_topic, image_msg(frame.rgb, stamp, frame_id))
            if depth_topic is not None:
                bag.write(depth_topic, depth_image_msg(frame.depth, stamp, frame_id))
            if pose_topic is not None:
                bag.write(pose_topic, pose_stamped_msg(frame.pose.position,
                                                       frame.pose.world_from_optical, stamp,
                                                       world_frame_id(room, rooms)))
            sensed = (sensor_depth(i, frame) if sensor_depth_topic is not None
                      and sensor_depth is not None else None)
            if sensed is not None:
                bag.write(sensor_depth_topic, depth_image_msg(sensed, stamp, frame_id, '16UC1'))
            if on_frame is not None:
                on_frame(i, frame)
        counts = dict(bag.counts)
    return WrittenBag(Path(path), storage, n_frames, counts, tuple(stamps))
