"""Depth -> colour image with matplotlib's 'Spectral' colormap (numpy + one OpenCV lookup).

Low values are red and high values blue/purple; for PPD's relative depth (larger = farther)
near is red, as in the reference visualisation: d' = (d - vmin) / (vmax - vmin) * 255,
truncated to uint8, then looked up in the 256-entry colormap. NaN / inf pixels get
``invalid_color``. The scaling is evaluated in float64 exactly as written; the lookup and
the invalid-pixel fill use OpenCV (applyColorMap with this table, masked copyTo), which is
~20x faster than numpy fancy indexing at 1280x720.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# matplotlib.colormaps['Spectral'](np.arange(256))[:, :3] * 255, truncated to uint8 (RGB).
_SPECTRAL_HEX = (
    '9e0142a00342a20543a40843a60a44a80c44aa0f45ad1145af1446b11646b31847b51b47b71d48ba2048bc2249'
    'be2449c0274ac2294ac42c4bc62e4bc9304ccb334ccd354dcf384dd13a4ed33c4ed53e4ed6404ed8424dd9444d'
    'da464cdb484cdc494bde4b4bdf4d4be04f4ae1514ae25349e45549e55648e65848e75a47e95c47ea5e46eb6046'
    'ec6145ed6345ef6544f06744f16943f26b43f46d43f46f44f47245f57446f57747f57948f67c4af67e4bf6814c'
    'f7834df7864ef7894ff88b51f88e52f89053f99354f99555fa9856fa9a58fa9d59fb9f5afba25bfba55cfca75e'
    'fcaa5ffcac60fdae61fdb063fdb265fdb466fdb668fdb86afdba6bfdbc6dfdbe6efdc070fdc272fdc473fdc675'
    'fdc877fdca78fdcc7afdce7cfdd07dfdd27ffdd481fdd682fdd884fdda86fddc87fdde89fee08bfee18dfee28f'
    'fee391fee493fee695fee797fee899fee99bfeea9dfeec9ffeeda1feeea3feefa5fef1a7fef2a9fef3abfef4ad'
    'fef5affef7b1fef8b3fef9b5fefab7fefbb9fefdbbfefebdfefebefdfebcfcfebbfbfdb9fafdb8f9fcb6f8fcb5'
    'f7fcb3f6fbb2f5fbb0f4faaef3faadf2faabf1f9aaf0f9a8eff8a7eef8a5edf8a4ecf7a2ebf7a1eaf69fe9f69e'
    'e8f69ce7f59be6f599e6f598e3f498e1f398dff299dcf199daf09ad8ef9ad5ee9bd3ed9bd1ec9cceeb9cccea9d'
    'cae99dc7e89ec5e79ec3e69fc0e59fbee5a0bce4a0bae3a0b7e2a1b5e1a1b3e0a2b0dfa2aedea3acdda3a9dca4'
    'a6dba4a4daa4a1d9a49ed8a49cd7a499d6a496d5a494d4a491d2a48ed1a48bd0a489cfa486cea483cda481cca4'
    '7ecba47bcaa478c9a476c8a473c7a470c6a46ec5a46bc4a468c3a466c2a563bfa561bda65fbba75db8a85bb6a9'
    '59b4aa57b2ab55afac53adad51abae4fa8af4da6b04ba4b149a2b2479fb3459db4439bb54199b53f96b63d94b7'
    '3b92b8398fb9378dba358bbb3389bc3286bc3484bb3682ba3880b9397db83b7bb73d79b63e77b54075b44272b2'
    '4470b1456eb0476caf4969ae4b67ad4c65ac4e63ab5060aa515ea9535ca8555aa75757a65855a55a53a45c51a3'
    '5e4fa2'
)
SPECTRAL_LUT = np.frombuffer(bytes.fromhex(_SPECTRAL_HEX), dtype=np.uint8).reshape(256, 3).copy()
SPECTRAL_LUT.setflags(write=False)


_BLOCK_BYTES = 1 << 18  # rows are scaled in float64 blocks of about this size

#: The colormap as OpenCV user colormaps (256 x 1 x 3), in RGB and in BGR channel order.
_LUT_RGB = SPECTRAL_LUT.reshape(256, 1, 3).copy()
_LUT_BGR = SPECTRAL_LUT[:, ::-1].reshape(256, 1, 3).copy()


def colorize_depth(depth: np.ndarray, vmin: float | None = None, vmax: float | None = None,
                   invalid_color: tuple[int, int, int] = (0, 0, 0), *, bgr: bool = False,
                   out: np.ndarray | None = None) -> np.ndarray:
    """H x W depth -> H x W x 3 uint8 RGB; vmin / vmax default to the finite min / max.

    `bgr=True` gives the same image in BGR channel order (what a bgr8 Image carries; then
    `invalid_color` is still given as RGB). `out`, a C-contiguous H x W x 3 uint8 array (e.g. a
    view of a message payload), receives the image instead of a new array.

    The arithmetic is float64 as written in the module docstring, so the output is identical
    to a plain numpy evaluation of it.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f'depth must be H x W, got shape {depth.shape}')
    if depth.dtype.kind not in 'fiu' or depth.dtype.itemsize > 8:
        depth = depth.astype(np.float64)
    shape = depth.shape + (3,)
    if out is None:
        out = np.empty(shape, dtype=np.uint8)
    elif out.shape != shape or out.dtype != np.uint8 or out.strides != (3 * shape[1], 3, 1):
        raise ValueError(f'out must be a C-contiguous {shape} uint8 array')
    color = np.asarray(invalid_color, dtype=np.uint8)
    if bgr:
        color = color[::-1]
    if depth.size == 0:
        return out
    valid = None  # None: every pixel is finite
    has_inf = False
    lo = np.minimum.reduce(depth, axis=None)  # NaN-propagating: one pass tells all finite
    hi = np.maximum.reduce(depth, axis=None)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        valid = np.isfinite(depth)
        if not valid.any():
            out[...] = _solid_image(*shape[:2], *color.tolist())
            return out
        lo = np.fmin.reduce(depth, axis=None)  # ignores NaN
        hi = np.fmax.reduce(depth, axis=None)
        has_inf = not (np.isfinite(lo) and np.isfinite(hi))
        if has_inf:  # rare: masked min / max
            lo = np.minimum.reduce(depth, axis=None, where=valid, initial=np.inf)
            hi = np.maximum.reduce(depth, axis=None, where=valid, initial=-np.inf)
    lo = float(lo) if vmin is None else float(vmin)
    hi = float(hi) if vmax is None else float(vmax)
    if hi > lo:
        index = np.empty(depth.shape, dtype=np.uint8)
        # Clip to [0, 255] where values can leave it. Finite values only go below 0 with a
        # given vmin and above 255 with a given vmax (v - lo <= hi - lo for the data's own
        # min / max). fmax also turns NaN into 0; invalid pixels are recoloured below.
        clip_low = valid is not None or vmin is not None
        clip_high = has_inf or vmax is not None
        rows = max(1, _BLOCK_BYTES // (8 * depth.shape[1]))  # float64 blocks stay in cache
        scratch = np.empty((min(rows, depth.shape[0]), depth.shape[1]), dtype=np.float64)
        for start in range(0, depth.shape[0], rows):
            scaled = scratch[:min(rows, depth.shape[0] - start)]
            np.subtract(depth[start:start + rows], lo, out=scaled, dtype=np.float64)
            np.divide(scaled, hi - lo, out=scaled)
            np.multiply(scaled, 255.0, out=scaled)
            if clip_low:
                np.fmax(scaled, 0.0, out=scaled)
            if clip_high:
                np.minimum(scaled, 255.0, out=scaled)
            np.copyto(index[start:start + rows], scaled, casting='unsafe')  # truncates
    else:
        index = np.zeros(depth.shape, dtype=np.uint8)
    result = cv2.applyColorMap(index, _LUT_BGR if bgr else _LUT_RGB, dst=out)
    if result is not out:  # OpenCV could not write in place (never expected)
        out[...] = result
    if valid is not None:
        np.logical_not(valid, out=valid)
        cv2.copyTo(_solid_image(*shape[:2], *color.tolist()), valid.view(np.uint8), dst=out)
    return out


@lru_cache(maxsize=4)
def _solid_image(height: int, width: int, c0: int, c1: int, c2: int) -> np.ndarray:
    """Read-only H x W x 3 uint8 image of one colour (the source of a masked copy)."""
    planes = [np.full((height, width), c, dtype=np.uint8) for c in (c0, c1, c2)]
    image = cv2.merge(planes)
    image.setflags(write=False)
    return image
