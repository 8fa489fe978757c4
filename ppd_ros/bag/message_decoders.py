"""Decode rosbags message objects back into numpy arrays and plain dataclasses."""
from __future__ import annotations

import cv2
import numpy as np

from ppd_ros.geometry.rigid_transform import matrix_from_quaternion, transform_matrix
from ppd_ros.messages.compressed_image import compressed_to_rgb, decode_compressed
from ppd_ros.messages.image_encoding import (DEPTH_ENCODINGS, ImageEncodingError,
                                             image_to_depth_m, image_to_rgb)
from ppd_ros.synthetic.camera import CameraInfoFields
from ppd_ros.untrusted_text import quoted

from .typestore import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, POINT_CLOUD2, POSE_STAMPED

#: sensor_msgs/PointField datatype -> numpy base type.
POINT_FIELD_DTYPES = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'f4', 8: 'f8'}


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def decode_image(msg) -> np.ndarray:
    """sensor_msgs/Image -> H x W x 3 uint8 RGB (colour encodings) or H x W float32 metres
    with NaN where invalid (32FC1 / 16UC1)."""
    args = (msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))
    if msg.encoding in DEPTH_ENCODINGS:
        return image_to_depth_m(*args)
    return image_to_rgb(*args)


def decode_compressed_image(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (image_transport 'compressed': jpeg or png) -> array.

    Colour images give H x W x 3 uint8 RGB (via ppd_ros.messages.compressed_image); a png
    whose format names 16UC1 as the original encoding gives float32 metres (NaN where 0).
    'compressedDepth' payloads are not supported.
    """
    original = msg.format.split(';')[0].strip()
    if original not in DEPTH_ENCODINGS:
        return compressed_to_rgb(msg.format, msg.data)
    if 'compresseddepth' in msg.format.lower():
        raise ImageEncodingError(f"'compressedDepth' CompressedImage is not supported "
                                 f'(format {quoted(msg.format)})')
    decoded = decode_compressed(msg.format, np.asarray(msg.data, dtype=np.uint8),
                                cv2.IMREAD_UNCHANGED)
    if decoded.dtype != np.uint16 or decoded.ndim != 2:
        raise ImageEncodingError(f'cannot decode CompressedImage format {quoted(msg.format)} '
                                 'as 16-bit single-channel depth')
    return image_to_depth_m('16UC1', *decoded.shape, decoded.shape[1] * 2,
                            decoded.astype('<u2').tobytes())


def decode_camera_info(msg) -> CameraInfoFields:
    return CameraInfoFields(
        width=int(msg.width), height=int(msg.height),
        k=np.array(msg.k, dtype=np.float64), p=np.array(msg.p, dtype=np.float64),
        d=np.array(msg.d, dtype=np.float64), r=np.array(msg.r, dtype=np.float64),
        distortion_model=msg.distortion_model)


def decode_pointcloud2(msg) -> np.ndarray:
    """sensor_msgs/PointCloud2 -> structured array (height x width), one field per point field."""
    order = '>' if msg.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for f in msg.fields:
        base = POINT_FIELD_DTYPES.get(int(f.datatype))
        if base is None:
            raise ImageEncodingError(f"point field '{f.name}' has unknown datatype {f.datatype}")
        names.append(f.name)
        formats.append((order + base, (f.count,)) if f.count > 1 else order + base)
        offsets.append(f.offset)
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                      'itemsize': msg.point_step})
    data = np.asarray(msg.data, dtype=np.uint8)
    rows = [np.frombuffer(data[r * msg.row_step:r * msg.row_step + msg.width * msg.point_step],
                          dtype=dtype) for r in range(msg.height)]
    return np.stack(rows) if rows else np.empty((0, msg.width), dtype=dtype)


def pointcloud2_xyz(msg) -> np.ndarray:
    """N x 3 float32 x, y, z of a PointCloud2 (organised clouds flattened row-major)."""
    cloud = decode_pointcloud2(msg).ravel()
    return np.stack([cloud['x'], cloud['y'], cloud['z']], -1).astype(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """PCL-packed float 'rgb' values -> ... x 3 uint8."""
    bits = np.ascontiguousarray(packed, dtype='<f4').view('<u4')
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], -1).astype(np.uint8)


def decode_pose_stamped(msg) -> np.ndarray:
    """geometry_msgs/PoseStamped -> 4 x 4 transform from the pose's frame to header.frame_id."""
    p, q = msg.pose.position, msg.pose.orientation
    return transform_matrix(matrix_from_quaternion([q.x, q.y, q.z, q.w]), [p.x, p.y, p.z])


_DECODERS = {IMAGE: decode_image, COMPRESSED_IMAGE: decode_compressed_image,
             CAMERA_INFO: decode_camera_info, POINT_CLOUD2: decode_pointcloud2,
             POSE_STAMPED: decode_pose_stamped}


def decode_message(msgtype: str, msg):
    """Numpy-friendly form of ``msg`` for the types above; other messages come back as is."""
    decoder = _DECODERS.get(msgtype)
    return decoder(msg) if decoder else msg
