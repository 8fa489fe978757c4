"""sensor_msgs/Image payloads <-> numpy arrays, following REP 118 and cv_bridge's layout."""
from __future__ import annotations

import numpy as np

#: Colour encodings the depth pipeline accepts, with their channel count.
COLOR_ENCODINGS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
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
    channels = COLOR_ENCODINGS.get(encoding)
    if channels is None:
        raise ImageEncodingError(
            f"unsupported image encoding '{encoding}'; expected one of {sorted(COLOR_ENCODINGS)}")
    px = _pixel_rows(height, width, step, data, np.dtype(np.uint8), channels, is_bigendian)
    if encoding == 'mono8':
        return np.repeat(px, 3, axis=2)
    if encoding in ('bgr8', 'bgra8'):
        return np.ascontiguousarray(px[:, :, 2::-1])
    return np.ascontiguousarray(px[:, :, :3])


def image_to_depth_m(encoding: str, height: int, width: int, step: int, data,
                     is_bigendian: bool = False) -> np.ndarray:
    """Decode a depth Image payload into float32 metres, with NaN where invalid."""
    dtype = DEPTH_ENCODINGS.get(encoding)
    if dtype is None:
        raise ImageEncodingError(
            f"unsupported depth encoding '{encoding}'; expected one of {sorted(DEPTH_ENCODINGS)}")
    px = _pixel_rows(height, width, step, data, dtype, 1, is_bigendian)[:, :, 0]
    if encoding == '16UC1':
        depth = px.astype(np.float32) * np.float32(1e-3)
        depth[px == 0] = np.nan
        return depth
    depth = px.astype(np.float32)  # native-endian copy
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def depth_m_to_payload(depth_m: np.ndarray, encoding: str = '32FC1') -> tuple[int, bytes]:
    """Encode float metres (NaN invalid) as (step, little-endian bytes) for an Image message.

    32FC1 keeps NaN for invalid pixels; 16UC1 stores rounded millimetres with 0 for invalid
    and for depths beyond 65.535 m.
    """
    depth_m = np.asarray(depth_m, dtype=np.float32)
    if depth_m.ndim != 2:
        raise ImageEncodingError(f'depth must be H x W, got shape {depth_m.shape}')
    if encoding == '32FC1':
        out = depth_m.astype('<f4', copy=False)
    elif encoding == '16UC1':
        mm = np.rint(np.nan_to_num(depth_m, nan=0.0, posinf=0.0, neginf=0.0) * 1000.0)
        mm[(mm < 0) | (mm > 65535)] = 0
        out = mm.astype('<u2')
    else:
        raise ImageEncodingError(f"unsupported depth encoding '{encoding}'")
    out = np.ascontiguousarray(out)
    return out.shape[1] * out.itemsize, out.tobytes()


def rgb_to_payload(rgb: np.ndarray, encoding: str = 'rgb8') -> tuple[int, bytes]:
    """Encode an H x W x 3 uint8 RGB array as (step, bytes) in rgb8 or bgr8."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageEncodingError(f'expected H x W x 3 uint8, got {rgb.shape} {rgb.dtype}')
    if encoding == 'bgr8':
        rgb = rgb[:, :, ::-1]
    elif encoding != 'rgb8':
        raise ImageEncodingError(f"unsupported colour encoding for output '{encoding}'")
    out = np.ascontiguousarray(rgb)
    return out.shape[1] * 3, out.tobytes()
