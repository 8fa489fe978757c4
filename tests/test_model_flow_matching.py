"""Timestep lists (float32 arange quirks) and the Euler sampler of linear flow matching."""
import numpy as np
import pytest
import torch

from ppd_ros.model.flow_matching import (euler_step, noisy_sample, sample, timesteps,
                                        velocity_target)
from spec_reference_impl import TIMESTEP_TABLE


@pytest.mark.parametrize('steps', sorted(TIMESTEP_TABLE))
def test_timesteps_match_spec_table(steps):
    got = timesteps(steps)
    assert got.dtype == torch.int32
    assert got.tolist() == TIMESTEP_TABLE[steps]


def test_float64_derivation_would_differ():
    # The trap: a numpy / double derivation gives another 20-step list; ours must not.
    double = np.round(np.arange(1000, -1, -1001 / 20)).astype(int).tolist()
    assert double != TIMESTEP_TABLE[20]
    assert timesteps(20).tolist() == TIMESTEP_TABLE[20]


def test_some_step_counts_end_in_minus_one():
    got = timesteps(29).tolist()
    assert len(got) == 30 and got[-1] == -1


def test_euler_step_is_exact_euler_and_last_step_returns_x0_hat():
    g = torch.Generator().manual_seed(0)
    x, v = torch.randn(1, 1, 4, 4, generator=g), torch.randn(1, 1, 4, 4, generator=g)
    t, s = torch.tensor(750, dtype=torch.int32), torch.tensor(500, dtype=torch.int32)
    torch.testing.assert_close(euler_step(x, v, t, s), x + (500 - 750) / 1000 * v)
    t, end = torch.tensor(249, dtype=torch.int32), torch.tensor(-1, dtype=torch.int32)
    last = euler_step(x, v, t, end)
    torch.testing.assert_close(last, x - 0.249 * v)  # x0_hat: goes all the way to t = 0


def test_sampler_recovers_x0_with_the_true_velocity():
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.rand(1, 1, 8, 8, generator=g) - 1.0, torch.randn(1, 1, 8, 8, generator=g)
    target = velocity_target(x0, noise)
    x_t = noisy_sample(x0, noise, torch.tensor([1000]))
    torch.testing.assert_close(x_t, noise)
    result = sample(lambda x, t, i: target, noise, timesteps(4))
    torch.testing.assert_close(result, x0, atol=1e-6, rtol=0)


def test_sampler_feeds_raw_integer_timesteps():
    seen = []

    def velocity(x, t, i):
        seen.append((t.dtype, t.dim(), int(t), i))
        return torch.zeros_like(x)

    noise = torch.randn(1, 1, 2, 2)
    out = sample(velocity, noise, timesteps(4))
    assert seen == [(torch.int32, 0, t, i) for i, t in enumerate([1000, 750, 500, 249])]
    torch.testing.assert_close(out, noise)
