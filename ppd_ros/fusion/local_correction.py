"""PPD's log depth corrected locally to a sparse or dense metric reference.

A masked guided filter (He et al., guided image filtering) with PPD's log depth I as the
guide and the reference's log depth p as the input, over the reference's valid pixels only:

    per window of radius r:  n = #valid,  mean_I, mean_p, var_I, cov_Ip over the valid pixels
    A = (cov_Ip + eps) / (var_I + eps),   B = mean_p - A mean_I

eps pulls A towards 1 (keep PPD's shape, correct its offset), not towards 0 as in the plain
guided filter (which would flatten PPD); A is also kept within [1/2, 2]. Several radii,
coarse to fine: each scale's (A, B) replaces the coarser one in proportion to its support
min(1, n / min_support), so windows without reference data keep the coarser correction and
large holes fall back to one global offset (the mean of p - I over all valid pixels).
(A, B) are then averaged over the finest window and applied at every pixel:
corrected = A I + B.
"""
from __future__ import annotations

import cv2
import numpy as np

#: Default window radii, px at a 320 px wide image (scaled with the image width).
DEFAULT_RADII = (3, 8, 20)
#: Regularisation of the slope A towards 1 (log-depth variance units).
DEFAULT_EPS = 1e-3
#: Valid reference pixels per window for a scale to count fully.
DEFAULT_MIN_SUPPORT = 8
#: A is kept within [1 / MAX_SLOPE, MAX_SLOPE]: a window whose reference spans two surfaces
#: that PPD places too close together must not stretch PPD's values beyond them.
MAX_SLOPE = 2.0


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    """Window sums over (2 radius + 1)^2, zero outside the image."""
    size = 2 * radius + 1
    return cv2.boxFilter(image, -1, (size, size), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)


def _coarser(image: np.ndarray, factor: int) -> np.ndarray:
    """Block sums over about factor x factor pixels (area resize, times the block area)."""
    if factor == 1:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    block = (width / size[0]) * (height / size[1])
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA) * np.float32(block)


def correction_fields(ppd_log: np.ndarray, reference_log: np.ndarray, valid: np.ndarray,
                      radii=DEFAULT_RADII, eps: float = DEFAULT_EPS,
                      min_support: float = DEFAULT_MIN_SUPPORT) -> tuple[np.ndarray, np.ndarray]:
    """float32 (A, B) per pixel (module doc); reference_log may hold anything where not
    valid. Smooth fields: they may be computed on a coarser grid and resized.

    A pyramid: radius r is evaluated on block sums over about r/3 x r/3 pixels with a window
    of radius about 3, and the blended (A, B) is carried from each scale's grid to the next
    finer one, so that the wide windows cost no more than the narrow one."""
    guide = np.asarray(ppd_log, dtype=np.float32)
    weight = valid.astype(np.float32)
    target = np.where(valid, reference_log, np.float32(0)).astype(np.float32, copy=False)
    n_valid = float(np.count_nonzero(valid))
    offset = float((target - guide * weight).sum() / n_valid) if n_valid else 0.0
    wi = weight * guide
    sums = np.stack([weight, wi, weight * target], axis=-1)    # n, I, p
    squares = np.stack([wi * guide, wi * target], axis=-1)      # I^2, I p
    fields = None                                               # (A, B), current grid
    for radius in sorted(radii, reverse=True):
        factor = max(1, radius // 3)
        local = max(1, round(radius / factor))
        n, sum_i, sum_p = np.moveaxis(_box(_coarser(sums, factor), local), -1, 0)
        sum_ii, sum_ip = np.moveaxis(_box(_coarser(squares, factor), local), -1, 0)
        if fields is None:
            fields = np.empty(n.shape + (2,), np.float32)
            fields[..., 0], fields[..., 1] = 1.0, offset
        elif fields.shape[:2] != n.shape:
            fields = cv2.resize(fields, n.shape[::-1], interpolation=cv2.INTER_LINEAR)
        safe = np.maximum(n, np.float32(1e-6))
        mean_i = sum_i / safe
        mean_p = sum_p / safe
        var_i = np.maximum(sum_ii / safe - mean_i * mean_i, 0)
        cov_ip = sum_ip / safe - mean_i * mean_p
        a = np.clip((cov_ip + eps) / (var_i + eps), np.float32(1 / MAX_SLOPE),
                    np.float32(MAX_SLOPE))
        b = mean_p - a * mean_i
        support = np.minimum(n / np.float32(min_support), 1)
        # (1 - s) * coarser + s * this scale; unsupported windows (s = 0) add nothing
        fields *= (1 - support)[..., None]
        fields[..., 0] += support * a
        fields[..., 1] += support * b
    if fields.shape[:2] != guide.shape:
        fields = cv2.resize(fields, guide.shape[::-1], interpolation=cv2.INTER_LINEAR)
    size = 2 * min(radii) + 1
    fields = cv2.blur(fields, (size, size), borderType=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(fields[..., 0]), np.ascontiguousarray(fields[..., 1])
