"""Pairing prediction pixels with metric reference pixels (depth camera, lidar image, ...).

The reference must be registered to the colour image (same field of view) but may have any
resolution. A reference pixel (r, c) of an Hr x Wr map maps to the prediction pixel whose
area holds its centre: (floor((r + 0.5) H / Hr), floor((c + 0.5) W / Wr)). Nothing is ever
interpolated, so holes and depth edges of the reference are never blended.
"""
from __future__ import annotations

import numpy as np

#: Reference pixels probed per requested point before falling back to a full scan.
_PROBES_PER_POINT = 4


def _map_index(index: np.ndarray, size_from: int, size_to: int) -> np.ndarray:
    """floor((index + 0.5) * size_to / size_from) in exact integer arithmetic."""
    return ((2 * index + 1) * size_to) // (2 * size_from)


def valid_reference(values: np.ndarray, min_ref_m: float = 0.0,
                    max_ref_m: float = np.inf) -> np.ndarray:
    """finite & > 0 & within [min_ref_m, max_ref_m]."""
    return np.isfinite(values) & (values > 0) & (values >= min_ref_m) & (values <= max_ref_m)


def resample_reference_to(pred_shape, ref_depth_m: np.ndarray,
                          valid: np.ndarray | None = None) -> np.ndarray:
    """Reference depth at the prediction resolution by nearest sampling; NaN where invalid.

    Each prediction pixel takes the reference pixel whose area holds its centre.
    """
    ref = np.asarray(ref_depth_m, dtype=np.float32)
    height, width = pred_shape[:2]
    rows = _map_index(np.arange(height), height, ref.shape[0])
    cols = _map_index(np.arange(width), width, ref.shape[1])
    ok = valid_reference(ref) if valid is None else valid_reference(ref) & valid
    out = np.where(ok, ref, np.float32(np.nan))
    return out[rows[:, None], cols[None, :]]


def sample_reference_pairs(pred: np.ndarray, ref_depth_m: np.ndarray,
                           valid: np.ndarray | None = None, max_points: int = 4096,
                           seed: int = 0, min_ref_m: float = 0.0, max_ref_m: float = np.inf):
    """Up to max_points random (pred value, reference depth) pairs over valid reference pixels.

    Dense references are probed at 4 * max_points random pixels (cheap at any resolution);
    sparse ones (fewer than max_points / 4 valid probes) are scanned in full. Returns two
    float64 arrays in random order.
    """
    pred = np.asarray(pred)
    ref = np.asarray(ref_depth_m)
    if pred.ndim != 2 or ref.ndim != 2:
        raise ValueError(f'pred and reference must be 2-D, got {pred.shape} and {ref.shape}')
    if valid is not None and np.shape(valid) != ref.shape:
        raise ValueError(f'valid {np.shape(valid)} must match the reference {ref.shape}')
    rng = np.random.default_rng(seed)
    flat_ref = ref.reshape(-1)
    flat_valid = None if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    probes = min(flat_ref.size, _PROBES_PER_POINT * max_points)
    if probes < flat_ref.size:
        index = rng.integers(0, flat_ref.size, size=probes)
    else:
        index = rng.permutation(flat_ref.size)
    ok = valid_reference(flat_ref[index], min_ref_m, max_ref_m)
    if flat_valid is not None:
        ok &= flat_valid[index]
    if ok.sum() >= max_points // 4 or probes == flat_ref.size:
        index = index[ok][:max_points]
    else:
        ok = valid_reference(flat_ref, min_ref_m, max_ref_m)
        if flat_valid is not None:
            ok &= flat_valid
        index = np.flatnonzero(ok)
        index = rng.permutation(index)[:max_points]
    rows, cols = np.divmod(index, ref.shape[1])
    if pred.shape != ref.shape:
        rows = _map_index(rows, ref.shape[0], pred.shape[0])
        cols = _map_index(cols, ref.shape[1], pred.shape[1])
    pred_values = pred[rows, cols].astype(np.float64)
    ref_values = flat_ref[index].astype(np.float64)
    finite = np.isfinite(pred_values)
    return pred_values[finite], ref_values[finite]
