"""2D rotary position embedding (RoPE) of the PPD DiT (spec section 3.5).

Each head vector u (head_dim d) is split in two halves: the first d/2 channels rotate with
the token's row y, the last d/2 with its column x. Within a half of n = d/2 channels:

    inv_k = base^(-2k/n),  k = 0..n/2-1,     theta_k(p) = p * inv_k
    cos = [cos theta_0..cos theta_{n/2-1}, cos theta_0..cos theta_{n/2-1}]   (concatenated)
    rope(u) = u * cos + rotate_half(u) * sin,   rotate_half([u1, u2]) = [-u2, u1]

Tables depend only on the token grid, so they are built once per resolution.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class RopeTables(NamedTuple):
    """cos and signed sin, each (N, head_dim): rows of the token grid in row-major order.

    ``sin`` carries the sign of rotate-half: [-sin, sin] within each axis half, so that
    rope(u) = u * cos + swap_halves(u) * sin with swap_halves([u1, u2]) = [u2, u1].
    """

    cos: torch.Tensor
    sin: torch.Tensor


def grid_positions(grid_h: int, grid_w: int, device=None) -> torch.Tensor:
    """Integer (y, x) of every token of a grid_h x grid_w grid, row-major: (N, 2)."""
    ys = torch.arange(grid_h, device=device)
    xs = torch.arange(grid_w, device=device)
    return torch.cartesian_prod(ys, xs)


def axis_angles(pos: torch.Tensor, half_dim: int, base: float) -> torch.Tensor:
    """theta for one axis: (N,) positions -> (N, half_dim) = [theta, theta] (float32)."""
    k = torch.arange(0, half_dim, 2, dtype=torch.float32, device=pos.device)
    inv_freq = 1.0 / (base ** (k / half_dim))
    theta = pos.to(torch.float32)[:, None] * inv_freq[None, :]
    return torch.cat((theta, theta), dim=-1)


def rope_tables(grid_h: int, grid_w: int, head_dim: int, base: float, device=None) -> RopeTables:
    """cos/sin tables for all tokens of a grid; rows drive the first half, columns the second."""
    pos = grid_positions(grid_h, grid_w, device)
    half = head_dim // 2
    rows, cols = axis_angles(pos[:, 0], half, base), axis_angles(pos[:, 1], half, base)
    angles = torch.cat((rows, cols), dim=-1)
    sign = torch.ones(2, 2, head_dim // 4, device=device)
    sign[:, 0] = -1.0
    return RopeTables(angles.cos(), angles.sin() * sign.flatten())


def swap_halves_per_axis(u: torch.Tensor) -> torch.Tensor:
    """[u2, u1] within each axis half: (..., d) viewed as (..., axis 2, part 2, d/4)."""
    return u.unflatten(-1, (2, 2, u.shape[-1] // 4)).flip(-2).flatten(-3)


def apply_rope(u: torch.Tensor, tables: RopeTables, out: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Rotate u (..., N, head_dim) by the positions of its N tokens (in u's dtype).

    The tables broadcast against u: (N, head_dim) for u (B, heads, N, head_dim), or viewed as
    (N, 1, head_dim) for u (B, N, heads, head_dim). ``out`` (u's shape, any strides) receives
    the result, e.g. a transposed view of a tensor in another layout.
    """
    cos, sin = tables.cos.to(u.dtype), tables.sin.to(u.dtype)
    return torch.mul(u, cos, out=out).addcmul_(swap_halves_per_axis(u), sin)
