"""Training timesteps of PPD (spec section 6.3): logit-normal, t = round(1000 sigmoid(z)).

z ~ N(0, 1) (loc 0, scale 1), so t is an integer in [0, 1000] concentrated around 500.

For fine-tuning a model that will only ever be sampled with a fixed number of Euler steps,
sample_schedule_timesteps draws t from that sampler's own timesteps (e.g. 1000, 750, 500, 249
for 4 steps) instead: all training then goes to the inputs the sampler really uses.
sample_mixed_timesteps draws only a fraction of t that way and the rest logit-normal, so the
model stays usable at other step counts.
"""
from __future__ import annotations

import torch

from ppd_ros.model.flow_matching import NUM_TRAIN_TIMESTEPS, timesteps


def sample_logit_normal_timesteps(batch_size: int, generator: torch.Generator | None = None,
                                  num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """(batch_size,) int64 timesteps drawn on the CPU (move them to the device yourself)."""
    z = torch.randn(batch_size, generator=generator, dtype=torch.float32)
    return torch.round(num_train_timesteps * torch.sigmoid(z)).long()


def sample_schedule_timesteps(batch_size: int, generator: torch.Generator | None = None,
                              steps: int = 4,
                              num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """(batch_size,) int64 timesteps drawn uniformly from timesteps(steps) (those >= 0)."""
    schedule = timesteps(steps, num_train_timesteps).long()
    schedule = schedule[schedule >= 0]
    index = torch.randint(len(schedule), (batch_size,), generator=generator)
    return schedule[index]


def sample_mixed_timesteps(batch_size: int, generator: torch.Generator | None = None,
                           steps: int = 4, schedule_fraction: float = 0.5,
                           num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """(batch_size,) int64 timesteps: each from timesteps(steps) with probability
    ``schedule_fraction``, otherwise logit-normal. Fraction 1 is sample_schedule_timesteps."""
    if not 0.0 <= schedule_fraction <= 1.0:
        raise ValueError(f'schedule_fraction must be in [0, 1], got {schedule_fraction}')
    if schedule_fraction == 1.0:  # the same draws as sample_schedule_timesteps
        return sample_schedule_timesteps(batch_size, generator, steps, num_train_timesteps)
    from_schedule = sample_schedule_timesteps(batch_size, generator, steps, num_train_timesteps)
    logit_normal = sample_logit_normal_timesteps(batch_size, generator, num_train_timesteps)
    pick_schedule = torch.rand(batch_size, generator=generator) < schedule_fraction
    return torch.where(pick_schedule, from_schedule, logit_normal)
