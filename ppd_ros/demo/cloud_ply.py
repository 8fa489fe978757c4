"""A recorded sensor_msgs/PointCloud2 (decoded to a structured array) as a PLY file."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ppd_ros.bag.message_decoders import unpack_rgb
from ppd_ros.geometry.ply import write_ply


def write_cloud_ply(path: Path, cloud: np.ndarray, comments: Iterable[str] = ()) -> int:
    """Write the cloud's finite points (x y z, plus red green blue when it has 'rgb');
    returns how many points were written."""
    cloud = cloud.ravel()
    xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=-1).astype(np.float32)
    finite = np.isfinite(xyz).all(axis=1)
    colours = unpack_rgb(cloud['rgb'])[finite] if 'rgb' in cloud.dtype.names else None
    write_ply(path, xyz[finite], colours, comments)
    return int(finite.sum())
