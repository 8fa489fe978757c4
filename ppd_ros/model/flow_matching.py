"""Linear flow matching with velocity prediction and Euler sampling (spec section 2).

    x_t = (1 - t/T) x_0 + (t/T) x_T          x_0: data (depth latent), x_T: N(0, 1) noise
    v   = x_T - x_0                           the network's regression target

Sampling walks a descending list of integer timesteps; each step goes from t to the next
entry s (0 after the last one), so the last step returns the clean estimate x_0.
"""
from __future__ import annotations

from typing import Callable

import torch

NUM_TRAIN_TIMESTEPS = 1000


def timesteps(steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """Descending int32 timesteps, e.g. 4 -> [1000, 750, 500, 249].

    Built from a float32 arange exactly as the reference (on CPU): the values differ from a
    float64 derivation for some step counts (20 steps -> ..., 499, ...), and for a few step
    counts (29, 49, ...) the list has steps + 1 entries ending in -1.
    """
    if steps < 1:
        raise ValueError(f'steps must be >= 1, got {steps}')
    T = num_train_timesteps
    return torch.arange(T, -1, -(T + 1) / steps, dtype=torch.float32).round().int()


def noisy_sample(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                 num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """x_t for per-sample integer timesteps t (B,) (training)."""
    b = (t.to(torch.float32) / num_train_timesteps).view(-1, *([1] * (x0.dim() - 1)))
    return (1 - b) * x0 + b * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Regression target of the network: v = x_T - x_0."""
    return noise - x0


def euler_step(x_t: torch.Tensor, v: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
               num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """One Euler step from integer t to integer s (s < 0 means: go to 0, i.e. return x0_hat).

    Written in the reference's operation order (last-ulp fp32 parity):
    x0_hat = x_t - (t/T) v,  xT_hat = x_t + (1 - t/T) v,  x_s = (1 - s'/T) x0_hat + (s'/T) xT_hat.
    """
    T = num_train_timesteps
    a = 1 - t / T
    b = t / T
    x0_hat = x_t - b * v
    xT_hat = x_t + a * v
    s_clamped = s.clamp(0, T)
    x_s = (1 - s_clamped / T) * x0_hat + (s_clamped / T) * xT_hat
    x_s = torch.where(s < 0, x0_hat, x_s)
    return torch.where(s > T, xT_hat, x_s)


def sample(velocity: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor],
           noise: torch.Tensor, schedule: torch.Tensor,
           num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """Integrate from x_T = noise along ``schedule`` (int32 timesteps); returns x_0 estimate.

    ``velocity(x_t, t, i)`` gets the raw integer t as a 0-d int32 tensor and its index i.
    """
    x = noise
    schedule = schedule.to(torch.int32)
    end = torch.tensor(-1, dtype=torch.int32)
    for i in range(len(schedule)):
        t = schedule[i]
        s = schedule[i + 1] if i + 1 < len(schedule) else end
        v = velocity(x, t.to(x.device), i)
        x = euler_step(x, v, t.to(x.device), s.to(x.device), num_train_timesteps)
    return x
