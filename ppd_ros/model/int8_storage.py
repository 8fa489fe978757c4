"""Int8 weight storage for shipped checkpoints (symmetric, one scale per output row).

A weight matrix W (or conv kernel) of shape (rows, ...) is stored as

    q = round(W / s)  in int8,   s_r = max |W_r| / 127   for each row r,

under its own key, with s (float32, shape (rows,)) under ``key + SCALE_SUFFIX``. Reading
restores s_r * q_r in float32. Small tensors (biases, norms, embeddings of few elements) are
left to the caller's float dtype. The suffix holds a ':', which no module attribute name can,
so a scale key never collides with a parameter key.
"""
from __future__ import annotations

from typing import Mapping

import torch

SCALE_SUFFIX = ':int8_scale'
MIN_ELEMENTS = 4096  # smaller tensors gain little and are often sensitive (norms, biases)


def should_quantize(value: torch.Tensor, min_elements: int = MIN_ELEMENTS) -> bool:
    """Floating tensors of two or more dims and at least ``min_elements`` elements."""
    return value.is_floating_point() and value.dim() >= 2 and value.numel() >= min_elements


def quantize_row_int8(value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 tensor, float32 per-row scale) with value ≈ scale[:, None, ...] * q."""
    rows = value.detach().to(torch.float32).reshape(value.shape[0], -1)
    scale = rows.abs().amax(dim=1) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(rows / safe[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(value.shape).contiguous(), scale.contiguous()


def dequantize_row_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 s_r * q_r for each row r."""
    return (q.to(torch.float32).reshape(q.shape[0], -1) * scale[:, None]).reshape(q.shape)


def quantize_state(tensors: Mapping[str, torch.Tensor],
                   min_elements: int = MIN_ELEMENTS) -> dict[str, torch.Tensor]:
    """State dict with every ``should_quantize`` tensor as int8 plus its scale; others unchanged."""
    out = {}
    for key, value in tensors.items():
        if key.endswith(SCALE_SUFFIX):
            raise ValueError(f'{key} is already an int8 scale')
        if should_quantize(value, min_elements):
            out[key], out[key + SCALE_SUFFIX] = quantize_row_int8(value)
        else:
            out[key] = value
    return out


def dequantize_state(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """State dict with every int8 tensor restored to float32 and the scale keys consumed.

    Raises ValueError for an int8 tensor without a scale, a scale without its tensor, or a
    scale whose length is not the tensor's row count.
    """
    scales = {k[:-len(SCALE_SUFFIX)]: v for k, v in tensors.items() if k.endswith(SCALE_SUFFIX)}
    out = {}
    for key, value in tensors.items():
        if key.endswith(SCALE_SUFFIX):
            if key[:-len(SCALE_SUFFIX)] not in tensors:
                raise ValueError(f'{key} has no int8 tensor {key[:-len(SCALE_SUFFIX)]!r}')
            continue
        if value.dtype != torch.int8:
            if key in scales:
                raise ValueError(f'{key} has an int8 scale but is stored as {value.dtype}')
            out[key] = value
            continue
        scale = scales.get(key)
        if scale is None:
            raise ValueError(f'{key} is stored as int8 without its scale {key + SCALE_SUFFIX!r}')
        if value.dim() == 0 or scale.shape != (value.shape[0],):
            raise ValueError(f'{key}: int8 scale of shape {tuple(scale.shape)} does not match '
                             f'{value.shape[0] if value.dim() else 0} rows')
        out[key] = dequantize_row_int8(value, scale.to(torch.float32))
    return out
