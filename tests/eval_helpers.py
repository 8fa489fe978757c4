"""Shared helpers of the ppd-eval tests: tiny model, synthetic bags, CLI arguments, readers."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ros_helpers import make_tiny_checkpoint  # noqa: F401 - re-exported for the tests

N_FRAMES = 20
WIDTH, HEIGHT = 128, 96
IMAGE_TOPIC = '/camera/image_raw'
DEPTH_TOPIC = '/camera/depth/image_raw'
INFO_TOPIC = '/camera/camera_info'


def eval_args(bag: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    """ppd-eval arguments for the tiny CPU model, one torch thread (steady on shared cores)."""
    return [str(bag), '--out', str(out), '--image-topic', IMAGE_TOPIC, '--depth-topic',
            DEPTH_TOPIC, '--checkpoint', str(checkpoint), '--device', 'cpu',
            '--num-threads', '1', '--no-progress', *extra]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline='') as handle:
        return list(csv.DictReader(handle))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def bag_stamps(path: Path) -> dict[str, list[int]]:
    """{topic: header stamps in bag order}, read back with rosbags itself."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_JAZZY)
    stamps: dict[str, list[int]] = {}
    with Reader(path) as reader:
        for conn, _, raw in reader.messages():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            stamps.setdefault(conn.topic, []).append(
                msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
    return stamps


def write_bag_with_corrupt_frames(path: Path) -> list[int]:
    """4 frames: 0 and 3 good, 1 with a too-short image payload, 2 not even deserialisable.

    Returns the header stamps. Written with rosbags' Writer so that raw bytes can be stored.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    from ppd_ros.bag import camera_info_msg, depth_image_msg, image_msg
    from ppd_ros.bag.typestore import typestore
    from ppd_ros.synthetic.generator import generate_sequence

    store = typestore()
    frames = list(generate_sequence(1, 4, WIDTH, HEIGHT))
    stamps = [1_700_000_000_000_000_000 + i * 100_000_000 for i in range(4)]
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conns = {t: writer.add_connection(t, m, typestore=store) for t, m in (
            (IMAGE_TOPIC, 'sensor_msgs/msg/Image'), (DEPTH_TOPIC, 'sensor_msgs/msg/Image'),
            (INFO_TOPIC, 'sensor_msgs/msg/CameraInfo'))}
        for i, (frame, stamp) in enumerate(zip(frames, stamps)):
            image = image_msg(frame.rgb, stamp, 'cam')
            if i == 1:
                image.data = np.asarray(image.data[:100])
            raw = bytes(store.serialize_cdr(image, image.__msgtype__))
            if i == 2:
                raw = raw[:40]
            writer.write(conns[INFO_TOPIC], stamp, bytes(store.serialize_cdr(
                camera_info_msg(frame.camera_info, stamp, 'cam'), 'sensor_msgs/msg/CameraInfo')))
            writer.write(conns[IMAGE_TOPIC], stamp, raw)
            writer.write(conns[DEPTH_TOPIC], stamp, bytes(store.serialize_cdr(
                depth_image_msg(frame.depth, stamp, 'cam'), 'sensor_msgs/msg/Image')))
    return stamps
