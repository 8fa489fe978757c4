"""numpy outputs of the depth pipeline -> sensor_msgs messages (no cv_bridge).

Large payloads go in as array.array('B'): filled from the numpy buffer with one memcpy, or
written straight into (ppd_ros.messages.image_encoding *_to_array; an H x W x 3 view of one
can be handed over with no copy at all, see bgr_image_message). Messages carrying them are
made with check_fields=True: with field checks on, the generated uint8[] setter keeps the
given array.array as is, while with checks off it copies it again (array.array('B', value),
~2 ms for a 1280x720 xyzrgb cloud); the remaining checks only touch small fields. Lists or
memoryviews would be converted element by element: never assign those.
"""
from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from ppd_ros.geometry.camera_model import PinholeCamera
from ppd_ros.geometry.pointcloud_layout import PackedCloud
from ppd_ros.messages.image_encoding import (  # noqa: F401 (new_image_buffer re-exported)
    DEPTH_ENCODINGS, depth_m_to_array, new_image_buffer, owning_payload, rgb_to_array)
from ppd_ros.node.outputs import ImageData


def uint8_array(payload) -> array.array:
    """Any C-contiguous buffer (bytes, numpy array) as array.array('B'), one copy."""
    out = array.array('B')
    out.frombytes(memoryview(payload).cast('B'))
    return out


def image_message(header: Header, height: int, width: int, encoding: str, step: int,
                  payload) -> Image:
    msg = Image(header=header, height=height, width=width, encoding=encoding,
                is_bigendian=0, step=step, check_fields=True)
    msg.data = payload if isinstance(payload, array.array) else uint8_array(payload)
    return msg


def depth_image_message(header: Header, depth: np.ndarray, encoding: str = '32FC1') -> Image:
    """32FC1 (NaN invalid) or 16UC1 millimetres (0 invalid), REP 118."""
    step, payload = depth_m_to_array(depth, encoding)
    return image_message(header, depth.shape[0], depth.shape[1], encoding, step, payload)


def color_image_message(header: Header, rgb: np.ndarray, encoding: str = 'bgr8') -> Image:
    """H x W x 3 uint8 RGB as bgr8 or rgb8 (converted straight into the message payload)."""
    step, payload = rgb_to_array(rgb, encoding)
    return image_message(header, rgb.shape[0], rgb.shape[1], encoding, step, payload)


def image_data_message(header: Header, data: ImageData) -> Image:
    """An image output (ppd_ros.node.outputs.ImageData) as a message in its encoding."""
    if data.encoding in DEPTH_ENCODINGS:
        return depth_image_message(header, data.array, data.encoding)
    if data.encoding in ('rgb8', 'bgr8'):
        return color_image_message(header, data.array, data.encoding)
    if data.encoding == 'mono8' and data.array.ndim == 2 and data.array.dtype == np.uint8:
        height, width = data.array.shape
        return image_message(header, height, width, 'mono8', width, data.array)
    raise ValueError(f'cannot publish a {data.array.dtype} {data.array.shape} array as '
                     f'{data.encoding}')


def bgr_image_message(header: Header, bgr: np.ndarray) -> Image:
    """H x W x 3 uint8 image that is already in BGR order as bgr8; no copy when `bgr` comes
    from new_image_buffer (the message then owns that buffer: do not write to it afterwards)."""
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError(f'expected H x W x 3 uint8, got {bgr.shape} {bgr.dtype}')
    payload = owning_payload(bgr)
    if payload is None:
        payload = uint8_array(np.ascontiguousarray(bgr))
    return image_message(header, bgr.shape[0], bgr.shape[1], 'bgr8', 3 * bgr.shape[1], payload)


def camera_info_message(header: Header, camera: PinholeCamera,
                        source: CameraInfo | None = None) -> CameraInfo:
    """CameraInfo of `camera` (size, K, P); distortion and R are copied from `source`."""
    msg = CameraInfo(header=header, height=camera.height, width=camera.width)
    msg.k = camera.k.reshape(-1).tolist()
    msg.p = camera.p.reshape(-1).tolist()
    if source is not None:
        msg.distortion_model = source.distortion_model
        msg.d = list(source.d)
        msg.r = list(source.r)
    else:  # an estimated pinhole camera: no distortion
        msg.distortion_model = 'plumb_bob'
        msg.d = [0.0] * 5
        msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return msg


def pointcloud_message(header: Header, cloud: PackedCloud) -> PointCloud2:
    """Organized PointCloud2 (is_dense false: invalid points are NaN); no payload copy."""
    msg = PointCloud2(header=header, height=cloud.height, width=cloud.width,
                      is_bigendian=False, point_step=cloud.point_step, row_step=cloud.row_step,
                      is_dense=False, check_fields=True)
    msg.fields = [PointField(name=name, offset=offset, datatype=datatype, count=count)
                  for name, offset, datatype, count in cloud.fields]
    msg.data = cloud.payload
    return msg
