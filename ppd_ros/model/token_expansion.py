"""Semantic fusion and 2x2 token expansion between the two DiT stages (spec section 3.6).

After block depth/2 - 1, every g16 token i (grid cell (a, b)) is fused with its L2-normalised
semantic token and expanded into its 4 children on the g8 grid:

    z = proj_fusion([x, normalize(sem)])                     (x first)
    child (2a+p, 2b+q) of token (a, b), channel c  <-  z[(p*2 + q) * D + c]

i.e. the einsum "nhwpqc->nchpwq". There is no residual across the fusion.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fused_linear import linear


class FusionMlp(nn.Sequential):
    """proj_fusion: Linear, SiLU, Linear, SiLU, Linear (indices 0, 2, 4 hold weights)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden_dim), nn.SiLU(),
                         nn.Linear(hidden_dim, hidden_dim), nn.SiLU(),
                         nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = linear(x, self[0].weight, self[0].bias, 'silu')
        x = linear(x, self[2].weight, self[2].bias, 'silu')
        return linear(x, self[4].weight, self[4].bias)


def fusion_input(x: torch.Tensor, semantics: torch.Tensor | None) -> torch.Tensor:
    """[x, semantics / ||semantics||_2] along channels; x alone for a vanilla DiT."""
    if semantics is None:
        return x
    if semantics.shape[:2] != x.shape[:2]:
        raise ValueError(f'semantic tokens {tuple(semantics.shape)} do not match the '
                         f'g16 tokens {tuple(x.shape)}')
    return torch.cat((x, F.normalize(semantics, dim=-1, eps=1e-12).to(x.dtype)), dim=-1)


def expand_tokens(z: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """(B, gh*gw, 4*D) -> (B, (2gh)*(2gw), D): each token becomes its 2x2 children, row-major."""
    b, _, channels = z.shape
    d = channels // 4
    z = z.reshape(b, grid_h, grid_w, 2, 2, d)
    z = torch.einsum('nhwpqc->nchpwq', z)  # (B, D, gh, 2, gw, 2)
    return z.reshape(b, d, 4 * grid_h * grid_w).transpose(1, 2)
