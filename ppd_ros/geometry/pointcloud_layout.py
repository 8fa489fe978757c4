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
import sys
from dataclasses import dataclass

import cv2
import numpy as np

#: sensor_msgs/PointField datatype constants used here.
POINTFIELD_FLOAT32 = 7

_XYZ_FIELDS = (('x', 0, POINTFIELD_FLOAT32, 1), ('y', 4, POINTFIELD_FLOAT32, 1),
               ('z', 8, POINTFIELD_FLOAT32, 1))
_RGB_FIELD = ('rgb', 16, POINTFIELD_FLOAT32, 1)
_RGB_WORD = _RGB_FIELD[1] // 4  # index of the rgb field among a point's 4-byte words

#: Large clouds are filled in blocks of rows with about this many bytes per float32 plane:
#: temporaries stay small (cached, never fresh pages from the OS) and are written while hot.
BLOCK_BYTES = 1 << 18


def block_rows(width: int) -> int:
    """Rows per block for a cloud `width` points wide."""
    return max(1, BLOCK_BYTES // (4 * max(1, width)))


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


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 RGB -> contiguous H x W '<u4' 0x00RRGGBB (bytes b, g, r, 0).

    `rgb` may be a decimated view (image[::s, ::s]); it is packed without copying it first.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}')
    h, w = rgb.shape[:2]
    if rgb.size == 0:
        return np.zeros((h, w), dtype='<u4')
    span = _pixel_span(rgb)
    if span is not None:
        # columns 0, s, 2s, ... of rows with 3-byte pixels: pack the whole span of each row
        # (OpenCV reads row-strided images in place), then keep every s-th word
        return np.ascontiguousarray(_pack_rows(span)[:, ::rgb.strides[1] // 3])
    return _pack_rows(rgb)


def _pixel_span(rgb: np.ndarray) -> np.ndarray | None:
    """For a column-decimated view (image[:, ::s], s > 1) of an image with 3-byte pixels, the
    read-only view of every pixel from each row's first to its last sampled one; else None."""
    h, w = rgb.shape[:2]
    row, col, item = rgb.strides
    if item != 1 or col <= 3 or col % 3 or row < 3 * ((w - 1) * (col // 3) + 1):
        return None
    span = np.lib.stride_tricks.as_strided(rgb, shape=(h, (w - 1) * (col // 3) + 1, 3),
                                           strides=(row, 3, 1), writeable=False)
    root = rgb
    while isinstance(root.base, np.ndarray):
        root = root.base
    lo, hi = np.lib.array_utils.byte_bounds(span)
    root_lo, root_hi = np.lib.array_utils.byte_bounds(root)
    return span if root_lo <= lo and hi <= root_hi else None


def _pack_rows(rgb: np.ndarray) -> np.ndarray:
    # RGB -> BGRA gives the bytes b, g, r, 255 per pixel; clear the alpha byte.
    words = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA).view('<u4')[..., 0]
    words &= np.uint32(0x00FFFFFF)
    return words


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
        #: (H, W, point_step / 4) view of every 4-byte word of every point, for cv2 copies
        #: (float32 so OpenCV accepts it; OpenCV copies the words bit for bit).
        self.words = np.ndarray((height, width, step // 4), dtype=np.float32, buffer=self.data)

    def _check_rgb(self, rgb: np.ndarray, h: int) -> None:
        if not self.layout.has_rgb:
            raise ValueError('this cloud layout has no rgb field')
        w = self.width
        if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
            raise ValueError(f'expected {h} x {w} x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}')

    def set_rgb(self, rgb: np.ndarray) -> None:
        """Store H x W x 3 uint8 RGB as packed 0x00RRGGBB (bytes b, g, r, 0)."""
        rgb = np.asarray(rgb)
        self._check_rgb(rgb, self.height)
        if rgb.size == 0:
            return
        rows = block_rows(self.width)
        for start in range(0, self.height, rows):  # small temporaries, written from cache
            packed = pack_rgb(rgb[start:start + rows]).view(np.float32)  # bit pattern only
            cv2.mixChannels([packed], [self.words[start:start + rows]], [0, _RGB_WORD])

    def write_rows(self, start: int, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                   rgb: np.ndarray | None = None) -> None:
        """Write rows start .. start + n: n x W float32 x, y, z (and n x W x 3 uint8 RGB), all
        fields of a point at once (one pass over the buffer)."""
        n = z.shape[0]
        planes = [np.ascontiguousarray(p, dtype=np.float32) for p in (x, y, z)]
        if any(p.shape != (n, self.width) for p in planes) or start < 0 or start + n > self.height:
            raise ValueError(f'rows {start}..{start + n} of {self.height} x {self.width} do not '
                             f'fit planes of shape {[p.shape for p in planes]}')
        pairs = [0, 0, 1, 1, 2, 2]
        if rgb is not None:
            rgb = np.asarray(rgb)
            self._check_rgb(rgb, n)
            planes.append(pack_rgb(rgb).view(np.float32))  # bit pattern only
            pairs += [3, _RGB_WORD]
        if n and self.width:
            cv2.mixChannels(planes, [self.words[start:start + n]], pairs)

    def packed(self) -> PackedCloud:
        return PackedCloud(self.layout, self.height, self.width, self.payload)


class CloudBufferPool:
    """Hands out CloudBuffers and recycles each once nothing outside the pool holds its payload.

    A recycled buffer skips zero-filling (and first-touching) tens of MB per frame. It is
    reused only when no PackedCloud, PointCloud2.data or numpy view of its payload is left
    (checked with the payload's reference count), so a cloud still in use is never
    overwritten. Its padding bytes are still zero; every other byte is rewritten by the
    next user (unproject_to_cloud writes x, y, z and rgb of every point).
    """

    def __init__(self, max_buffers: int = 2):
        if max_buffers < 1:
            raise ValueError(f'max_buffers must be >= 1, got {max_buffers}')
        self.max_buffers = max_buffers
        self._buffers: list[tuple[CloudBuffer, int]] = []  # (buffer, its idle reference count)

    def acquire(self, height: int, width: int, with_rgb: bool) -> CloudBuffer:
        layout = cloud_layout(with_rgb)
        for buf, idle_refs in self._buffers:
            if ((buf.height, buf.width, buf.layout) == (height, width, layout)
                    and sys.getrefcount(buf.payload) == idle_refs):
                return buf
        buf = CloudBuffer(height, width, with_rgb)
        if len(self._buffers) >= self.max_buffers:
            self._buffers.pop(0)  # its holders keep it alive; the pool forgets it
        self._buffers.append((buf, sys.getrefcount(buf.payload)))
        return buf


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
