"""sensor_msgs/Image payloads <-> numpy arrays, following REP 118 and cv_bridge's layout.

Colour input may be any of the encodings in COLOR_ENCODINGS, with the names
sensor_msgs/image_encodings gives them: packed rgb / bgr (with or without alpha), mono8,
packed YUV 4:2:2 (uyvy, formerly yuv422, and yuyv, formerly yuv422_yuy2; BT.601 video range,
as OpenCV and cv_bridge convert them) and 8- or 16-bit Bayer mosaics (demosaiced bilinearly
by OpenCV; 16-bit values keep their top 8 bits).
"""
from __future__ import annotations

import array

import cv2
import numpy as np

from ppd_ros.untrusted_text import quoted

#: Packed YUV 4:2:2 encodings (two bytes per pixel, pairs of pixels share U and V).
YUV422_CONVERSIONS = {'uyvy': cv2.COLOR_YUV2RGB_UYVY, 'yuv422': cv2.COLOR_YUV2RGB_UYVY,
                      'yuyv': cv2.COLOR_YUV2RGB_YUY2, 'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2}
#: Bayer mosaics by their top-left 2 x 2 cell, as ROS names them (rggb: red at (0, 0)).
#: OpenCV names a mosaic by the second row's second and third pixels, hence the other letters.
BAYER_CONVERSIONS = {'rggb': cv2.COLOR_BayerBG2RGB, 'bggr': cv2.COLOR_BayerRG2RGB,
                     'gbrg': cv2.COLOR_BayerGR2RGB, 'grbg': cv2.COLOR_BayerGB2RGB}
#: Colour encodings the depth pipeline accepts: (payload dtype, channels per pixel).
COLOR_ENCODINGS = {
    'rgb8': (np.dtype(np.uint8), 3), 'bgr8': (np.dtype(np.uint8), 3),
    'rgba8': (np.dtype(np.uint8), 4), 'bgra8': (np.dtype(np.uint8), 4),
    'mono8': (np.dtype(np.uint8), 1),
    **{name: (np.dtype(np.uint8), 2) for name in YUV422_CONVERSIONS},
    **{f'bayer_{cell}{bits}': (np.dtype(np.uint8 if bits == 8 else np.uint16), 1)
       for cell in BAYER_CONVERSIONS for bits in (8, 16)},
}
#: COLOR_ENCODINGS in a few words, for error messages.
COLOR_ENCODINGS_TEXT = 'rgb(a)8, bgr(a)8, mono8, uyvy, yuyv, yuv422, yuv422_yuy2 or bayer_*8/16'
#: Depth encodings: 32FC1 in metres (NaN invalid), 16UC1 in millimetres (0 invalid).
DEPTH_ENCODINGS = {'32FC1': np.dtype('<f4'), '16UC1': np.dtype('<u2')}


class ImageEncodingError(ValueError):
    """An Image message whose encoding, size or payload cannot be decoded."""


def _pixel_rows(height: int, width: int, step: int, data, dtype: np.dtype, channels: int,
                is_bigendian: bool) -> np.ndarray:
    row_bytes = width * channels * dtype.itemsize
    if height <= 0 or width <= 0:
        raise ImageEncodingError(f'image has no pixels ({width}x{height})')
    if step < row_bytes:
        raise ImageEncodingError(f'step {step} is smaller than one row ({row_bytes} bytes)')
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < step * (height - 1) + row_bytes:
        raise ImageEncodingError(
            f'payload has {buf.size} bytes, {width}x{height} with step {step} needs '
            f'{step * (height - 1) + row_bytes}')
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(step, 1))
    order = '>' if is_bigendian else '<'
    pixels = rows.view(dtype.newbyteorder(order)) if dtype.itemsize > 1 else rows
    return pixels.reshape(height, width, channels)


def image_to_rgb(encoding: str, height: int, width: int, step: int, data,
                 is_bigendian: bool = False) -> np.ndarray:
    """Decode a colour Image payload into a contiguous H x W x 3 uint8 RGB array."""
    layout = COLOR_ENCODINGS.get(encoding)
    if layout is None:
        raise ImageEncodingError(
            f'unsupported image encoding {quoted(encoding)}; expected {COLOR_ENCODINGS_TEXT}')
    if encoding in YUV422_CONVERSIONS and width % 2:
        raise ImageEncodingError(f'{encoding} needs an even width (pixel pairs share U and V), '
                                 f'got {width}')
    px = _pixel_rows(height, width, step, data, *layout, is_bigendian)
    if encoding == 'mono8':
        return np.repeat(px, 3, axis=2)
    if encoding in ('bgr8', 'bgra8'):
        return np.ascontiguousarray(px[:, :, 2::-1])
    if encoding in YUV422_CONVERSIONS:
        return cv2.cvtColor(np.ascontiguousarray(px), YUV422_CONVERSIONS[encoding])
    if encoding.startswith('bayer_'):
        return _demosaic(px[:, :, 0], BAYER_CONVERSIONS[encoding[6:10]])
    return np.ascontiguousarray(px[:, :, :3])


def _demosaic(mosaic: np.ndarray, conversion: int) -> np.ndarray:
    """H x W Bayer mosaic (uint8 or uint16, any byte order) -> H x W x 3 uint8 RGB."""
    if min(mosaic.shape) < 2:
        raise ImageEncodingError(f'a Bayer image needs at least 2 x 2 pixels, got '
                                 f'{mosaic.shape[1]}x{mosaic.shape[0]}')
    native = np.ascontiguousarray(mosaic, dtype=mosaic.dtype.newbyteorder('='))
    rgb = cv2.cvtColor(native, conversion)
    return rgb if rgb.dtype == np.uint8 else (rgb >> 8).astype(np.uint8)


def image_to_float32(encoding: str, height: int, width: int, step: int, data,
                     is_bigendian: bool = False) -> np.ndarray:
    """Decode a 32FC1 payload into float32 H x W with every value kept (relative depth may be
    <= 0, which image_to_depth_m would mark invalid)."""
    if encoding != '32FC1':
        raise ImageEncodingError(f'unsupported float image encoding {quoted(encoding)}; '
                                 'expected 32FC1')
    px = _pixel_rows(height, width, step, data, DEPTH_ENCODINGS['32FC1'], 1, is_bigendian)
    return px[:, :, 0].astype(np.float32)  # native-endian copy


def image_to_depth_m(encoding: str, height: int, width: int, step: int, data,
                     is_bigendian: bool = False) -> np.ndarray:
    """Decode a depth Image payload into float32 metres, with NaN where invalid."""
    dtype = DEPTH_ENCODINGS.get(encoding)
    if dtype is None:
        raise ImageEncodingError(
            f'unsupported depth encoding {quoted(encoding)}; expected one of '
            f'{sorted(DEPTH_ENCODINGS)}')
    if encoding == '16UC1':
        px = _pixel_rows(height, width, step, data, dtype, 1, is_bigendian)[:, :, 0]
        depth = px.astype(np.float32) * np.float32(1e-3)
        depth[px == 0] = np.nan
        return depth
    depth = image_to_float32(encoding, height, width, step, data, is_bigendian)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def zeroed_payload(nbytes: int) -> array.array:
    """A zero-filled array.array('B') of `nbytes` (a message uint8[] field stores exactly
    this type, so it can be assigned without a copy; see ppd_ros.node.message_builders)."""
    return array.array('B', b'\0') * nbytes


def payload_view(payload: array.array, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Writable C-contiguous numpy view of an array.array payload."""
    return np.frombuffer(payload, dtype=dtype).reshape(shape)


def new_image_buffer(height: int, width: int, channels: int = 3) -> np.ndarray:
    """Zeroed H x W x C uint8 array backed by an array.array('B') payload: fill it (e.g. with
    colorize_depth(..., bgr=True, out=...)) and message_builders.bgr_image_message sends it
    without a copy (owning_payload finds the array.array again)."""
    return payload_view(zeroed_payload(height * width * channels), (height, width, channels),
                        np.uint8)


def owning_payload(image: np.ndarray) -> array.array | None:
    """The array.array('B') whose bytes are exactly those of C-contiguous `image`, if any
    (true for new_image_buffer arrays and np.frombuffer(payload) reshaped)."""
    if not image.flags.c_contiguous:
        return None
    base = image
    while isinstance(base, np.ndarray):
        base = base.base
    owner = base.obj if isinstance(base, memoryview) else None
    if not isinstance(owner, array.array) or owner.typecode != 'B':
        return None
    address, length = owner.buffer_info()
    if length != image.nbytes or image.__array_interface__['data'][0] != address:
        return None
    return owner


def _check_depth(depth_m: np.ndarray) -> np.ndarray:
    depth_m = np.asarray(depth_m, dtype=np.float32)
    if depth_m.ndim != 2:
        raise ImageEncodingError(f'depth must be H x W, got shape {depth_m.shape}')
    return depth_m


def _depth_mm(depth_m: np.ndarray) -> np.ndarray:
    """16UC1 values as float32: rounded millimetres, 0 for invalid and beyond 65.535 m."""
    mm = np.multiply(depth_m, np.float32(1000.0))
    np.rint(mm, out=mm)
    # NaN and -inf -> -1, +inf -> 65536 (fmax / fmin skip NaN); then zero everything outside
    # [0, 65535] by multiplying with the mask (branch-free: masked stores are ~10x slower)
    np.fmax(mm, np.float32(-1.0), out=mm)
    np.fmin(mm, np.float32(65536.0), out=mm)
    keep = mm >= 0
    keep &= mm <= 65535
    np.multiply(mm, keep, out=mm)
    return mm


def depth_m_to_array(depth_m: np.ndarray, encoding: str = '32FC1') -> tuple[int, array.array]:
    """As depth_m_to_payload, but the bytes are written straight into an array.array('B')."""
    depth_m = _check_depth(depth_m)
    h, w = depth_m.shape
    if encoding == '32FC1':
        payload = array.array('B')
        payload.frombytes(memoryview(np.ascontiguousarray(depth_m, dtype='<f4')).cast('B'))
        return 4 * w, payload
    if encoding == '16UC1':
        payload = zeroed_payload(2 * h * w)
        payload_view(payload, (h, w), '<u2')[...] = _depth_mm(depth_m)
        return 2 * w, payload
    raise ImageEncodingError(f"unsupported depth encoding '{encoding}'")


def depth_m_to_payload(depth_m: np.ndarray, encoding: str = '32FC1') -> tuple[int, bytes]:
    """Encode float metres (NaN invalid) as (step, little-endian bytes) for an Image message.

    32FC1 keeps NaN for invalid pixels; 16UC1 stores rounded millimetres with 0 for invalid
    and for depths beyond 65.535 m.
    """
    depth_m = _check_depth(depth_m)
    if encoding == '32FC1':
        out = depth_m.astype('<f4', copy=False)
    elif encoding == '16UC1':
        out = _depth_mm(depth_m).astype('<u2')
    else:
        raise ImageEncodingError(f"unsupported depth encoding '{encoding}'")
    out = np.ascontiguousarray(out)
    return out.shape[1] * out.itemsize, out.tobytes()


def _check_rgb(rgb: np.ndarray, encoding: str) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageEncodingError(f'expected H x W x 3 uint8, got {rgb.shape} {rgb.dtype}')
    if encoding not in ('rgb8', 'bgr8'):
        raise ImageEncodingError(f"unsupported colour encoding for output '{encoding}'")


def rgb_to_array(rgb: np.ndarray, encoding: str = 'rgb8') -> tuple[int, array.array]:
    """As rgb_to_payload, but the bytes are written straight into an array.array('B')."""
    rgb = np.asarray(rgb)
    _check_rgb(rgb, encoding)
    h, w = rgb.shape[:2]
    if encoding == 'rgb8' or rgb.size == 0:
        payload = array.array('B')
        payload.frombytes(memoryview(np.ascontiguousarray(rgb)).cast('B'))
        return 3 * w, payload
    payload = zeroed_payload(3 * h * w)
    dst = payload_view(payload, (h, w, 3), np.uint8)
    result = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=dst)  # far faster than a numpy flip
    if result is not dst:  # OpenCV could not write in place (never expected)
        dst[...] = result
    return 3 * w, payload


def rgb_to_payload(rgb: np.ndarray, encoding: str = 'rgb8') -> tuple[int, bytes]:
    """Encode an H x W x 3 uint8 RGB array as (step, bytes) in rgb8 or bgr8."""
    rgb = np.asarray(rgb)
    _check_rgb(rgb, encoding)
    if encoding == 'bgr8' and rgb.size:
        out = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    else:
        out = np.ascontiguousarray(rgb)
    return out.shape[1] * 3, out.tobytes()
