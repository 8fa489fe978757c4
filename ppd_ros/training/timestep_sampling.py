"""Training timesteps of PPD (spec section 6.3): logit-normal, t = round(1000 sigmoid(z)).

z ~ N(0, 1) (loc 0, scale 1), so t is an integer in [0, 1000] concentrated around 500.
"""
from __future__ import annotations

import torch

from ppd_ros.model.flow_matching import NUM_TRAIN_TIMESTEPS


def sample_logit_normal_timesteps(batch_size: int, generator: torch.Generator | None = None,
                                  num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """(batch_size,) int64 timesteps drawn on the CPU (move them to the device yourself)."""
    z = torch.randn(batch_size, generator=generator, dtype=torch.float32)
    return torch.round(num_train_timesteps * torch.sigmoid(z)).long()
