"""Per-sample training target of PPD (spec section 6.3, ``get_gt``).

    l       = log(d + 1)
    q2, q98 = torch.quantile(l, 0.02 / 0.98) over pixels with valid & d < 80
    q98     = q2 + 1e-6 when q98 - q2 < 1e-6
    x0      = clamp((l - q2) / (q98 - q2), -0.5, 1.0) - 0.5          in [-1, 0.5]

The loss mask is the valid mask (it does not exclude d >= 80). Invalid pixels get the far
value 0.5 so that the noisy input x_t stays finite; every loss masks them out.
"""
from __future__ import annotations

import torch

QUANTILE_LOW = 0.02
QUANTILE_HIGH = 0.98
QUANTILE_MAX_DEPTH = 80.0
MIN_QUANTILE_SPREAD = 1e-6
INVALID_FILL = 0.5


def log_depth_quantiles(depth: torch.Tensor, valid: torch.Tensor) -> tuple[float, float]:
    """(q2, q98) of log(d + 1) over valid & d < 80 for one depth map, spread guard applied.

    A map without such pixels gives (0, 1e-6).
    """
    use = valid & torch.isfinite(depth) & (depth < QUANTILE_MAX_DEPTH)
    if not bool(use.any()):
        return 0.0, MIN_QUANTILE_SPREAD
    log_depth = torch.log(depth[use].to(torch.float32) + 1)
    q = torch.quantile(log_depth, torch.tensor([QUANTILE_LOW, QUANTILE_HIGH], dtype=torch.float32,
                                               device=log_depth.device))
    q2, q98 = float(q[0]), float(q[1])
    if q98 - q2 < MIN_QUANTILE_SPREAD:
        q98 = q2 + MIN_QUANTILE_SPREAD
    return q2, q98


def normalise_depth(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Latent x0 for depth (B, 1, h, w) metres and its valid mask (B, 1, h, w) bool."""
    x0 = torch.empty_like(depth, dtype=torch.float32)
    for i in range(depth.shape[0]):
        q2, q98 = log_depth_quantiles(depth[i], valid[i])
        log_depth = torch.log(torch.where(valid[i], depth[i], torch.ones_like(depth[i])).float() + 1)
        latent = torch.clamp((log_depth - q2) / (q98 - q2), -0.5, 1.0) - 0.5
        x0[i] = torch.where(valid[i], latent, torch.full_like(latent, INVALID_FILL))
    return x0
