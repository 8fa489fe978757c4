"""The demo's input: a synthetic RGB-D bag as an RGB-D camera records it, plus ground truth.

All topics of a frame carry the same stamp; frames follow at rate_hz:
  IMAGE_TOPIC          rgb8 colour image
  INFO_TOPIC           its CameraInfo
  SENSOR_DEPTH_TOPIC   16UC1 mm, the camera's registered depth: the exact depth corrupted by
                       DepthSensorModel (holes, noise, flying pixels at depth edges)
  GT_TOPIC             32FC1 m, the exact depth (ground truth: used for scoring only)
"""
from __future__ import annotations

from pathlib import Path

from ppd_ros.bag.synthetic_bag import WrittenBag, write_synthetic_bag
from ppd_ros.synthetic.depth_sensor_model import DepthSensorModel

IMAGE_TOPIC = '/camera/color/image_raw'
INFO_TOPIC = '/camera/color/camera_info'
SENSOR_DEPTH_TOPIC = '/camera/aligned_depth_to_color/image_raw'
GT_TOPIC = '/ground_truth/depth'


def write_demo_bag(path: Path, frames: int, width: int, height: int, rate_hz: float,
                   seed: int, sensor: DepthSensorModel) -> WrittenBag:
    """Write (replacing) the bag at ``path``; scene and corruption are fixed by ``seed``."""
    return write_synthetic_bag(
        path, frames, width, height, seed=seed, storage='sqlite3', rate_hz=rate_hz,
        image_topic=IMAGE_TOPIC, info_topic=INFO_TOPIC, depth_topic=GT_TOPIC,
        overwrite=True, sensor_depth_topic=SENSOR_DEPTH_TOPIC,
        sensor_depth=lambda index, frame: sensor.corrupt(frame.depth, index))
