"""sensor_msgs/PointCloud2 byte layout of an organized cloud, as depth_image_proc writes it.

depth_image_proc fills its clouds through PointCloud2Modifier::setPointCloud2FieldsByString,
which pads every group to 16 bytes (PCL's SSE-aligned points):
  xyz:     x, y, z FLOAT32 at offsets 0, 4, 8, 4 padding bytes     -> point_step 16
  xyz+rgb: as above, then 'rgb' FLOAT32 at offset 16, 12 padding  -> point_step 32
'rgb' holds 0x00RRGGBB as a little-endian uint32 reinterpreted as float32, i.e. the bytes
b, g, r, 0 (PCL's PointXYZRGB). Padding bytes are zero. Invalid points are NaN in x, y and z;
such clouds are not dense (is_dense = false). row_step = point_step * width.
"""
from __future__ import annotations

import array
from dataclasses import dataclass

import numpy as np

#: sensor_msgs/PointField datatype constants used here.
POINTFIELD_FLOAT32 = 7

_XYZ_FIELDS = (('x', 0, POINTFIELD_FLOAT32, 1), ('y', 4, POINTFIELD_FLOAT32, 1),
               ('z', 8, POINTFIELD_FLOAT32, 1))
_RGB_FIELD = ('rgb', 16, POINTFIELD_FLOAT32, 1)


@dataclass(frozen=True)
class CloudLayout:
    """PointField specs as (name, offset, datatype, count) tuples, and the bytes per point."""
    fields: tuple[tuple[str, int, int, int], ...]
    point_step: int

    @property
    def has_rgb(self) -> bool:
        return any(f[0] == 'rgb' for f in self.fields)

    @property
    def dtype(self) -> np.dtype:
        """Structured numpy dtype of one point ('rgb' as its raw uint32 bit pattern)."""
        return np.dtype({'names': [f[0] for f in self.fields],
                         'formats': ['<u4' if f[0] == 'rgb' else '<f4' for f in self.fields],
                         'offsets': [f[1] for f in self.fields],
                         'itemsize': self.point_step})


XYZ_LAYOUT = CloudLayout(_XYZ_FIELDS, 16)
XYZRGB_LAYOUT = CloudLayout(_XYZ_FIELDS + (_RGB_FIELD,), 32)


def cloud_layout(with_rgb: bool) -> CloudLayout:
    return XYZRGB_LAYOUT if with_rgb else XYZ_LAYOUT


@dataclass(frozen=True, eq=False)
class PackedCloud:
    """An organized cloud ready for a PointCloud2.

    `payload` is an array.array('B') (what a message's uint8[] field stores; assign it
    as is) and `data` a writable uint8 numpy view of the same bytes.
    """
    layout: CloudLayout
    height: int
    width: int
    payload: array.array

    @property
    def data(self) -> np.ndarray:
        return np.frombuffer(self.payload, dtype=np.uint8)

    @property
    def fields(self) -> tuple[tuple[str, int, int, int], ...]:
        return self.layout.fields

    @property
    def point_step(self) -> int:
        return self.layout.point_step

    @property
    def row_step(self) -> int:
        return self.layout.point_step * self.width


class CloudBuffer:
    """Zeroed organized cloud buffer with in-place views of its fields."""

    def __init__(self, height: int, width: int, with_rgb: bool):
        self.layout = cloud_layout(with_rgb)
        self.height, self.width = height, width
        step = self.layout.point_step
        self.payload = array.array('B', b'\0') * (height * width * step)
        self.data = np.frombuffer(self.payload, dtype=np.uint8)
        #: (H, W, 3) float32 view of x, y, z: unproject() can write straight into it.
        self.xyz = np.ndarray((height, width, 3), dtype='<f4', buffer=self.data,
                              strides=(width * step, step, 4))

    def set_rgb(self, rgb: np.ndarray) -> None:
        """Store H x W x 3 uint8 RGB as packed 0x00RRGGBB (bytes b, g, r, 0)."""
        if not self.layout.has_rgb:
            raise ValueError('this cloud layout has no rgb field')
        rgb = np.ascontiguousarray(rgb)
        h, w = self.height, self.width
        if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
            raise ValueError(f'expected {h} x {w} x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}')
        step = self.layout.point_step
        packed = np.ndarray((h, w), dtype='<u4', buffer=self.data, offset=16,
                            strides=(w * step, step))
        # Read each pixel's r, g, b plus the next byte as one little-endian uint32
        # (r | g << 8 | b << 16 | next << 24); byte-swapped and shifted right by 8 it is
        # 0x00RRGGBB. The last column is done apart so no read runs past the image.
        if w > 1:
            words = np.ndarray((h, w - 1), dtype='<u4', buffer=rgb, strides=(w * 3, 3))
            np.right_shift(words.byteswap(), 8, out=packed[:, :-1])
        last = rgb[:, -1].astype(np.uint32)
        packed[:, -1] = (last[:, 0] << 16) | (last[:, 1] << 8) | last[:, 2]

    def packed(self) -> PackedCloud:
        return PackedCloud(self.layout, self.height, self.width, self.payload)


def build_cloud(xyz: np.ndarray, rgb: np.ndarray | None = None) -> PackedCloud:
    """Pack organized H x W x 3 points (and optional H x W x 3 uint8 colours) as PointCloud2."""
    xyz = np.asarray(xyz)
    if xyz.ndim != 3 or xyz.shape[2] != 3:
        raise ValueError(f'xyz must be H x W x 3, got {xyz.shape}')
    buf = CloudBuffer(xyz.shape[0], xyz.shape[1], rgb is not None)
    buf.xyz[...] = xyz
    if rgb is not None:
        buf.set_rgb(rgb)
    return buf.packed()


def decode_cloud(fields, point_step: int, height: int, width: int, data
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """PointCloud2 payload -> (H x W x 3 float32 xyz, H x W x 3 uint8 rgb or None).

    `fields` are (name, offset, datatype, count) tuples; x, y, z must be FLOAT32.
    """
    offsets = {f[0]: f[1] for f in fields}
    types = {f[0]: f[2] for f in fields}
    for name in 'xyz':
        if types.get(name) != POINTFIELD_FLOAT32:
            raise ValueError(f"cloud has no FLOAT32 field '{name}'")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < height * width * point_step:
        raise ValueError(f'cloud payload has {buf.size} bytes, '
                         f'needs {height * width * point_step}')
    row = width * point_step
    xyz = np.stack([np.ndarray((height, width), '<f4', buf, offsets[n], (row, point_step))
                    for n in 'xyz'], axis=-1)
    if 'rgb' not in offsets:
        return xyz, None
    packed = np.ndarray((height, width), '<u4', buf, offsets['rgb'], (row, point_step))
    rgb = np.stack([(packed >> shift) & 0xFF for shift in (16, 8, 0)], axis=-1)
    return xyz, rgb.astype(np.uint8)
