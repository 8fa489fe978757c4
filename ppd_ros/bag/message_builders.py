"""Build rosbags message objects (sensor_msgs, std_msgs, geometry_msgs) from numpy arrays.

Image payloads come from ppd_ros.messages.image_encoding, so bags and live topics share
one layout. Stamps are integer nanoseconds since the epoch.
"""
from __future__ import annotations

import cv2
import numpy as np

from ppd_ros.geometry.pointcloud_layout import build_cloud
from ppd_ros.geometry.rigid_transform import quaternion_from_matrix
from ppd_ros.messages.image_encoding import depth_m_to_payload, rgb_to_payload
from ppd_ros.synthetic.camera import CameraInfoFields

from .typestore import (CAMERA_INFO, COMPRESSED_IMAGE, HEADER, IMAGE, POINT, POINT_CLOUD2,
                        POINT_FIELD, POSE, POSE_STAMPED, QUATERNION, REGION_OF_INTEREST, TIME,
                        msg_class)

#: Formats for CompressedImage, as image_transport's "compressed" plugin names them.
COMPRESSED_FORMATS = ('jpeg', 'png')


def time_msg(stamp_ns: int):
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg_class(TIME)(sec=sec, nanosec=nanosec)


def header_msg(stamp_ns: int, frame_id: str):
    return msg_class(HEADER)(stamp=time_msg(stamp_ns), frame_id=frame_id)


def _image(stamp_ns, frame_id, height, width, encoding, step, payload: bytes):
    return msg_class(IMAGE)(header=header_msg(stamp_ns, frame_id), height=height, width=width,
                            encoding=encoding, is_bigendian=0, step=step,
                            data=np.frombuffer(payload, dtype=np.uint8))


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = 'rgb8'):
    """sensor_msgs/Image from H x W x 3 uint8 RGB, stored as rgb8 or bgr8."""
    step, payload = rgb_to_payload(rgb, encoding)
    return _image(stamp_ns, frame_id, rgb.shape[0], rgb.shape[1], encoding, step, payload)


def depth_image_msg(depth_m: np.ndarray, stamp_ns: int, frame_id: str,
                    encoding: str = '32FC1'):
    """sensor_msgs/Image from H x W metres (NaN invalid): 32FC1 metres or 16UC1 millimetres."""
    step, payload = depth_m_to_payload(depth_m, encoding)
    return _image(stamp_ns, frame_id, depth_m.shape[0], depth_m.shape[1], encoding, step,
                  payload)


def compressed_image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, fmt: str = 'jpeg',
                         jpeg_quality: int = 90):
    """sensor_msgs/CompressedImage of H x W x 3 uint8 RGB, format 'rgb8; <fmt> compressed bgr8'."""
    if fmt not in COMPRESSED_FORMATS:
        raise ValueError(f"unsupported compressed format '{fmt}'; expected {COMPRESSED_FORMATS}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected H x W x 3 uint8, got {rgb.shape} {rgb.dtype}')
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if fmt == 'jpeg' else []
    ok, buf = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', rgb[:, :, ::-1], params)
    if not ok:
        raise RuntimeError(f'OpenCV failed to encode a {fmt} image')
    return msg_class(COMPRESSED_IMAGE)(header=header_msg(stamp_ns, frame_id),
                                       format=f'rgb8; {fmt} compressed bgr8',
                                       data=np.asarray(buf, dtype=np.uint8).ravel())


def camera_info_msg(info: CameraInfoFields, stamp_ns: int, frame_id: str):
    roi = msg_class(REGION_OF_INTEREST)(x_offset=0, y_offset=0, height=0, width=0,
                                        do_rectify=False)
    return msg_class(CAMERA_INFO)(
        header=header_msg(stamp_ns, frame_id), height=info.height, width=info.width,
        distortion_model=info.distortion_model,
        d=np.asarray(info.d, dtype=np.float64).ravel(),
        k=np.asarray(info.k, dtype=np.float64).ravel(),
        r=np.asarray(info.r, dtype=np.float64).ravel(),
        p=np.asarray(info.p, dtype=np.float64).ravel(),
        binning_x=0, binning_y=0, roi=roi)


def pointcloud2_msg(xyz: np.ndarray, stamp_ns: int, frame_id: str,
                    rgb: np.ndarray | None = None):
    """sensor_msgs/PointCloud2 in depth_node's layout (ppd_ros.geometry.pointcloud_layout:
    16-byte x y z points, 32-byte with PCL-packed 'rgb', is_dense false).

    ``xyz`` is N x 3 (stored as one row) or H x W x 3 (organised); ``rgb`` uint8 of the same
    leading shape. Invalid points are NaN.
    """
    xyz = np.asarray(xyz, dtype=np.float32)
    if xyz.shape[-1] != 3 or xyz.ndim not in (2, 3):
        raise ValueError(f'xyz must be N x 3 or H x W x 3, got {xyz.shape}')
    if rgb is not None and np.shape(rgb) != xyz.shape:
        raise ValueError(f'rgb shape {np.shape(rgb)} does not match xyz {xyz.shape}')
    if xyz.ndim == 2:
        xyz = xyz[None]
        rgb = None if rgb is None else np.asarray(rgb)[None]
    cloud = build_cloud(xyz, None if rgb is None else np.asarray(rgb, dtype=np.uint8))
    field = msg_class(POINT_FIELD)
    fields = [field(name=name, offset=offset, datatype=datatype, count=count)
              for name, offset, datatype, count in cloud.fields]
    return msg_class(POINT_CLOUD2)(
        header=header_msg(stamp_ns, frame_id), height=cloud.height, width=cloud.width,
        fields=fields, is_bigendian=False, point_step=cloud.point_step,
        row_step=cloud.row_step, data=cloud.data, is_dense=False)


def pose_stamped_msg(position, rotation, stamp_ns: int, frame_id: str):
    """geometry_msgs/PoseStamped: a frame's origin ``position`` and 3 x 3 ``rotation``
    (its axes in ``frame_id`` coordinates), e.g. a camera optical frame in the world."""
    x, y, z = (float(v) for v in np.asarray(position, dtype=np.float64).reshape(3))
    qx, qy, qz, qw = (float(v) for v in quaternion_from_matrix(rotation))
    pose = msg_class(POSE)(position=msg_class(POINT)(x=x, y=y, z=z),
                           orientation=msg_class(QUATERNION)(x=qx, y=qy, z=qz, w=qw))
    return msg_class(POSE_STAMPED)(header=header_msg(stamp_ns, frame_id), pose=pose)
