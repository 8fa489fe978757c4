"""Timestep conditioning of the DiT (spec section 3.2).

The DiT sees the raw integer timestep t in [0, 1000] (not t/T):

    freq_k = exp(-ln(10000) * k / half),  k = 0..half-1
    e(t)   = [cos(t * freq), sin(t * freq)]            (cos first)
    c      = Linear -> SiLU -> Linear (e(t))            (the only adaLN conditioning)
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) or 0-d timesteps -> (B, dim) float32 embedding, cos half then sin half."""
    t = torch.as_tensor(t)
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(max_period) * k / half)
    angles = t.reshape(-1).to(torch.float32)[:, None] * freqs[None, :]
    return torch.cat((torch.cos(angles), torch.sin(angles)), dim=-1)


class TimestepEmbedder(nn.Module):
    """t -> c (B, hidden): sinusoidal features followed by a 2-layer SiLU MLP."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.frequency_embedding_size))
